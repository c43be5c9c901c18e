"""`python -m services.token --role street --org <id>`: print a bearer token for development.

Signs with AUTH_JWT_SECRET (the development secret unless set), so the services started by
`make run` in the same environment accept it.
"""

from __future__ import annotations

import argparse
import sys
from uuid import UUID

from proto.actor import Role
from services.common.auth import AuthSettings, mint_token


def _seconds(text: str) -> int:
    seconds = int(text)
    if seconds < 1:
        raise argparse.ArgumentTypeError("a token must live at least one second")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, print one token."""
    parser = argparse.ArgumentParser(
        prog="python -m services.token", description="Print a signed bearer token (a JWT)."
    )
    parser.add_argument("--role", required=True, choices=[role.value for role in Role])
    parser.add_argument("--org", required=True, type=UUID, help="the organization's id")
    parser.add_argument("--subject", default=None, help="the account; default: <role>-desk")
    parser.add_argument("--ttl", type=_seconds, default=None, help="seconds the token lives")
    args = parser.parse_args(argv)
    settings = AuthSettings()
    if not settings.can_mint:
        print(
            "AUTH_JWT_PUBLIC_KEYS is set: tokens come from your identity provider; set "
            "AUTH_JWT_SECRET as well to mint them here",
            file=sys.stderr,
        )
        return 2
    print(
        mint_token(
            settings.jwt_secret.get_secret_value(),
            role=Role(args.role),
            organization_id=args.org,
            subject=args.subject or f"{args.role}-desk",
            audience=settings.jwt_audience,
            ttl_seconds=settings.token_ttl_seconds if args.ttl is None else args.ttl,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
