"""Appending changes and reading records now, as of a time, and as they changed.

Each use case is one unit of work: a plain function over a connection, run whole with one hop
off the event loop (see `Database`). Writers are serialized (an advisory lock on PostgreSQL, a
lock in the process on SQLite) so the feed's positions are dense and in commit order; a change
and its feed entry are the same row, so no change can be missing from the feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Connection, func, select, text

from proto.actor import Actor, Role
from services.catalog.store.tables import changes, heads
from services.common.errors import InvalidCommand
from services.common.sql import Database

T = TypeVar("T")

# pg_advisory_xact_lock key: "catalog" in ASCII, so it reads back in pg_locks.
_WRITE_LOCK_KEY = 0x636174616C6F67


@dataclass(frozen=True)
class StoredChange:
    """One row of the changes table."""

    position: int
    stream_id: UUID
    stream_type: str
    stream_version: int
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    record: dict[str, Any]
    caused_by: Actor | None = None


@dataclass(frozen=True)
class Facets:
    """The values lists filter on, taken from a record."""

    kind: str | None = None
    parent_id: UUID | None = None
    status: str | None = None
    code: str | None = None


def _stored(row: Any) -> StoredChange:
    return StoredChange(
        position=row.position,
        stream_id=UUID(row.stream_id),
        stream_type=row.stream_type,
        stream_version=row.stream_version,
        event_type=row.event_type,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        record=row.record,
        caused_by=(
            Actor(
                role=Role(row.actor_role),
                organization_id=UUID(row.actor_organization),
                subject=row.actor_subject,
            )
            if row.actor_role
            else None
        ),
    )


@dataclass(frozen=True)
class Filters:
    """Which records of a type a list holds, now or as of a business time."""

    ids: Sequence[UUID] | None = None
    kind: str | None = None
    parent_id: UUID | None = None
    status: str | None = None
    as_of: datetime | None = None


def _records(
    connection: Connection,
    stream_type: str,
    filters: Filters,
    after: int = 0,
    limit: int | None = None,
) -> list[tuple[int, StoredChange]]:
    """Records with their place in lists (the position of their first change), in that order."""
    ids = None if filters.ids is None else [str(i) for i in filters.ids]
    if filters.as_of is None:
        latest = select(heads.c.position).where(heads.c.stream_type == stream_type)
        if ids is not None:
            latest = latest.where(heads.c.stream_id.in_(ids))
    else:
        latest = select(func.max(changes.c.position)).where(
            changes.c.stream_type == stream_type, changes.c.occurred_at <= filters.as_of
        )
        if ids is not None:
            latest = latest.where(changes.c.stream_id.in_(ids))
        latest = latest.group_by(changes.c.stream_id)
    # A record's place in lists is its first change; joined per record found (by the
    # unique stream_id, stream_version index) rather than over every record ever made.
    first = changes.alias("first")
    query = (
        select(changes, first.c.position.label("first_position"))
        .join(first, (first.c.stream_id == changes.c.stream_id) & (first.c.stream_version == 1))
        .where(changes.c.position.in_(latest), first.c.position > after)
    )
    if filters.kind is not None:
        query = query.where(changes.c.kind == filters.kind)
    if filters.parent_id is not None:
        query = query.where(changes.c.parent_id == str(filters.parent_id))
    if filters.status is not None:
        query = query.where(changes.c.status == filters.status)
    query = query.order_by(first.c.position)
    if limit is not None:
        query = query.limit(limit)
    return [(row.first_position, _stored(row)) for row in connection.execute(query)]


def _head(connection: Connection, stream_id: UUID) -> StoredChange | None:
    row = connection.execute(
        select(changes)
        .join(heads, heads.c.position == changes.c.position)
        .where(heads.c.stream_id == str(stream_id))
    ).first()
    return _stored(row) if row else None


class Writer:
    """A write transaction: read heads, append changes; all or nothing."""

    def __init__(self, connection: Connection, caused_by: Actor) -> None:
        self._connection = connection
        self._caused_by = caused_by

    def head(self, stream_id: UUID) -> StoredChange | None:
        """The latest version of a record, read inside the transaction."""
        return _head(self._connection, stream_id)

    def head_by_code(self, stream_type: str, code: str) -> StoredChange | None:
        """The latest version of the record of a type that carries a code, if any."""
        row = self._connection.execute(
            select(changes)
            .join(heads, heads.c.position == changes.c.position)
            .where(changes.c.stream_type == stream_type, changes.c.code == code)
        ).first()
        return _stored(row) if row else None

    def records(self, stream_type: str, filters: Filters) -> list[StoredChange]:
        """Records of a type as they stand inside the transaction."""
        return [change for _, change in _records(self._connection, stream_type, filters)]

    def append(
        self,
        *,
        stream_id: UUID,
        stream_type: str,
        event_type: str,
        record: dict[str, Any],
        facets: Facets,
        occurred_at: datetime,
    ) -> StoredChange:
        """Append a record's next version; its business time never goes back."""
        connection = self._connection
        current = _head(connection, stream_id)
        if current is not None and occurred_at < current.occurred_at:
            raise InvalidCommand(
                f"occurred_at {occurred_at.isoformat()} is before this {stream_type}'s last "
                f"change ({current.occurred_at.isoformat()})"
            )
        last = connection.execute(
            select(changes.c.position, changes.c.recorded_at)
            .order_by(changes.c.position.desc())
            .limit(1)
        ).first()
        position = (last.position if last else 0) + 1
        now = datetime.now(UTC)
        recorded_at = max(now, last.recorded_at) if last else now
        version = (current.stream_version if current else 0) + 1
        record = {**record, "id": str(stream_id), "version": version}
        connection.execute(
            changes.insert().values(
                position=position,
                stream_id=str(stream_id),
                stream_type=stream_type,
                stream_version=version,
                event_type=event_type,
                occurred_at=occurred_at,
                recorded_at=recorded_at,
                kind=facets.kind,
                parent_id=str(facets.parent_id) if facets.parent_id else None,
                status=facets.status,
                code=facets.code,
                record=record,
                actor_role=self._caused_by.role.value,
                actor_organization=str(self._caused_by.organization_id),
                actor_subject=self._caused_by.subject,
            )
        )
        head_values = {"position": position, "version": version, "occurred_at": occurred_at}
        if current is None:
            connection.execute(
                heads.insert().values(
                    stream_id=str(stream_id), stream_type=stream_type, **head_values
                )
            )
        else:
            connection.execute(
                heads.update().where(heads.c.stream_id == str(stream_id)).values(**head_values)
            )
        return StoredChange(
            position,
            stream_id,
            stream_type,
            version,
            event_type,
            occurred_at,
            recorded_at,
            record,
            self._caused_by,
        )


class ChangeStore:
    """The catalog's append-only record of changes, and reads over it."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._is_postgres = database.dialect == "postgresql"
        self._local_lock = asyncio.Lock()

    async def write(self, caused_by: Actor, work: Callable[[Writer], T]) -> T:
        """Run `work` as one serialized write transaction, committed if it returns."""

        def serialized(connection: Connection) -> T:
            if self._is_postgres:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK_KEY}
                )
            return work(Writer(connection, caused_by))

        async with self._local_lock:
            return await self._database.write(serialized)

    async def records(
        self, stream_type: str, filters: Filters, *, after: int = 0, limit: int | None = None
    ) -> tuple[list[StoredChange], int | None]:
        """Records of a type, oldest first by their first change; and the next page's cursor."""
        found = await self._database.read(
            lambda c: _records(c, stream_type, filters, after, None if limit is None else limit + 1)
        )
        if limit is None or len(found) <= limit:
            return [change for _, change in found], None
        found = found[:limit]
        return [change for _, change in found], found[-1][0]

    async def record(
        self, stream_type: str, stream_id: UUID, as_of: datetime | None = None
    ) -> StoredChange | None:
        """One record, now or as of a business time."""
        found, _ = await self.records(stream_type, Filters(ids=[stream_id], as_of=as_of))
        return found[0] if found else None

    async def history(self, stream_id: UUID) -> list[StoredChange]:
        """Every version of one record, in order."""

        def read(connection: Connection) -> list[StoredChange]:
            rows = connection.execute(
                select(changes)
                .where(changes.c.stream_id == str(stream_id))
                .order_by(changes.c.stream_version)
            )
            return [_stored(row) for row in rows]

        return await self._database.read(read)

    async def feed(self, after: int, limit: int) -> tuple[list[StoredChange], int]:
        """Changes after a position, in commit order; and the last position, read just before."""

        def read(connection: Connection) -> tuple[list[StoredChange], int]:
            head = connection.scalar(select(func.coalesce(func.max(changes.c.position), 0)))
            rows = connection.execute(
                select(changes)
                .where(changes.c.position > after)
                .order_by(changes.c.position)
                .limit(limit)
            )
            return [_stored(row) for row in rows], int(head or 0)

        return await self._database.read(read)
