"""Loading the scenario through the public REST APIs, idempotently, with progress shown.

Every record is found again by its code or reference, and every step that moves a record on
(review, award, activation, acceptance, reversal) is taken only if the record has not moved yet:
a second run reads what the first made and adds nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

from rich.progress import Progress

from demo.api import Api, cny
from demo.scenario import Budget, Item, Organization, Purchase, Scenario
from proto.actor import Role

CHINA = timezone(timedelta(hours=8))
T = TypeVar("T")


def at(day: date, hour: int = 10) -> str:
    """A business time on a day, in China's time zone."""
    return datetime.combine(day, time(hour), CHINA).isoformat()


@dataclass
class Loaded:
    """Catalog ids by code; budgets by reference."""

    ids: dict[str, str] = field(default_factory=dict)
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)


async def _each(
    progress: Progress, label: str, things: Iterable[T], load: Callable[[T], Awaitable[None]]
) -> None:
    things = list(things)
    task = progress.add_task(label, total=len(things))

    async def one(thing: T) -> None:
        await load(thing)
        progress.advance(task)

    await asyncio.gather(*(one(thing) for thing in things))


class Loader:
    """Loads one scenario through one set of clients."""

    def __init__(self, api: Api, scenario: Scenario) -> None:
        self.api = api
        self.scenario = scenario
        self.loaded = Loaded()
        self._signing = asyncio.Lock()

    def _id(self, code: str) -> str:
        return self.loaded.ids[code]

    async def run(self, progress: Progress) -> Loaded:
        """Load everything, in dependency order."""
        await self._organizations(progress)
        await _each(progress, "catalog: items admitted", self.scenario.items, self._item)
        await self._platforms(progress)
        await _each(progress, "ledger: budgets allocated", self.scenario.budgets, self._budget)
        await _each(
            progress,
            "ledger: purchases, deliveries, payments",
            self.scenario.purchases,
            self._purchase,
        )
        return self.loaded

    # --- the catalog ------------------------------------------------------------------------

    async def _organization(self, org: Organization) -> None:
        body: dict[str, Any] = {
            "code": org.code,
            "kind": org.kind,
            "name": org.name,
            "occurred_at": at(date(2014, 1, 2), 9),
        }
        if org.street_code is not None:
            body["street_office_id"] = self._id(org.street_code)
        if org.registration is not None:
            body["registration"] = org.registration
        made = await self.api.post(self.api.catalog, "/organizations", body, self.api.civil_affairs)
        self.loaded.ids[org.code] = made["id"]

    async def _organizations(self, progress: Progress) -> None:
        # Communities name their street office, so those come first.
        first = [o for o in self.scenario.organizations if o.kind != "community"]
        then = [o for o in self.scenario.organizations if o.kind == "community"]
        await _each(progress, "catalog: organizations", first, self._organization)
        await _each(progress, "catalog: communities", then, self._organization)

    async def _item(self, item: Item) -> None:
        body = {
            "code": item.code,
            "name": item.name,
            "kind": item.kind,
            "domain": item.domain,
            "duty_list": item.duty_list,
            "push_down_category": item.category,
            "delivery_modes": list(item.delivery_modes),
            "proposed_by": self._id(item.proposer_code),
            "occurred_at": at(date(2014, 3, 20), 9),
        }
        made = await self.api.post(self.api.catalog, "/items", body, self.api.civil_affairs)
        self.loaded.ids[item.code] = made["id"]
        path = f"/items/{made['id']}"
        if made["status"] == "proposed":
            made = await self.api.post(
                self.api.catalog,
                f"{path}/review",
                {"occurred_at": at(date(2014, 3, 25), 9)},
                self.api.civil_affairs,
            )
        if made["status"] == "under_review":
            funding = (
                [{"source": item.funding_source, "year": 2014, "amount": cny(item.funding_fen)}]
                if item.funding_fen
                else []
            )
            await self.api.post(
                self.api.catalog,
                f"{path}/admission",
                {"funding": funding, "occurred_at": at(date(2014, 3, 31), 9)},
                self.api.civil_affairs,
            )

    async def _platforms(self, progress: Progress) -> None:
        haiyu = self._id("DEMO-BA-HAIYU")
        listed = await self.api.get(
            self.api.catalog,
            "/platforms",
            self.api.civil_affairs,
            {"community_id": haiyu, "limit": 1000},
        )
        # Platforms have no code of their own: a second run knows them by name.
        known = {p["name"] for p in listed["items"]}

        async def open_platform(platform: Any) -> None:
            if platform.name in known:
                return
            body = {
                "community_id": haiyu,
                "name": platform.name,
                "type": platform.type,
                "location": platform.location,
                "item_ids": [self._id(code) for code in platform.item_codes],
                "provider_ids": [self._id(code) for code in platform.provider_codes],
                "occurred_at": at(date(2014, 4, 1), 9),
            }
            # A community opens its own platforms.
            await self.api.post(
                self.api.catalog, "/platforms", body, self.api.as_(Role.COMMUNITY, haiyu)
            )

        await _each(
            progress, "catalog: Haiyu's platforms", self.scenario.haiyu_platforms, open_platform
        )

    # --- the ledger -------------------------------------------------------------------------

    async def _budget(self, budget: Budget) -> None:
        body = {
            "reference": budget.reference,
            "year": 2014,
            "purpose": budget.purpose,
            "title": budget.title,
            "sources": [
                {
                    "kind": "district_finance",
                    "name": "Wuhou district finance",
                    "amount": cny(budget.amount_fen),
                }
            ],
            "occurred_at": at(date(2014, 1, 1), 9),
        }
        made = await self.api.post(self.api.ledger, "/budgets", body, self.api.finance)
        allocated = {a["street_office_id"] for a in made["allocations"]}
        for street_code, amount in budget.allocations.items():
            if self._id(street_code) in allocated:
                continue
            made = await self.api.post(
                self.api.ledger,
                f"/budgets/{made['id']}/allocations",
                {
                    "street_office_id": self._id(street_code),
                    "amount": cny(amount),
                    "occurred_at": at(date(2014, 3, 31), 9),
                },
                self.api.finance,
            )
        self.loaded.budgets[budget.reference] = made

    async def _purchase(self, purchase: Purchase) -> None:
        street_id = self._id(purchase.street_code)
        street = self.api.as_(Role.STREET, street_id)
        provider = self.api.as_(Role.PROVIDER, self._id(purchase.provider_code))
        budget = self.loaded.budgets[self.scenario.push_down.reference]
        allocation = next(a for a in budget["allocations"] if a["street_office_id"] == street_id)
        value = cny(purchase.value_fen)
        opened = purchase.signed_on - timedelta(days=13)
        project = await self.api.post(
            self.api.ledger,
            "/projects",
            {
                "reference": purchase.reference,
                "title": purchase.title,
                "method": "direct_entrustment",
                "justification": "matched with the provider at the 2014 project fair (项目对接会)",
                "purchaser_id": street_id,
                "budget_id": budget["id"],
                "allocation_id": allocation["id"],
                "item_ids": [self._id(purchase.item_code)],
                "estimated_value": value,
                "occurred_at": at(opened, 9),
            },
            street,
        )
        if project["state"] == "draft":
            await self.api.post(
                self.api.ledger,
                f"/projects/{project['id']}/direct-award",
                {
                    "provider_id": self._id(purchase.provider_code),
                    "price": value,
                    "occurred_at": at(opened + timedelta(days=9), 9),
                },
                street,
            )
        # Every signing commits against the one push-down budget: signed one at a time, they
        # never race (racing, each would be refused and retried), while the rest runs alongside.
        async with self._signing:
            contract = await self.api.post(
                self.api.ledger,
                "/contracts",
                {
                    "reference": purchase.reference.replace("-P-", "-C-"),
                    "title": purchase.title,
                    "project_id": project["id"],
                    "budget_id": budget["id"],
                    "allocation_id": allocation["id"],
                    "purchaser_id": street_id,
                    "implementer_id": self._id(purchase.community_code),
                    "provider_id": self._id(purchase.provider_code),
                    "item_ids": [self._id(purchase.item_code)],
                    "value": value,
                    "period_start": purchase.signed_on.isoformat(),
                    "period_end": "2014-12-31",
                    "occurred_at": at(purchase.signed_on),
                },
                street,
            )
        cid = contract["id"]
        if contract["state"] == "signed":
            await self.api.post(
                self.api.ledger,
                f"/contracts/{cid}/activation",
                {"occurred_at": at(purchase.signed_on + timedelta(days=1), 9)},
                street,
            )
        for delivery in purchase.deliveries:
            reported = await self.api.post(
                self.api.ledger,
                f"/contracts/{cid}/deliveries",
                {
                    "reference": delivery.reference,
                    "period_start": purchase.signed_on.isoformat(),
                    "period_end": (delivery.reported_on - timedelta(days=1)).isoformat(),
                    "quantity": max(1, delivery.amount_fen // 12_500),
                    "unit": "person-times",
                    "amount": cny(delivery.amount_fen),
                    "description": "services delivered as agreed, with attendance sheets",
                    "occurred_at": at(delivery.reported_on),
                },
                provider,
            )
            if reported["state"] != "pending":
                continue
            decided = at(delivery.reported_on + timedelta(days=5))
            path = f"/contracts/{cid}/deliveries/{reported['id']}"
            if delivery.accepted:
                await self.api.post(
                    self.api.ledger,
                    f"{path}/acceptance",
                    {"score": 90, "occurred_at": decided},
                    street,
                )
            else:
                await self.api.post(
                    self.api.ledger,
                    f"{path}/rejection",
                    {
                        "reason": "attendance sheets missing for half the visits",
                        "occurred_at": decided,
                    },
                    street,
                )
        for payment in purchase.payments:
            paid = await self.api.post(
                self.api.ledger,
                f"/contracts/{cid}/payments",
                {
                    "reference": payment.reference,
                    "amount": cny(payment.amount_fen),
                    "occurred_at": at(payment.paid_on),
                },
                street,
            )
            if payment.reversal is not None and not paid["reversed"]:
                await self.api.post(
                    self.api.ledger,
                    f"/contracts/{cid}/payments/{payment.reference}/reversal",
                    {
                        "reason": payment.reversal,
                        "occurred_at": at(payment.paid_on + timedelta(days=1)),
                    },
                    street,
                )
