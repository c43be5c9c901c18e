"""`python -m services.ledger`: serve the ledger with settings from LEDGER_* variables."""

from services.common.serve import serve
from services.ledger.main import create_app
from services.ledger.settings import LedgerSettings

settings = LedgerSettings()
serve(create_app(settings), settings)
