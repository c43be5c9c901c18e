"""OCDS process ids (ocids): a registered prefix, then the purchase project's id."""

from __future__ import annotations

import re

_PREFIX = re.compile(r"ocds-[a-z0-9]{6}[a-z0-9-]*")
DEFAULT_OCID_PREFIX = "ocds-community-ledger"


def check_prefix(prefix: str) -> str:
    """The ocid prefix, if it has the form OCDS gives prefixes; ValueError otherwise."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            f"ocid prefix {prefix!r} is not `ocds-` and six lower-case letters or digits "
            "(optionally followed by more of them and hyphens)"
        )
    return prefix
