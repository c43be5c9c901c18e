"""`ledger-audit`: the auditor's command line, working against the ledger's HTTP API only."""
