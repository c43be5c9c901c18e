"""Wire contracts: every model that crosses a service boundary, defined once.

The JSON Schema of each model is generated into `proto/schema/` (`make schemas`) so that systems
written in other languages can code against the files; a test fails when they drift.
"""
