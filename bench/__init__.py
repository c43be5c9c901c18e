"""`make bench`: the ledger's benchmarks on PostgreSQL, written to BENCHMARKS.md (issue 10)."""
