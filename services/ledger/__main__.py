"""`python -m services.ledger`: serve the ledger with settings from LEDGER_* variables.

`… migrate` creates its tables and exits; `… rebuild-read-models` derives its read models again
from the feed (after a reconciliation found one differing from the events) and exits.
"""

import sys

from services.common.auth import AuthSettings
from services.common.serve import serve
from services.ledger.audit.flow_model import FlowModel
from services.ledger.main import create_app, open_ledger
from services.ledger.settings import LedgerSettings


def maintain(settings: LedgerSettings, command: str) -> None:
    """Run one maintenance command against the configured database."""
    ledger, catalog = open_ledger(settings, AuthSettings())
    try:
        model = FlowModel(ledger)
        kept = ledger.keep_missing_entries()
        if kept:
            print(f"feed entries kept, or put in canonical form, for {kept} earlier events")
        lined = ledger.keep_missing_lines()
        if lined:
            print(f"feed entries kept whole, as served, for {lined} earlier events")
        versions = ledger.keep_missing_row_versions()
        if versions:
            print(f"feed entries tied to their rows' versions for {versions} earlier events")
        if command == "rebuild-read-models":
            print(f"flow read model rebuilt through feed position {model.rebuild()}")
        else:
            print(f"ledger tables ready; the feed's head is at position {ledger.reads.head()}")
    finally:
        ledger.close()
        catalog.close()


settings = LedgerSettings()
if sys.argv[1:] in (["migrate"], ["rebuild-read-models"]):
    maintain(settings, sys.argv[1])
elif sys.argv[1:]:
    sys.exit("usage: python -m services.ledger [migrate | rebuild-read-models]")
else:
    serve("ledger", lambda: create_app(settings), settings)
