"""The demo's story as data: Wuhou's 2014 push-down purchases and Haiyu community's catalog.

The counts, kinds and money are the source articles' (see the README's demo section); names the
articles do not give are generated, and say so by their form ("Wuhou street office 07"). The
same scale always gives the same scenario, codes and references included, so loading it twice
finds what the first run made instead of making it again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

PUSH_DOWN_FEN = 3_085_000_000  # 30,850,000.00 CNY: 2014 purchases of push-down items
ALL_PURCHASES_FEN = 4_500_000_000  # 45,000,000.00 CNY: 2014 purchases from social organizations
FIRST_CONTRACT_FEN = 36_000_000  # the first agreement's value (generated: the article gives none)
FIRST_SIGNED = date(2014, 4, 14)
# The articles name four categories of push-down affairs but not their names: these are generated.
CATEGORIES = (
    "social affairs",
    "health and family planning",
    "employment and social security",
    "community safety and culture",
)
DOMAINS = ("elderly", "disability", "youth", "children", "relief", "culture_recreation", "health")
FIRST_ITEM = "Management services for elderly people over 60 on minimum living allowance"


@dataclass(frozen=True)
class Scale:
    """How big a world to load: the articles' figures by default, smaller for a quick test."""

    street_offices: int = 13
    communities_per_street: int = 5
    providers: int = 112  # "more than 110 organizations took on work"
    push_down_items: int = 139
    projects: int = 315
    haiyu_items: int = 256
    haiyu_providers: int = 18
    haiyu_platforms: int = 96
    rejected_deliveries: int = 5


SMALL = Scale(
    street_offices=3,
    communities_per_street=2,
    providers=8,
    push_down_items=12,
    projects=20,
    haiyu_items=24,
    haiyu_providers=4,
    haiyu_platforms=6,
    rejected_deliveries=2,
)


@dataclass(frozen=True)
class Organization:
    """An organization to register in the catalog, found again by its code."""

    code: str
    kind: str
    name: str
    street_code: str | None = None
    registration: dict[str, object] | None = None


@dataclass(frozen=True)
class Item:
    """A service item to propose, review and admit with the money it brings."""

    code: str
    name: str
    kind: str
    domain: str
    duty_list: str
    proposer_code: str
    funding_source: str
    category: str | None = None
    delivery_modes: tuple[str, ...] = ("on_site",)
    funding_fen: int = 0


@dataclass(frozen=True)
class Platform:
    """A place or channel where a community's services are offered."""

    name: str
    type: str
    location: str
    item_codes: tuple[str, ...]
    provider_codes: tuple[str, ...]


@dataclass(frozen=True)
class Delivery:
    """A provider's report on a contract, and the street office's decision on it."""

    reference: str
    amount_fen: int
    reported_on: date
    accepted: bool


@dataclass(frozen=True)
class Payment:
    """A treasury payment; `reversal` is the reason it was reversed, if it was."""

    reference: str
    amount_fen: int
    paid_on: date
    reversal: str | None = None


@dataclass(frozen=True)
class Purchase:
    """One purchase project, directly entrusted, and the contract that came of it."""

    reference: str
    street_code: str
    community_code: str
    provider_code: str
    item_code: str
    title: str
    value_fen: int
    signed_on: date
    deliveries: tuple[Delivery, ...]
    payments: tuple[Payment, ...]


@dataclass(frozen=True)
class Budget:
    """A 2014 budget and how it is allocated to street offices (by street office code)."""

    reference: str
    purpose: str
    title: str
    amount_fen: int
    allocations: dict[str, int]


@dataclass
class Scenario:
    """Everything the demo loads, in the order it must be loaded."""

    organizations: list[Organization] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    haiyu_platforms: list[Platform] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    purchases: list[Purchase] = field(default_factory=list)

    @property
    def push_down(self) -> Budget:
        """The 2014 push-down budget, whose flow the demo prints."""
        return self.budgets[0]


def _provider(code: str, name: str, rng: random.Random) -> Organization:
    category = rng.choice(("community_public_interest", "private_non_enterprise", "social_group"))
    members = rng.randint(5, 60)
    capital = rng.choice((3000, 5000, 10000, 30000))
    return Organization(
        code,
        "social_organization",
        name,
        registration={
            "track": "registered",
            "category": category,
            "registered_capital": {"amount": f"{capital}.00", "currency": "CNY"},
            "members": members,
        },
    )


def _values(count: int, total_fen: int, first_fen: int, rng: random.Random) -> list[int]:
    """`count` contract values in whole hundreds of CNY, the first fixed, summing to `total_fen`."""
    weights = [rng.uniform(0.4, 1.6) for _ in range(count - 1)]
    rest = total_fen - first_fen
    hundreds = [int(rest * w / sum(weights)) // 10_000 * 10_000 for w in weights]
    hundreds[-1] += rest - sum(hundreds)  # the rounding, on one contract
    return [first_fen, *hundreds]


def _wuhou_organizations(scale: Scale, rng: random.Random) -> list[Organization]:
    found = [
        Organization(
            "DEMO-WH-CIVIL-AFFAIRS", "district_bureau", "Wuhou district civil affairs bureau"
        )
    ]
    for s in range(scale.street_offices):
        street = "DEMO-WH-STREET-01" if s == 0 else f"DEMO-WH-STREET-{s + 1:02d}"
        found.append(
            Organization(
                street,
                "street_office",
                "Cuqiao street office" if s == 0 else f"Wuhou street office {s + 1:02d}",
            )
        )
        for c in range(scale.communities_per_street):
            name = (
                "Longjin community"
                if (s, c) == (0, 0)
                else f"Wuhou street {s + 1:02d} community {c + 1}"
            )
            found.append(
                Organization(f"{street}-COMMUNITY-{c + 1}", "community", name, street_code=street)
            )
    longjin_center = Organization(
        "DEMO-WH-PROVIDER-001",
        "social_organization",
        "Longjin residents' service center",
        registration={
            "track": "registered",
            "category": "community_public_interest",
            "registered_capital": {"amount": "3000.00", "currency": "CNY"},
            "members": 5,
        },
    )
    found.append(longjin_center)
    found += [
        _provider(f"DEMO-WH-PROVIDER-{p + 1:03d}", f"Wuhou social organization {p + 1:03d}", rng)
        for p in range(1, scale.providers)
    ]
    return found


def _wuhou_items(scale: Scale) -> list[Item]:
    items = [
        Item(
            f"DEMO-WH-PD-{i + 1:03d}",
            FIRST_ITEM if i == 0 else f"Push-down service {i + 1:03d} ({CATEGORIES[i % 4]})",
            kind="public",
            domain="elderly" if i == 0 else DOMAINS[i % len(DOMAINS)],
            duty_list="committee_assisting",
            proposer_code="DEMO-WH-CIVIL-AFFAIRS",
            funding_source="Wuhou district finance",
            category=CATEGORIES[i % 4],
            delivery_modes=("on_site", "follow_up"),
        )
        for i in range(scale.push_down_items)
    ]
    # The other two of the three lists: what the community's party organization and its
    # residents' committee do themselves, funded as community work, never bought.
    for duty, count in (("party_organization", 6), ("committee_statutory", 10)):
        items += [
            Item(
                f"DEMO-WH-{duty.upper().replace('_', '-')}-{n + 1:02d}",
                f"{duty.replace('_', ' ').capitalize()} duty {n + 1:02d}",
                kind="public",
                domain="community_affairs",
                duty_list=duty,
                proposer_code="DEMO-WH-CIVIL-AFFAIRS",
                funding_source="Wuhou district community work funds",
                delivery_modes=("one_stop",),
                funding_fen=1_000_000,
            )
            for n in range(count)
        ]
    return items


def _purchases(
    scale: Scale, organizations: list[Organization], items: list[Item], rng: random.Random
) -> list[Purchase]:
    streets = [o for o in organizations if o.kind == "street_office"]
    communities = [o for o in organizations if o.kind == "community"]
    providers = [o for o in organizations if o.kind == "social_organization"]
    push_down = [i for i in items if i.duty_list == "committee_assisting"]
    values = _values(scale.projects, PUSH_DOWN_FEN, FIRST_CONTRACT_FEN, rng)
    rejected = set(range(1, 1 + scale.rejected_deliveries))
    corrected = scale.projects // 2  # the one payment keyed wrong, reversed and made again
    purchases = []
    for n in range(scale.projects):
        street = streets[n % len(streets)]
        own = [c for c in communities if c.street_code == street.code]
        community = own[(n // len(streets)) % len(own)]
        signed = (
            FIRST_SIGNED if n == 0 else FIRST_SIGNED + timedelta(days=1 + n * 150 // scale.projects)
        )
        reported = signed + timedelta(days=rng.randint(45, 90))
        value = values[n]
        deliveries = [
            Delivery(f"DEMO-D-{n + 1:03d}-1", value, reported, accepted=n not in rejected)
        ]
        if n in rejected:
            # Refused for missing attendance sheets; reported again with them, and accepted.
            later = reported + timedelta(days=10)
            deliveries.append(Delivery(f"DEMO-D-{n + 1:03d}-2", value, later, accepted=True))
        paid_on = deliveries[-1].reported_on + timedelta(days=12)
        payments = [Payment(f"DEMO-GK-2014-{n + 1:04d}", value, paid_on)]
        if n == corrected:
            wrong = Payment(
                f"DEMO-GK-2014-{n + 1:04d}-X",
                value // 10,
                paid_on,
                reversal="keyed as a tenth of the amount; reversed and paid again in full",
            )
            payments = [wrong, Payment(payments[0].reference, value, paid_on + timedelta(days=2))]
        item = push_down[n % len(push_down)]
        purchases.append(
            Purchase(
                reference=f"DEMO-WH-2014-P-{n + 1:03d}",
                street_code=street.code,
                community_code=community.code,
                provider_code=providers[0 if n == 0 else 1 + n % (len(providers) - 1)].code,
                item_code=item.code,
                title=item.name,
                value_fen=value,
                signed_on=signed,
                deliveries=tuple(deliveries),
                payments=tuple(payments),
            )
        )
    return purchases


def _haiyu(
    scale: Scale, rng: random.Random
) -> tuple[list[Organization], list[Item], list[Platform]]:
    organizations = [
        Organization(
            "DEMO-BA-CIVIL-AFFAIRS", "district_bureau", "Bao'an district civil affairs bureau"
        ),
        Organization("DEMO-BA-STREET", "street_office", "Bao'an street office (Haiyu)"),
        Organization("DEMO-BA-HAIYU", "community", "Haiyu community", street_code="DEMO-BA-STREET"),
    ]
    providers = [
        _provider(f"DEMO-HY-PROVIDER-{p + 1:02d}", f"Haiyu service provider {p + 1:02d}", rng)
        for p in range(scale.haiyu_providers)
    ]
    kinds = ("public", "social", "market")
    items = [
        Item(
            f"DEMO-HY-{n + 1:03d}",
            f"Haiyu {kinds[n % 3]} service {n + 1:03d}",
            kind=kinds[n % 3],
            domain=DOMAINS[n % len(DOMAINS)],
            duty_list="committee_assisting" if kinds[n % 3] == "public" else "none",
            proposer_code="DEMO-BA-CIVIL-AFFAIRS",
            funding_source="Bao'an district and street funds",
            delivery_modes=(("one_stop", "online", "by_appointment", "extended_hours")[n % 4],),
            funding_fen=0 if kinds[n % 3] == "market" else rng.randint(20, 200) * 100_00,
        )
        for n in range(scale.haiyu_items)
    ]
    types = ("centre", "hall", "online")
    per = max(1, -(-len(items) // scale.haiyu_platforms))  # every item on some platform
    platforms = [
        Platform(
            name=f"Haiyu service platform {p + 1:02d}",
            type=types[p % 3],
            location="online" if types[p % 3] == "online" else f"Haiyu block {p % 12 + 1}",
            item_codes=tuple(i.code for i in items[(p * per) % len(items) :][:per]),
            provider_codes=(providers[p % len(providers)].code,),
        )
        for p in range(scale.haiyu_platforms)
    ]
    return organizations + providers, items, platforms


def build(scale: Scale = Scale()) -> Scenario:
    """The scenario at a scale: the same scale always gives the same scenario."""
    rng = random.Random(2014)  # noqa: S311  (a repeatable story, not a secret)
    organizations = _wuhou_organizations(scale, rng)
    items = _wuhou_items(scale)
    purchases = _purchases(scale, organizations, items, rng)
    funding: dict[str, int] = {}
    for purchase in purchases:
        funding[purchase.item_code] = funding.get(purchase.item_code, 0) + purchase.value_fen
    # Funding follows the task: each push-down item brings what its purchases cost.
    items = [
        Item(**{**i.__dict__, "funding_fen": funding.get(i.code, i.funding_fen)}) for i in items
    ]
    streets = [o.code for o in organizations if o.kind == "street_office"]
    allocations: dict[str, int] = {}
    for purchase in purchases:
        allocations[purchase.street_code] = (
            allocations.get(purchase.street_code, 0) + purchase.value_fen
        )
    other = ALL_PURCHASES_FEN - PUSH_DOWN_FEN
    budgets = [
        Budget(
            "DEMO-WH-2014-PUSHDOWN",
            "push-down services",
            "Wuhou district 2014: services pushed down to communities",
            PUSH_DOWN_FEN,
            allocations,
        ),
        Budget(
            "DEMO-WH-2014-OTHER",
            "other services from social organizations",
            "Wuhou district 2014: other services bought from social organizations",
            other,
            {street: other // len(streets) for street in streets},
        ),
    ]
    haiyu_organizations, haiyu_items, platforms = _haiyu(scale, rng)
    return Scenario(
        organizations=organizations + haiyu_organizations,
        items=items + haiyu_items,
        haiyu_platforms=platforms,
        budgets=budgets,
        purchases=purchases,
    )
