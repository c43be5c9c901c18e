"""The auditor's toolkit on the ledger: the verifiable log, flows, reconciliation, OCDS."""
