"""The notifier's background work: follow both feeds and deliver, in one process at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import AuthSettings, ServiceToken
from services.common.observability import bound_request_id
from services.common.sql import Database
from services.notifier.delivery import Dispatcher
from services.notifier.following import FeedFollower
from services.notifier.lease import Lease
from services.notifier.retries import AttemptResult
from services.notifier.settings import NotifierSettings

logger = logging.getLogger("services.notifier")
# The organization the notifier names in the service tokens it mints for itself.
NOTIFIER_SERVICE_ID = uuid.UUID("5e6f1c2a-7b8d-5c4e-9f0a-1b2c3d4e5f63")
# Pages read from one feed before delivering; bounds how long deliveries wait on a backlog.
_PAGES_PER_ROUND = 20


class Worker:
    """Holds the lease, then repeatedly reads new feed entries and delivers what is due.

    Replicas may run side by side: only the lease holder works, so nothing is sent twice;
    another takes over once the holder stops renewing (it crashed, or was stopped).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: NotifierSettings,
        auth: AuthSettings,
        *,
        on_attempt: Callable[[AttemptResult], None] = lambda _: None,
    ):
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._database = Database(engine)
        self._lease = Lease(
            self._database, "worker", holder, timedelta(seconds=settings.lease_seconds)
        )
        token = ServiceToken(auth, NOTIFIER_SERVICE_ID, "notifier", configured=settings.feed_token)
        self._followers = [
            FeedFollower(
                self._database,
                feed=feed,
                base_url=url,
                token=token,
                page_size=settings.feed_page_size,
                settings=settings,
            )
            for feed, url in (("ledger", settings.ledger_url), ("catalog", settings.catalog_url))
        ]
        self._dispatcher = Dispatcher(self._database, settings, on_attempt=on_attempt)
        self._interval = settings.poll_interval_seconds
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Work until `stop`; a failing round is logged and the next one tried."""
        try:
            while not self._stopping.is_set():
                try:
                    # One id per round: the ledger's and catalog's log lines for its reads
                    # carry it, and so do the notifier's.
                    with bound_request_id():
                        busy = await self.round()
                except Exception:
                    logger.exception("notifier round failed; retrying in %.1f s", self._interval)
                    busy = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self._interval)
        finally:
            await self._close()

    async def round(self) -> bool:
        """One round: catch up on each feed, then deliver what is due; whether work was done."""
        if not await self._lease.hold():
            return False
        busy = False
        for follower in self._followers:
            for _ in range(_PAGES_PER_ROUND):
                if self._stopping.is_set() or not await self._lease.hold():
                    return busy
                try:
                    read = await follower.poll_once()
                except Exception as exc:  # a feed that does not answer must not stop the other
                    logger.warning("cannot read the %s feed: %s", follower.feed, exc)
                    break
                busy = busy or read > 0
                if read == 0:
                    break
        if not self._stopping.is_set() and await self._lease.hold():
            busy = await self._dispatcher.deliver_due() > 0 or busy
        return busy

    @property
    def followers(self) -> list[FeedFollower]:
        """The followers of the ledger's and the catalog's feeds."""
        return list(self._followers)

    def stop(self) -> None:
        """Finish the delivery in hand, then stop (and give up the lease)."""
        self._stopping.set()

    async def _close(self) -> None:
        for follower in self._followers:
            await follower.aclose()
        await self._dispatcher.aclose()
        try:
            await self._lease.release()
        except Exception:  # the database may be gone at shutdown; the lease then expires
            logger.warning("could not release the notifier's lease; it expires by itself")
        await self._database.dispose()
