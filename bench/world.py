"""The world the appends run in, loaded over HTTP by the demo's own loader (untimed set-up).

The demo's scenario at a small scale gives the catalog's organizations and admitted items, a
2014 push-down budget allocated to street offices, and purchase projects, each directly awarded
and signed as a contract. Its deliveries and payments are left out: the benchmarks make their
own. Contracts paid in the benchmark first get one large delivery, accepted, so that each timed
payment (0.01 CNY) stays within what was accepted and not yet paid.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from rich.progress import Progress

from demo.api import Api, cny
from demo.load import Loaded, Loader, at
from demo.scenario import Scale, Scenario, build
from proto.actor import Role

# Business dates of what the benchmarks record: after every contract was signed (the last one
# in September 2014), within every contract's period (to the end of 2014).
DELIVERY_PERIOD = ("2014-10-01", "2014-10-31")
DELIVERED_ON = date(2014, 11, 5)
ACCEPTED_ON = date(2014, 11, 10)
PAID_ON = date(2014, 11, 20)
PREPAID_FEN = 1_000_000  # 10,000.00 CNY accepted per paid contract: a million 0.01 payments


@dataclass(frozen=True)
class ContractRef:
    """A contract the benchmarks write to, and who may write what to it."""

    id: str
    budget_id: str
    purchaser_id: str
    provider_id: str
    implementer_id: str


@dataclass
class World:
    """What was loaded: the catalog's ids by code, the budget, the contracts."""

    loaded: Loaded
    scenario: Scenario
    contracts: list[ContractRef]

    @property
    def budget_id(self) -> str:
        """The push-down budget every contract commits against."""
        return str(self.loaded.budgets[self.scenario.push_down.reference]["id"])


def _scale(contracts: int) -> Scale:
    return Scale(
        street_offices=4,
        communities_per_street=2,
        providers=16,
        # Every push-down item needs a purchase to bring its funding.
        push_down_items=min(12, contracts),
        projects=contracts,
        haiyu_items=3,
        haiyu_providers=1,
        haiyu_platforms=1,
        rejected_deliveries=0,
    )


def scenario(contracts: int, tag: str) -> Scenario:
    """The demo's world with `contracts` purchases, no deliveries or payments.

    The catalog's part is always the same (the scenario's generated details depend on its
    size, and the catalog refuses a known code with other details), so every world of the run
    shares one catalog. `tag` makes the budgets' and purchases' references the world's own.
    """
    catalog = build(_scale(12))
    built = build(_scale(contracts))
    built.organizations, built.items = catalog.organizations, catalog.items
    built.haiyu_platforms = catalog.haiyu_platforms
    built.purchases = [
        replace(p, reference=f"{tag}-{p.reference}", deliveries=(), payments=())
        for p in built.purchases
    ]
    built.budgets = [replace(b, reference=f"{tag}-{b.reference}") for b in built.budgets]
    return built


async def _contracts(api: Api, budget_id: str) -> list[ContractRef]:
    found: list[ContractRef] = []
    cursor: int | None = 0
    while cursor is not None:
        page = await api.get(
            api.ledger,
            "/contracts",
            api.finance,
            {"budget_id": budget_id, "limit": 100, "cursor": cursor},
        )
        found += [
            ContractRef(
                id=c["id"],
                budget_id=c["budget_id"],
                purchaser_id=c["purchaser_id"],
                provider_id=c["provider_id"],
                implementer_id=c["implementer_id"],
            )
            for c in page["items"]
        ]
        cursor = page["next_cursor"]
    return found


async def load_world(api: Api, contracts: int, tag: str) -> World:
    """Load the catalog and the ledger over their APIs, as the demo does; the contracts made."""
    built = scenario(contracts, tag)
    with Progress(transient=True) as progress:
        loaded = await Loader(api, built).run(progress)
    world = World(loaded, built, [])
    world.contracts = await _contracts(api, world.budget_id)
    return world


async def prepay(api: Api, contracts: list[ContractRef], tag: str) -> None:
    """Give each contract one accepted delivery of PREPAID_FEN, for payments to draw on."""

    async def one(contract: ContractRef) -> None:
        provider = api.as_(Role.PROVIDER, contract.provider_id)
        street = api.as_(Role.STREET, contract.purchaser_id)
        reported = await api.post(
            api.ledger,
            f"/contracts/{contract.id}/deliveries",
            delivery_body(f"{tag}-PREPAID-{contract.id}", PREPAID_FEN),
            provider,
        )
        await api.post(
            api.ledger,
            f"/contracts/{contract.id}/deliveries/{reported['id']}/acceptance",
            {"score": 90, "occurred_at": at(ACCEPTED_ON)},
            street,
        )

    await asyncio.gather(*(one(c) for c in contracts))


def delivery_body(reference: str, amount_fen: int) -> dict[str, Any]:
    """A delivery report as providers send it."""
    return {
        "reference": reference,
        "period_start": DELIVERY_PERIOD[0],
        "period_end": DELIVERY_PERIOD[1],
        "quantity": 1,
        "unit": "person-times",
        "amount": cny(amount_fen),
        "description": "home visits delivered as agreed, with attendance sheets",
        "occurred_at": at(DELIVERED_ON),
    }


def payment_body(reference: str, amount_fen: int) -> dict[str, Any]:
    """A treasury payment as street offices record it."""
    return {"reference": reference, "amount": cny(amount_fen), "occurred_at": at(PAID_ON)}
