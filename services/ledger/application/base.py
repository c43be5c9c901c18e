"""What every use case stands on: loading, saving, references and pages."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoding
from eventsourcing.utils import Environment, EnvType

from proto.actor import Actor, Role
from proto.canonical import canonical_bytes, canonical_json
from proto.feed import FeedPage
from services.common.permissions import require_role
from services.ledger.application.access import OVERSEERS, require_party, require_visible, sees
from services.ledger.catalog import CatalogReader
from services.ledger.domain.budget import Budget
from services.ledger.domain.errors import ConcurrentWrite, NotFound, ReferenceConflict
from services.ledger.feed import STREAM_TYPES, EntryWriter, entry_body, feed_entry
from services.ledger.history import project, project_as_of
from services.ledger.sealing import PriceSealer
from services.ledger.store.entries import event_digest
from services.ledger.store.entry_upgrades import EntryUpgrades
from services.ledger.store.group_commit import GroupCommitting
from services.ledger.store.reads import EntryRow, FeedRow, LedgerReads
from services.ledger.store.recorders import ReferenceClaim, StreamEntry

A = TypeVar("A", bound=Aggregate)
TREASURY_SCOPE = "treasury"


class DateAsISO(Transcoding):
    """Stores calendar dates (contract periods) as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class Page:
    """Stream ids of one page of a list, and the cursor for the next page (None at the end)."""

    ids: list[UUID]
    next_cursor: int | None


KnownAt = int | datetime


def _kind(cls: type[Aggregate]) -> str:
    return STREAM_TYPES.get(cls.__name__, cls.__name__.lower())


def _named(aggregate: Aggregate, by: Actor) -> str:
    # Naming the id of a record the caller may not see would let it probe others' records.
    kind = _kind(type(aggregate))
    return f"{kind} {aggregate.id}" if sees(by, aggregate) else f"another {kind}"


class LedgerBase(Application[UUID]):
    """The event store, its reads, and the plumbing every use case shares."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        beneficiary_key: bytes,
        catalog: CatalogReader,
        price_sealer: PriceSealer,
    ) -> None:
        super().__init__(env)
        self.reads = LedgerReads(self.recorder)
        self.catalog = catalog
        self.price_sealer = price_sealer
        self._beneficiary_key = beneficiary_key
        self.entry_pages: Counter[str] = Counter()
        """Pages of feed entries this replica served, by who wrote their JSON: "database", or
        "ledger" where the database could not (SQLite; entries not as written, see
        `LedgerReads.entry_page`)."""
        self._counting = threading.Lock()

    def start_group_commit(self, window_seconds: float) -> None:
        """Commit writes that arrive together in one transaction (see store/group_commit.py)."""
        assert isinstance(self.recorder, GroupCommitting)
        self.recorder.start_group_commit(window_seconds)

    def close(self) -> None:
        # Writes already handed to the committer are committed and answered before closing.
        if isinstance(self.recorder, GroupCommitting):
            self.recorder.stop_group_commit()
        super().close()

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        # Each event's feed entry is made once, here, and kept with it, so the feed is served
        # without decoding every event again (store/recorders.py, ledger_feed_entries).
        processing_event.saved_kwargs["entries"] = [
            entry_body(event) for event in processing_event.events
        ]
        return super()._record(processing_event)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Only the settings given: the library would also read the process environment, where
        # a stray variable (say, one enabling its stored-function insert path, which skips the
        # recorder's hooks and so the feed) could change how events are stored.
        return Environment(name, dict(env or {}))

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def feed(self, *, after: int, limit: int, by: Actor) -> list[tuple[FeedRow, Any]]:
        """Feed entries after a position, each with its decoded domain event."""
        require_role(by, OVERSEERS, "read the whole ledger's feed")
        return [
            (row, self.mapper.to_domain_event(row.event)) for row in self.reads.feed(after, limit)
        ]

    def feed_json(self, *, after: int, limit: int, by: Actor) -> bytes:
        """A page of the feed as JSON, UTF-8, assembled from the entries kept with the events."""
        require_role(by, OVERSEERS, "read the whole ledger's feed")
        head = self.reads.head()
        entries, last = self._entries(after, limit, end="", separator=",")
        next_after, head = FeedPage.cursor([] if last is None else [last], after=after, head=head)
        return b'{"entries":[%b],"next_after":%d,"head":%d}' % (entries, next_after, head)

    def log_lines(self, *, after: int, limit: int, by: Actor) -> bytes:
        """Feed entries after a position, each the canonical JSON its leaf hash is over and
        a line feed, UTF-8."""
        require_role(by, OVERSEERS, "read the whole ledger's feed")
        # Each line is ended as the page is written, not the page once it is: adding the
        # last line feed to the whole page, megabytes, would copy it into fresh memory again.
        return self._entries(after, limit, end="\n", separator="")[0]

    def _entries(
        self, after: int, limit: int, *, end: str, separator: str
    ) -> tuple[bytes, int | None]:
        """The canonical JSON of the feed entries after a position, each followed by `end`,
        joined by `separator`, UTF-8; and the last position among them."""
        page = self.reads.entry_page(after, limit, end, separator)
        with self._counting:
            self.entry_pages["ledger" if page is None else "database"] += 1
        if page is not None:
            return page.text, page.last
        # SQLite, or a page with a body kept before bodies were canonical or an event changed.
        writer = EntryWriter()
        rows = self.reads.feed_entries(after, limit)
        joined = separator.join(self.entry_json(row, writer) + end for row in rows)
        return joined.encode(), rows[-1].position if rows else None

    def keep_missing_entries(self) -> int:
        """Keep the feed entry of each event stored before entries were kept, and write those
        kept before they were canonical in canonical form; how many."""
        upgrades = EntryUpgrades(self.recorder)
        kept = after = 0
        while batch := upgrades.unkept_entries(after, 1000):
            upgrades.keep_entries(
                [
                    (nid, event_digest(event), entry_body(self.mapper.to_domain_event(event)))
                    for nid, event in batch
                ]
            )
            kept += len(batch)
            after = batch[-1][0]
        after = 0
        while bodies := upgrades.uncanonical_bodies(after, 1000):
            # The same fields, their keys sorted: what the body says does not change.
            upgrades.rewrite_bodies(
                [(nid, canonical_json(json.loads(body)).decode()) for nid, body in bodies]
            )
            kept += len(bodies)
            after = bodies[-1][0]
        return kept

    def keep_missing_lines(self) -> int:
        """Write the whole line of each feed entry kept before lines were, so it is served as
        kept; how many."""
        return _batches(EntryUpgrades(self.recorder).keep_lines)

    def keep_missing_row_versions(self) -> int:
        """Keep with each line kept before lines were tied to their transaction the row version
        of its event and feed row, where they still have its digest, so it is served without
        hashing them; how many."""
        return _batches(EntryUpgrades(self.recorder).keep_row_versions)

    def entry_json(self, row: EntryRow, writer: EntryWriter) -> str:
        """One feed entry's canonical JSON, as `GET /events` serves it and its leaf hash is over."""
        if row.line is not None:
            return row.line
        if row.body is not None:
            return writer.entry(row.position, row.recorded_at, row.caused_by, row.body)
        # From before bodies were kept, or from an event changed since: computed.
        assert row.stored is not None
        entry = feed_entry(row.stored, self.mapper.to_domain_event(row.stored.event))
        return canonical_bytes(entry).decode()

    def stream_history(self, stream_id: UUID, *, by: Actor) -> list[tuple[FeedRow, Any]]:
        """Every event of one aggregate, with feed positions."""
        require_role(by, OVERSEERS, "read event streams")
        rows = self.reads.stream(stream_id)
        if not rows:
            raise NotFound(f"no stream {stream_id}")
        return [(row, self.mapper.to_domain_event(row.event)) for row in rows]

    def _get(
        self,
        cls: type[A],
        aggregate_id: UUID,
        *,
        as_of: datetime | None = None,
        known_at: KnownAt | None = None,
    ) -> A:
        kind = _kind(cls)
        version: int | None = None
        if known_at is not None:
            position = (
                known_at if isinstance(known_at, int) else self.reads.position_known_at(known_at)
            )
            version = self.reads.stream_version_at(aggregate_id, position)
            if version is None:
                raise NotFound(f"{kind} {aggregate_id} was not yet recorded at position {position}")
        try:
            aggregate: Aggregate = (
                self.repository.get(aggregate_id, version=version, projector_func=project)
                if as_of is None
                else self._as_of(aggregate_id, as_of, version)
            )
        except AggregateNotFoundError:
            when = f" as of {as_of.isoformat()}" if as_of else ""
            raise NotFound(f"no {kind} {aggregate_id}{when}") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"no {kind} {aggregate_id}")
        return aggregate

    def _as_of(self, aggregate_id: UUID, as_of: datetime, version: int | None) -> Aggregate:
        # Straight from the events: the aggregate cache holds the latest state, which may
        # include events whose business time is after `as_of`.
        events = self.repository.event_store.get(aggregate_id, lte=version)
        aggregate: Aggregate | None = project_as_of(as_of)(None, events)
        if aggregate is None:
            raise AggregateNotFoundError(aggregate_id)
        return aggregate

    def _read(
        self,
        cls: type[A],
        aggregate_id: UUID,
        by: Actor,
        *,
        as_of: datetime | None = None,
        known_at: KnownAt | None = None,
    ) -> A:
        """An aggregate the caller may see; 404, as if missing, for one it may not."""
        aggregate = self._get(cls, aggregate_id, as_of=as_of, known_at=known_at)
        require_visible(by, aggregate, f"{_kind(cls)} {aggregate_id}")
        return aggregate

    def _for(
        self, cls: type[A], aggregate_id: UUID, by: Actor, roles: Sequence[Role], doing: str
    ) -> A:
        """An aggregate to change, if the caller is its party in one of `roles` (else 404/403)."""
        aggregate = self._get(cls, aggregate_id)
        require_party(by, aggregate, roles, f"{_kind(cls)} {aggregate_id}", doing)
        return aggregate

    def _by_reference(self, cls: type[A], scope: str, reference: str) -> A | None:
        stream_id = self.reads.referenced_stream(scope, reference)
        return None if stream_id is None else self._get(cls, stream_id)

    @staticmethod
    def _same_or_conflict(
        existing: A, same: bool, scope: str, reference: str, by: Actor
    ) -> tuple[A, bool]:
        if not same:
            raise ReferenceConflict(
                f"{scope} reference {reference!r} is already used by {_named(existing, by)}, "
                "with different terms"
            )
        return existing, False

    def _stream_named(self, stream_id: UUID, by: Actor) -> str:
        """A stream as the caller may learn of it: by id if it may see it, else by kind only."""
        try:
            return _named(self.repository.get(stream_id, projector_func=project), by)
        except AggregateNotFoundError:
            return "another record"

    def _page(
        self,
        stream_type: str,
        facts: dict[str, str | int],
        after: int,
        limit: int,
        *,
        tags: Sequence[str] = (),
        keep: Callable[[UUID], bool] | None = None,
    ) -> Page:
        # `keep` filters on what changes over a stream's life (a state), which the index of
        # facts fixed at creation cannot: read on in chunks until the page is full.
        found: list[tuple[int, UUID]] = []
        cursor = after
        while len(found) <= limit:
            chunk = self.reads.streams(stream_type, facts, cursor, max(limit + 1, 100), tags)
            if not chunk:
                break
            found += [row for row in chunk if keep is None or keep(row[1])]
            cursor = chunk[-1][0]
        more = len(found) > limit
        found = found[:limit]
        return Page([stream_id for _, stream_id in found], found[-1][0] if more else None)

    def _treasury_reference_is_ours(self, reference: str, holder_id: UUID, by: Actor) -> bool:
        """Whether this contract or grant already recorded the treasury payout; 409 if another did.

        A treasury reference names one payout, whether a contract's payment or a grant's tranche,
        so both claim it in one scope.
        """
        holder = self.reads.referenced_stream(TREASURY_SCOPE, reference)
        if holder is None:
            return False
        if holder != holder_id:
            raise ReferenceConflict(
                f"treasury reference {reference!r} is already recorded on "
                f"{self._stream_named(holder, by)}"
            )
        return True

    def _save_releasing(
        self,
        holder: Aggregate,
        budget_id: UUID,
        allocation_id: UUID,
        amount_fen: int,
        reason: str,
        occurred_at: datetime,
        *,
        caused_by: Actor,
    ) -> None:
        """Save a contract or grant that gives back part of its commitment, with its budget."""
        if amount_fen == 0:
            self._save(holder, caused_by=caused_by)
            return
        budget = self._get(Budget, budget_id)
        budget.release(
            allocation_id=allocation_id,
            commitment_id=holder.id,
            amount_fen=amount_fen,
            reason=reason,
            occurred_at=occurred_at,
        )
        self._save(holder, budget, caused_by=caused_by)

    def _save(
        self,
        *aggregates: Aggregate,
        caused_by: Actor,
        references: Sequence[ReferenceClaim] = (),
        streams: Sequence[StreamEntry] = (),
    ) -> None:
        try:
            self.save(*aggregates, references=references, streams=streams, caused_by=caused_by)
        except IntegrityError:
            for claim in references:
                holder = self.reads.referenced_stream(claim.scope, claim.reference)
                if holder is not None:
                    raise ReferenceConflict(
                        f"{claim.scope} reference {claim.reference!r} was just used by "
                        f"{self._stream_named(holder, caused_by)}; retry to get it"
                    ) from None
            names = ", ".join(f"{type(a).__name__.lower()} {a.id}" for a in aggregates)
            raise ConcurrentWrite(
                f"{names} changed while this request was processed; reload and retry"
            ) from None


def _batches(batch: Callable[[int, int], tuple[int, int] | None]) -> int:
    """Run `batch(after, 1000)` from the start until it has no more to look at; what it did."""
    done = after = 0
    while (ran := batch(after, 1000)) is not None:
        after, did = ran
        done += did
    return done
