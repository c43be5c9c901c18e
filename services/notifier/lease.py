"""A lease: the right, held by one process at a time, to follow the feeds and deliver.

Replicas all try to hold it; the one that does works, the others wait. A holder that dies
stops renewing, and another takes over once the lease has expired. Holding is decided by the
database alone (one conditional UPDATE), the same on SQLite and on PostgreSQL. The holder asks
before every page it reads and every round it delivers, but writes only once a third of its
lease has passed: until it expires, no other process can take it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from services.common.sql import Database, now_utc
from services.notifier.store.tables import leases


class Lease:
    """One named lease, as seen by one would-be holder."""

    def __init__(
        self,
        database: Database,
        name: str,
        holder: str,
        duration: timedelta,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        if duration <= timedelta(0):
            raise ValueError(f"a lease must last a while, not {duration}")
        self._database = database
        self.name = name
        self.holder = holder
        self.duration = duration
        self._clock = clock
        # Until when the database has it ours, as last written; None if it may not be.
        self._ours_until: datetime | None = None

    async def hold(self) -> bool:
        """Take the lease if free or expired, renew it if ours; False if another holds it."""
        now = self._clock()
        if self._ours_until is not None and now < self._ours_until - self.duration * 2 / 3:
            return True
        self._ours_until = None

        def take(connection: Connection) -> bool:
            # The row may not exist yet: create it as ours, expired, unless another process
            # got there first. Either way the UPDATE below then decides, atomically.
            self._insert_if_missing(connection, now)
            result = connection.execute(
                update(leases)
                .where(
                    leases.c.name == self.name,
                    or_(leases.c.holder == self.holder, leases.c.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.duration)
            )
            # PostgreSQL re-checks the WHERE on the row a concurrent winner just wrote, and
            # SQLite serializes writers, so at most one contender sees its row updated.
            return result.rowcount == 1

        held = await self._database.write(take)
        if held:
            self._ours_until = now + self.duration
        return held

    async def release(self) -> None:
        """Give the lease up at once, if ours, so another process need not wait for expiry."""
        self._ours_until = None
        mine = (leases.c.name == self.name) & (leases.c.holder == self.holder)
        await self._database.write(
            lambda connection: connection.execute(delete(leases).where(mine))
        )

    def _insert_if_missing(self, connection: Connection, now: datetime) -> None:
        values = {"name": self.name, "holder": self.holder, "expires_at": now}
        if connection.dialect.name == "postgresql":
            connection.execute(postgresql.insert(leases).values(values).on_conflict_do_nothing())
        else:
            connection.execute(sqlite.insert(leases).values(values).on_conflict_do_nothing())
