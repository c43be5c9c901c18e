"""Following a service's feed: each event, and the alerts it raises, queued exactly once.

A follower reads one page after the position it stored, asks the ledger what it needs to know
about the page's entries (the organizations and budget they concern, figures for alerts), and
only then, in one transaction, queues the messages and stores the new position. Killed at any
moment, it resumes from the stored position: nothing is skipped, nothing queued twice. If the
feed or the ledger does not answer, nothing is written at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from proto.feed import FeedEntry, FeedPage
from services.common.observability import propagate_from
from services.common.sql import Database, now_utc
from services.notifier.alerts import (
    SHARE_EVENTS,
    committed_share_alerts,
    contract_parties,
    delivery_rejected_alert,
    item_proposed_alert,
    payment_made_alert,
    share_threshold,
)
from services.notifier.messages import Message, active_subscriptions, enqueue
from services.notifier.settings import NotifierSettings
from services.notifier.store.tables import feed_positions

logger = logging.getLogger("services.notifier.following")

FEEDS = ("ledger", "catalog")
# Long enough for a page of a busy feed, short enough that a hung service is noticed.
TIMEOUT_SECONDS = 10.0
# Payload fields naming an organization, in the ledger's and the catalog's events alike.
PARTY_FIELDS = (
    "purchaser_id",
    "implementer_id",
    "provider_id",
    "street_office_id",
    "community_id",
    "grantor_id",
    "grantee_id",
    "holder_id",
    "proposed_by",
)
PARTY_LISTS = ("provider_ids", "invited_provider_ids")
# Ledger streams whose first event names their parties and budget, and where to read them later.
OPENING_EVENTS = {
    "contract": "contract.signed",
    "grant": "grant.awarded",
    "project": "project.opened",
}
READ_PATHS = {"contract": "/contracts", "grant": "/grants", "project": "/projects"}
STREAM_PARTIES = {
    "contract": ("purchaser_id", "implementer_id", "provider_id"),
    "grant": ("grantor_id", "grantee_id"),
    "project": ("purchaser_id",),
}


class FeedUnavailable(Exception):
    """The feed, or the ledger asked about an entry, did not answer as it should."""


class _Overtaken(Exception):
    """The stored position moved while we read the page: another process followed it."""


@dataclass
class _BudgetParties:
    holder_id: str | None = None
    street_offices: dict[str, str] = field(default_factory=dict)  # allocation id → street office


@dataclass(frozen=True)
class _StreamParties:
    organization_ids: frozenset[str]
    budget_id: str | None


def payload_parties(payload: dict[str, Any]) -> set[str]:
    """Organizations an event's payload names in its party fields."""
    found = {str(payload[name]) for name in PARTY_FIELDS if payload.get(name) is not None}
    for name in PARTY_LISTS:
        found.update(str(value) for value in payload.get(name) or ())
    return found


class FeedFollower:
    """Follows one feed (`ledger` or `catalog`) into the notifier's queue of deliveries."""

    def __init__(
        self,
        database: Database,
        *,
        feed: str,
        base_url: str,
        token: Callable[[], str],
        page_size: int,
        settings: NotifierSettings,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        if feed not in FEEDS:
            raise ValueError(f"feed must be one of {', '.join(FEEDS)}, not {feed!r}")
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        self.feed = feed
        self._database = database
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._page_size = page_size
        self._threshold = share_threshold(settings.committed_share_alert)
        self._clock = clock
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT_SECONDS, trust_env=False)
        propagate_from(self._client)
        # The feed's head as its last page said, for the lag metric; None before any page.
        self.last_head: int | None = None
        # Parties never change once recorded, so what was learned of a stream stays true.
        self._budgets: dict[str, _BudgetParties] = {}
        self._streams: dict[str, _StreamParties] = {}
        self._applicants: dict[str, str] = {}  # application or objection id → provider

    async def position(self) -> int:
        """The last position of the feed whose events are queued; 0 before the first."""
        stored = await self._database.read(
            lambda connection: connection.scalar(
                select(feed_positions.c.position).where(feed_positions.c.feed == self.feed)
            )
        )
        return int(stored) if stored is not None else 0

    async def poll_once(self) -> int:
        """Queue the events of one page after the stored position; how many were read."""
        start = await self.position()
        page = await self._page(start)
        if not page.entries:
            return 0
        messages: list[Message] = []
        for entry in page.entries:
            messages += await self._messages(entry)
        end = page.entries[-1].position
        now = self._clock()

        def queue(connection: Connection) -> None:
            # First move the position, as a compare-and-set: it locks the row, and a
            # follower that lost a race (two replicas despite the lease) writes nothing.
            if not self._advance(connection, start, end, now):
                raise _Overtaken
            wanted = active_subscriptions(connection)
            for message in messages:
                enqueue(connection, message, wanted, now)

        try:
            await self._database.write(queue)
        except _Overtaken:
            logger.warning("another process followed the %s feed past %d", self.feed, start)
            return 0
        return len(page.entries)

    async def catch_up(self) -> int:
        """Poll until a page comes back empty; how many entries were read in all."""
        total = 0
        while read := await self.poll_once():
            total += read
        return total

    async def aclose(self) -> None:
        """Close the HTTP client, if the follower made it."""
        if self._owns_client:
            await self._client.aclose()

    # --- reading -------------------------------------------------------------------------

    async def _get(
        self, path: str, params: dict[str, str | int] | None = None, *, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        url = self._base_url + path
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            response = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise FeedUnavailable(f"GET {url} failed: {exc!r}") from exc
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200:
            raise FeedUnavailable(
                f"GET {url} answered {response.status_code}: {response.text[:300]}"
            )
        try:
            body = response.json()
        except ValueError:
            raise FeedUnavailable(f"GET {url} answered something other than JSON") from None
        if not isinstance(body, dict):
            raise FeedUnavailable(f"GET {url} answered JSON that is not an object")
        return body

    async def _read(self, path: str, params: dict[str, str | int] | None = None) -> dict[str, Any]:
        body = await self._get(path, params)
        assert body is not None  # only a missing_ok read answers None
        return body

    async def _page(self, after: int) -> FeedPage:
        body = await self._read("/events", {"after": after, "limit": self._page_size})
        try:
            page = FeedPage.model_validate(body)
        except ValidationError as exc:
            raise FeedUnavailable(f"the {self.feed} feed answered no feed page: {exc}") from None
        self.last_head = page.head
        positions = [entry.position for entry in page.entries]
        # Positions are dense: anything else would make us skip events, so stop instead.
        if positions != list(range(after + 1, after + 1 + len(positions))):
            raise FeedUnavailable(
                f"the {self.feed} feed answered positions {positions[:5]}… after {after}"
            )
        return page

    # --- what an entry becomes -------------------------------------------------------------

    async def _messages(self, entry: FeedEntry) -> list[Message]:
        alerts = await self._alerts(entry)
        organization_ids, budget_id = await self._concerns(entry)
        event = Message(
            feed=self.feed,
            position=entry.position,
            event_type=entry.event_type,
            timestamp=entry.recorded_at,
            data=entry.model_dump(mode="json"),
            organization_ids=organization_ids,
            budget_id=budget_id,
        )
        return [event, *alerts]

    async def _alerts(self, entry: FeedEntry) -> list[Message]:
        kind, stream = entry.stream_type, str(entry.stream_id)
        if self.feed == "catalog":
            if entry.event_type == "item.proposed":
                return [item_proposed_alert(entry, feed=self.feed)]
            return []
        if kind == "budget" and entry.event_type in SHARE_EVENTS:
            path = f"/budgets/{stream}"
            before = await self._get(path, {"known_at": entry.position - 1}, missing_ok=True)
            after = await self._read(path, {"known_at": entry.position})
            self._learn_budget(after)
            return committed_share_alerts(
                entry, feed=self.feed, before=before, after=after, threshold=self._threshold
            )
        if kind == "contract" and entry.event_type in ("payment.recorded", "delivery.rejected"):
            contract = await self._read(f"/contracts/{stream}", {"known_at": entry.position})
            self._learn_stream(kind, stream, contract)
            if entry.event_type == "payment.recorded":
                return [payment_made_alert(entry, feed=self.feed, contract=contract)]
            # A delivery's claim never changes once reported, so its current state will do.
            delivery_id = entry.payload["delivery_id"]
            delivery = await self._read(f"/contracts/{stream}/deliveries/{delivery_id}")
            return [
                delivery_rejected_alert(entry, feed=self.feed, contract=contract, delivery=delivery)
            ]
        return []

    async def _concerns(self, entry: FeedEntry) -> tuple[frozenset[str], str | None]:
        """The organizations an entry concerns, and its budget if it concerns one."""
        payload = entry.payload
        organization_ids = payload_parties(payload)
        kind, stream = entry.stream_type, str(entry.stream_id)
        if self.feed == "catalog":
            if kind == "organization":
                organization_ids.add(stream)
            return frozenset(organization_ids), None
        if kind == "budget":
            budget = await self._budget_parties(entry)
            if budget.holder_id is not None:
                organization_ids.add(budget.holder_id)
            allocation_id = payload.get("allocation_id")
            if allocation_id is not None and str(allocation_id) in budget.street_offices:
                organization_ids.add(budget.street_offices[str(allocation_id)])
            return frozenset(organization_ids), stream
        if kind in READ_PATHS:
            parties = await self._stream_parties(entry)
            organization_ids |= parties.organization_ids
            if kind == "project":
                organization_ids |= await self._project_applicants(entry)
            return frozenset(organization_ids), parties.budget_id
        budget_id = payload.get("budget_id")
        return frozenset(organization_ids), str(budget_id) if budget_id else None

    async def _budget_parties(self, entry: FeedEntry) -> _BudgetParties:
        stream = str(entry.stream_id)
        budget = self._budgets.setdefault(stream, _BudgetParties())
        payload = entry.payload
        if entry.event_type == "budget.opened":
            budget.holder_id = str(payload["holder_id"])
        if entry.event_type == "allocation.made":
            budget.street_offices[str(payload["allocation_id"])] = str(payload["street_office_id"])
        allocation_id = payload.get("allocation_id")
        unknown_allocation = allocation_id is not None and (
            str(allocation_id) not in budget.street_offices
        )
        if budget.holder_id is None or unknown_allocation:
            self._learn_budget(await self._read(f"/budgets/{stream}", {"known_at": entry.position}))
        return budget

    def _learn_budget(self, read: dict[str, Any]) -> None:
        budget = self._budgets.setdefault(str(read["id"]), _BudgetParties())
        budget.holder_id = str(read["holder_id"])
        for allocation in read["allocations"]:
            budget.street_offices[str(allocation["id"])] = str(allocation["street_office_id"])

    async def _stream_parties(self, entry: FeedEntry) -> _StreamParties:
        kind, stream = entry.stream_type, str(entry.stream_id)
        if stream not in self._streams:
            if entry.event_type == OPENING_EVENTS[kind]:
                self._learn_stream(kind, stream, entry.payload)
            else:
                self._learn_stream(kind, stream, await self._read(f"{READ_PATHS[kind]}/{stream}"))
        return self._streams[stream]

    def _learn_stream(self, kind: str, stream: str, record: dict[str, Any]) -> None:
        if kind == "contract":
            organization_ids = contract_parties(record)
        else:
            organization_ids = {str(record[name]) for name in STREAM_PARTIES[kind]}
        self._streams[stream] = _StreamParties(
            frozenset(organization_ids), str(record["budget_id"])
        )

    async def _project_applicants(self, entry: FeedEntry) -> set[str]:
        """The applicant an application's or objection's later event concerns."""
        payload = entry.payload
        if entry.event_type == "application.submitted":
            self._applicants[str(payload["application_id"])] = str(payload["provider_id"])
        if entry.event_type == "objection.lodged":
            self._applicants[str(payload["objection_id"])] = str(payload["provider_id"])
        named = {
            str(payload[name])
            for name in ("application_id", "objection_id")
            if payload.get(name) is not None
        }
        if named - self._applicants.keys():
            project = await self._read(f"/projects/{entry.stream_id}", {"known_at": entry.position})
            for record in [*project["applications"], *project["objections"]]:
                self._applicants[str(record["id"])] = str(record["provider_id"])
        return {self._applicants[i] for i in named if i in self._applicants}

    # --- writing ---------------------------------------------------------------------------

    def _advance(self, connection: Connection, start: int, end: int, now: datetime) -> bool:
        """Store `end` as the position if it still is `start`; whether it was."""
        if start == 0:
            values = {"feed": self.feed, "position": end, "updated_at": now}
            if connection.dialect.name == "postgresql":
                statement = postgresql.insert(feed_positions).values(values)
                inserted = connection.execute(statement.on_conflict_do_nothing())
            else:
                statement_ = sqlite.insert(feed_positions).values(values)
                inserted = connection.execute(statement_.on_conflict_do_nothing())
            if inserted.rowcount == 1:
                return True
        moved = connection.execute(
            update(feed_positions)
            .where(feed_positions.c.feed == self.feed, feed_positions.c.position == start)
            .values(position=end, updated_at=now)
        )
        return moved.rowcount == 1
