"""Appending changes and reading records now, as of a time, and as they changed.

Writers are serialized (an advisory lock on PostgreSQL, a lock in the process on SQLite) so the
feed's positions are dense and in commit order; a change and its feed entry are the same row, so
no change can be missing from the feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from proto.actor import Actor, Role
from services.catalog.store.tables import changes, heads
from services.common.errors import InvalidCommand

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


class Writer:
    """A write transaction: read heads, append changes; all or nothing."""

    def __init__(self, connection: AsyncConnection, caused_by: Actor) -> None:
        self._connection = connection
        self._caused_by = caused_by

    async def head(self, stream_id: UUID) -> StoredChange | None:
        """The latest version of a record, read inside the transaction."""
        return await _head(self._connection, stream_id)

    async def head_by_code(self, stream_type: str, code: str) -> StoredChange | None:
        """The latest version of the record of a type that carries a code, if any."""
        row = (
            await self._connection.execute(
                select(changes)
                .join(heads, heads.c.position == changes.c.position)
                .where(changes.c.stream_type == stream_type, changes.c.code == code)
            )
        ).first()
        return _stored(row) if row else None

    async def append(
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
        current = await _head(connection, stream_id)
        if current is not None and occurred_at < current.occurred_at:
            raise InvalidCommand(
                f"occurred_at {occurred_at.isoformat()} is before this {stream_type}'s last "
                f"change ({current.occurred_at.isoformat()})"
            )
        last = (
            await connection.execute(
                select(changes.c.position, changes.c.recorded_at)
                .order_by(changes.c.position.desc())
                .limit(1)
            )
        ).first()
        position = (last.position if last else 0) + 1
        now = datetime.now(UTC)
        recorded_at = max(now, last.recorded_at) if last else now
        version = (current.stream_version if current else 0) + 1
        record = {**record, "id": str(stream_id), "version": version}
        await connection.execute(
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
            await connection.execute(
                heads.insert().values(
                    stream_id=str(stream_id), stream_type=stream_type, **head_values
                )
            )
        else:
            await connection.execute(
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


async def _head(connection: AsyncConnection, stream_id: UUID) -> StoredChange | None:
    row = (
        await connection.execute(
            select(changes)
            .join(heads, heads.c.position == changes.c.position)
            .where(heads.c.stream_id == str(stream_id))
        )
    ).first()
    return _stored(row) if row else None


class ChangeStore:
    """The catalog's append-only record of changes, and reads over it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._is_postgres = engine.dialect.name == "postgresql"
        self._local_lock = asyncio.Lock()

    @asynccontextmanager
    async def writing(self, caused_by: Actor) -> AsyncIterator[Writer]:
        """One serialized write transaction by a caller, committed if the block ends cleanly."""
        async with self._local_lock, self._engine.begin() as connection:
            if self._is_postgres:
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK_KEY}
                )
            yield Writer(connection, caused_by)

    async def records(
        self,
        stream_type: str,
        *,
        ids: Sequence[UUID] | None = None,
        kind: str | None = None,
        parent_id: UUID | None = None,
        status: str | None = None,
        as_of: datetime | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[StoredChange]:
        """Records of a type, now or as of a business time, oldest first by their first change."""
        if as_of is None:
            latest = select(heads.c.position).where(heads.c.stream_type == stream_type)
            if ids is not None:
                latest = latest.where(heads.c.stream_id.in_([str(i) for i in ids]))
        else:
            latest = select(func.max(changes.c.position)).where(
                changes.c.stream_type == stream_type, changes.c.occurred_at <= as_of
            )
            if ids is not None:
                latest = latest.where(changes.c.stream_id.in_([str(i) for i in ids]))
            latest = latest.group_by(changes.c.stream_id)
        # A record's place in lists is its first change; joined per record found (by the
        # unique stream_id, stream_version index) rather than over every record ever made.
        first = changes.alias("first")
        query = (
            select(changes, first.c.position.label("first_position"))
            .join(
                first,
                (first.c.stream_id == changes.c.stream_id) & (first.c.stream_version == 1),
            )
            .where(changes.c.position.in_(latest), first.c.position > after)
        )
        if kind is not None:
            query = query.where(changes.c.kind == kind)
        if parent_id is not None:
            query = query.where(changes.c.parent_id == str(parent_id))
        if status is not None:
            query = query.where(changes.c.status == status)
        query = query.order_by(first.c.position)
        if limit is not None:
            query = query.limit(limit)
        async with self._engine.connect() as connection:
            return [_stored(row) for row in await connection.execute(query)]

    async def record(
        self, stream_type: str, stream_id: UUID, as_of: datetime | None = None
    ) -> StoredChange | None:
        """One record, now or as of a business time."""
        found = await self.records(stream_type, ids=[stream_id], as_of=as_of)
        return found[0] if found else None

    async def first_position(self, stream_id: UUID) -> int | None:
        """The position of a record's first change: its place in lists."""
        async with self._engine.connect() as connection:
            return await connection.scalar(
                select(changes.c.position).where(
                    changes.c.stream_id == str(stream_id), changes.c.stream_version == 1
                )
            )

    async def history(self, stream_id: UUID) -> list[StoredChange]:
        """Every version of one record, in order."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(changes)
                .where(changes.c.stream_id == str(stream_id))
                .order_by(changes.c.stream_version)
            )
            return [_stored(row) for row in rows]

    async def feed(self, after: int, limit: int) -> list[StoredChange]:
        """Changes after a position, in commit order."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(changes)
                .where(changes.c.position > after)
                .order_by(changes.c.position)
                .limit(limit)
            )
            return [_stored(row) for row in rows]

    async def head_position(self) -> int:
        """The last position, 0 when nothing was recorded."""
        async with self._engine.connect() as connection:
            return int(
                await connection.scalar(select(func.coalesce(func.max(changes.c.position), 0))) or 0
            )
