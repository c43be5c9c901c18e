"""Where webhooks may go: http(s) only, no credentials, no private network unless allowed.

A subscription names a URL the notifier will POST to from inside the government network; left
unchecked, anyone who may subscribe could make it call internal systems (SSRF). Addresses are
checked when a subscription is made and again, after resolving the name, at every delivery, so
a name that later points inside is refused too; a delivery then connects to the addresses
checked, never to a fresh answer from DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from services.common.errors import InvalidCommand

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(InvalidCommand):
    """The URL may not receive webhooks."""


@dataclass(frozen=True)
class AllowList:
    """Operator-named hosts and networks that may be private (NOTIFIER_ALLOWED_TARGETS)."""

    hosts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """`"127.0.0.1/32, receiver.internal"` → hosts and networks."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether the operator allowed this host name or this address."""
        return host in self.hosts or any(address in network for network in self.networks)


def _is_internal(address: IPAddress) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None)
    )


def check_url(url: str) -> str:
    """The URL's host, if its form is acceptable: http(s), a host, no credentials, no fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"the target URL is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the target URL must start with http:// or https://")
    if not parts.hostname:
        raise TargetRefused("the target URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(
            "the target URL must not carry credentials; verify deliveries by their signature"
        )
    if parts.fragment:
        raise TargetRefused("the target URL must not have a fragment (#…)")
    if port == 0:
        raise TargetRefused("the target URL must not name port 0")
    return parts.hostname.lower().rstrip(".")


def check_addresses(host: str, addresses: Iterable[IPAddress], allowed: AllowList) -> None:
    """Refuse if any address the host resolves to is internal and not allowed."""
    for address in addresses:
        if _is_internal(address) and not allowed.allows(host, address):
            raise TargetRefused(
                f"the target {host} resolves to {address}, a private, loopback or link-local "
                "address; an operator must allow it (NOTIFIER_ALLOWED_TARGETS)"
            )


async def resolve(host: str) -> list[IPAddress]:
    """The addresses a host name (or literal) resolves to; TargetRefused if none."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except UnicodeError:  # the resolver's IDNA encoding refuses empty or over-long labels
        raise TargetRefused(
            "the target URL's host is not a valid host name (labels of 1 to 63 characters)"
        ) from None
    except OSError as exc:
        raise TargetRefused(f"the target host {host} does not resolve: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_target(url: str, allowed: AllowList) -> list[IPAddress]:
    """The whole check: the URL's form, then every address its host resolves to; those."""
    host = check_url(url)
    addresses = await resolve(host)
    check_addresses(host, addresses, allowed)
    return addresses
