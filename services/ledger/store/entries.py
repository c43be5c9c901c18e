"""Feed entries kept with their events (`ledger_feed_entries`): what a kept body or line was
made from, and, for PostgreSQL, the expressions that write a line and check it.

A kept body is the entry less its feed row's fields (position, record time, caller); a kept
line is the whole entry, its canonical JSON (proto/canonical.py) as services/ledger/feed.py's
EntryWriter writes it: the text served, and hashed into the log. On PostgreSQL each new entry
is kept as its line, written once by the database with its event (store/recorders.py), and
served as it is (store/reads.py) for as long as its event and its feed row are the rows it was
written with, or still have the digest it was kept with; SQLite keeps bodies. The expressions
name the feed row `f`, its event `e` and the kept entry `b`.
"""

from __future__ import annotations

from hashlib import sha256

from eventsourcing.persistence import StoredEvent

CANONICAL_BODY_START = '{"event_type":'
"""How a kept body in canonical form begins (its first key sorted); earlier releases kept
bodies with their keys in the order they were made."""


def event_digest(event: StoredEvent) -> bytes:
    """What an entry's body was made from: a body is served only while its event still matches."""
    head = f"{event.originator_id}|{event.originator_version}|{event.topic}|".encode()
    return sha256(head + event.state).digest()


def line_digest(
    event: StoredEvent, position: int, recorded_at: int, caller: tuple[str, str, str]
) -> bytes:
    """What an entry's line was made from: its event and its feed row (position, record time
    in microseconds, and the caller's role, organization and subject), as LINE_DIGEST."""
    role, organization, subject = caller
    head = (
        f"{event.originator_id}|{event.originator_version}|{event.topic}|{position}|"
        f"{recorded_at}|{role}|{organization}|{len(subject.encode())}|{subject}|"
    )
    return sha256(head.encode() + event.state).digest()


# What a body was made from, as event_digest computes it.
_EVENT_HEAD = "e.originator_id::text || '|' || e.originator_version || '|' || e.topic || '|'"
EVENT_DIGEST = f"sha256(convert_to({_EVENT_HEAD}, 'UTF8') || e.state)"

LINE_DIGEST = (
    f"sha256(convert_to({_EVENT_HEAD} || f.position || '|' || f.recorded_at || '|' "
    "|| f.actor_role || '|' || f.actor_organization || '|' "
    # The subject is the caller's own text: its length in front keeps the join unambiguous.
    "|| octet_length(f.actor_subject) || '|' || f.actor_subject || '|', 'UTF8') || e.state)"
)
"""What a line was written from, as line_digest computes it. A line is served only while its
event and its feed row are as they were, so a feed row changed behind the ledger's back shows
in the log as much as a changed event does."""

BODY_IS_CANONICAL = f"left(b.body, {len(CANONICAL_BODY_START)}) = '{CANONICAL_BODY_START}'"
"""Kept by a release since bodies were canonical, so the line can be written around it."""

# The row's position and time go where their keys sort: before the body's
# `,"stream_id":"<its stream>"`, the entry's own (no payload holds its own stream's id under
# that key); its caller first.
_STREAM_MARK = "',\"stream_id\":\"' || e.originator_id::text || '\"'"
LINE = (
    '\'{"caused_by":{"organization_id":"\' || f.actor_organization || \'","role":"\''
    " || f.actor_role || '\",\"subject\":' || to_json(f.actor_subject)::text || '},'"
    f" || replace(substr(b.body, 2), {_STREAM_MARK}, ',\"position\":' || f.position"
    ' || \',"recorded_at":"\''
    " || to_char(timestamp 'epoch' + f.recorded_at * interval '1 microsecond',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN mod(f.recorded_at, 1000000) = 0 THEN ''"
    " ELSE '.' || lpad(mod(f.recorded_at, 1000000)::text, 6, '0') END"
    f" || 'Z\"' || {_STREAM_MARK})"
)
"""An entry's line, written from its canonical body and its feed row."""

KEPT_ENTRY = (
    f"CASE WHEN {BODY_IS_CANONICAL} THEN NULL ELSE b.body END, "
    f"CASE WHEN {BODY_IS_CANONICAL} THEN {LINE} END, "
    f"CASE WHEN {BODY_IS_CANONICAL} THEN {LINE_DIGEST} END"
)
"""The `body, line, line_digest` kept for an entry with body `b.body`: its line in place of
the body; but a body from before bodies were canonical is kept as it is, and served as written
then."""

WRITTEN_IN = "pg_current_xact_id()::xid"
"""The transaction storing a new entry's line, with its event and its feed row."""

AS_WRITTEN = "b.written_in = e.xmin AND b.written_in = f.xmin"
"""The event and the feed row are the row versions the line was written with. Every change to
a row through PostgreSQL (an UPDATE, or a DELETE and INSERT) makes a new version whose `xmin`
is the transaction that made it, and freezing keeps the `xmin` a row was written with; so the
rows are as the line was written from, without hashing them again. Rows copied since (a
restore, say) have other versions, and are held to the digest instead."""

SERVED_LINE = (
    f"CASE WHEN b.line IS NOT NULL AND {AS_WRITTEN} THEN b.line"
    f" WHEN b.line_digest = {LINE_DIGEST} THEN b.line"
    f" WHEN {BODY_IS_CANONICAL} AND b.digest = {EVENT_DIGEST} THEN {LINE} END"
)
"""The line to serve for a kept entry: the line kept, while its event and feed row are the rows
it was written with, or still have the digest it was kept with; else one written around the
body kept (by a release before lines were), while its event is as it was; else null, and the
entry is computed from what is stored now."""
