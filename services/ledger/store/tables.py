"""The ledger's own tables beside the event store's: their names and columns.

The recorders (services/ledger/store/recorders.py) keep, in the same transaction as the events:

- `ledger_feed`: a dense position (1, 2, 3, …), the record time and the caller (role,
  organization, token subject) of every event. The event
  store's own notification ids come from a sequence and can have holes where a transaction
  rolled back; auditors and followers need positions without holes, so the recorders assign
  them under the lock that already serializes writers, in commit order.
- `ledger_references`: callers' own references (contract numbers, treasury payment ids), unique
  per scope, so a retried request finds the record it made instead of making a second one.
- `ledger_streams` and `ledger_stream_tags`: the facts of each aggregate that lists filter on,
  fixed at creation (tags hold the many-valued ones, e.g. a project's items).

All three are derivable from the events; none is ever updated or deleted.

Two more tables belong to the verifiable log (services/ledger/audit/), written by its
checkpointer after the fact rather than with the events:

- `ledger_leaves`: the Merkle leaf hash of each feed position, a read model rebuildable from
  the feed, kept so proofs need not decode every event again.
- `ledger_checkpoints`: the signed tree heads, one per tree size, kept for good.

`ledger_feed_entries` keeps, with the events too, each event's feed entry as the API serves it,
so reading the feed need not decode every event again (services/ledger/store/entries.py): on
PostgreSQL its whole line, written by the database once the feed row is in, with a digest of
the event and the feed row and the transaction that wrote the three; on SQLite its body (the
entry less its position, record time and caller, which the feed row holds) with a digest of the
event. Either is served only while what it was made from is unchanged (on PostgreSQL, the row
versions that transaction wrote, or failing that the digest), so the feed always shows the
events as stored (one altered behind the ledger's back shows, and fails verification). Rows
from before entries were kept have none; they are computed.

And four for read models, rebuildable from the feed (services/ledger/audit/flow_model.py):

- `ledger_read_models`: the feed position each read model reflects.
- `ledger_flow_stream_records`: each event's word on what a funding-flow node is: its creation
  (kind, parent, state, details) or a new state or details, found by budget and kind, or by the
  stream whose event it was.
- `ledger_flow_stream_deltas`: by how much each event moved each node's own figures, by
  position, found by budget or by stream.
- `ledger_flow_totals`: each node's own figures summed up to each of its moves, in business
  time order, so a flow's figures are one row per node rather than a sum over its moves.
"""

from __future__ import annotations

import re

FEED_TABLE = "ledger_feed"
ENTRIES_TABLE = "ledger_feed_entries"
TAGS_TABLE = "ledger_stream_tags"
REFERENCES_TABLE = "ledger_references"
STREAMS_TABLE = "ledger_streams"
LEAVES_TABLE = "ledger_leaves"
CHECKPOINTS_TABLE = "ledger_checkpoints"
READ_MODELS_TABLE = "ledger_read_models"
FLOW_RECORDS_TABLE = "ledger_flow_stream_records"
FLOW_DELTAS_TABLE = "ledger_flow_stream_deltas"
# Where earlier versions kept the model's moves: all in one table, then records and deltas
# apart without their streams. Dropped on upgrade.
RETIRED_FLOW_TABLES = ("ledger_flow_moves", "ledger_flow_records", "ledger_flow_deltas")
FLOW_TOTALS_TABLE = "ledger_flow_totals"
# A flow move's figures: signed fen by which an event changed a node's own figure, or null.
FLOW_FIGURES = (
    "amount",
    "appropriated",
    "allocated",
    "committed",
    "released",
    "accepted",
    "paid",
    "remaining",
)
# The facts lists filter on; each stream fills those that apply to it.
STREAM_FACTS = ("year", "purpose", "budget_id", "purchaser_id", "implementer_id", "provider_id")

FEED_COLUMNS = (
    "position, notification_id, recorded_at, actor_role, actor_organization, actor_subject"
)
STREAM_COLUMNS = "stream_id, stream_type, " + ", ".join(STREAM_FACTS)
# The same on both databases but for the names of their types.
# A flow read to its contracts wants a few hundred records among a budget's hundred thousand
# deltas: apart, each is found by an index the planner can count on.
_FLOW_RECORDS_COLUMNS = (
    "position {integer} NOT NULL, seq {integer} NOT NULL, budget_id {text} NOT NULL, "
    "stream_id {text} NOT NULL, node_key {text} NOT NULL, kind {text} NOT NULL, parent_key {text}, "
    "created {integer} NOT NULL, occurred_at {integer} NOT NULL, "
    "state {text}, details {text}, PRIMARY KEY (position, seq)"
)
_FLOW_DELTAS_COLUMNS = (
    "position {integer} NOT NULL, seq {integer} NOT NULL, budget_id {text} NOT NULL, "
    "stream_id {text} NOT NULL, node_key {text} NOT NULL, kind {text} NOT NULL, "
    "occurred_at {integer} NOT NULL, "
    + "".join(f"{name} {{integer}}, " for name in FLOW_FIGURES)
    + "PRIMARY KEY (position, seq)"
)
# (table, its index's name suffix, the indexed columns)
FLOW_INDEXES = (
    (FLOW_RECORDS_TABLE, "by_budget", "budget_id, kind, position"),
    # A budget's last change, for the flow answers kept (services/ledger/audit/flow_answers.py).
    (FLOW_RECORDS_TABLE, "by_budget_position", "budget_id, position"),
    (FLOW_DELTAS_TABLE, "by_budget", "budget_id, position"),
    # A stream's last change and its own nodes, for the parts of whole flows kept.
    (FLOW_RECORDS_TABLE, "by_stream", "stream_id, position"),
    (FLOW_DELTAS_TABLE, "by_stream", "stream_id, position"),
)
# A node's totals after each move that changed a figure, keyed (and so found) in business time
# order: the last row at or before a time holds the node's figures as of that time.
_FLOW_TOTALS_COLUMNS = (
    "node_key {text} NOT NULL, occurred_at {integer} NOT NULL, position {integer} NOT NULL, "
    + "".join(f"{name} {{integer}} NOT NULL, " for name in FLOW_FIGURES)
    + "PRIMARY KEY (node_key, occurred_at, position)"
)
# Each flow table and its columns, made by both recorders.
FLOW_TABLES = (
    (FLOW_RECORDS_TABLE, _FLOW_RECORDS_COLUMNS),
    (FLOW_DELTAS_TABLE, _FLOW_DELTAS_COLUMNS),
    (FLOW_TOTALS_TABLE, _FLOW_TOTALS_COLUMNS),
)
# Each flow table's columns and their PostgreSQL types, for rows written as column arrays.
FLOW_COLUMN_TYPES = {
    table: {
        name: "bigint" if kind == "integer" else "text"
        for name, kind in re.findall(r"(\w+) \{(integer|text)\}", columns)
    }
    for table, columns in FLOW_TABLES
}
