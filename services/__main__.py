"""`python -m services <catalog|ledger|notifier> [migrate]`: run one service by name.

The container image's entrypoint: one image serves any of the three services, and the
arguments after the name reach that service as if it had been started on its own
(`python -m services ledger migrate` is `python -m services.ledger migrate`).
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

SERVICES = ("catalog", "ledger", "notifier")
USAGE = "usage: python -m services <catalog|ledger|notifier> [migrate | …]"


def main(argv: Sequence[str]) -> None:
    """Run the named service's own `__main__` with the remaining arguments."""
    if list(argv[:1]) in (["-h"], ["--help"]):
        print(USAGE)
        return
    if not argv or argv[0] not in SERVICES:
        sys.exit(USAGE)
    name, *arguments = argv
    module = f"services.{name}"
    # Each service reads its own arguments from sys.argv[1:], so they must be all it sees.
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
