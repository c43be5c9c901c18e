"""`python -m ledger_audit`: the same as `ledger-audit`."""

from ledger_audit.cli import app

app(prog_name="ledger-audit")
