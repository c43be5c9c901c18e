"""Who and what a contract may name, judged from the catalog's records as of signing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from proto.catalog import (
    PROVIDER_KINDS,
    DeliveryMode,
    DutyList,
    ItemDomain,
    ItemKind,
    ItemStatus,
    Organization,
    OrganizationKind,
    ProviderCategory,
    Registration,
    ServiceItem,
    Track,
)
from proto.money import Money
from services.common.errors import InvalidCommand
from services.common.problems import DOMAIN_ERROR_STATUS
from services.ledger.domain.eligibility import NotContractable, check_contract_parties

CHINA = timezone(timedelta(hours=8))
# Just after midnight in Chengdu: the UTC date is still the day before.
SIGNED = datetime(2014, 4, 14, 0, 30, tzinfo=CHINA)
DAY = "2014-04-14"
REGISTERED = Registration(
    track=Track.REGISTERED,
    category=ProviderCategory.COMMUNITY_PUBLIC_INTEREST,
    registered_capital=Money(amount="3000.00"),
    members=5,
)


def organization(kind: OrganizationKind, name: str, **fields: Any) -> Organization:
    return Organization(id=uuid4(), version=1, kind=kind, name=name, **fields)


def item(status: ItemStatus, name: str, reason: str | None = None) -> ServiceItem:
    return ServiceItem(
        id=uuid4(),
        version=1,
        name=name,
        description="",
        kind=ItemKind.PUBLIC,
        domain=ItemDomain.ELDERLY,
        target_groups=["elderly over 60"],
        delivery_modes=[DeliveryMode.ON_SITE],
        duty_list=DutyList.COMMITTEE_ASSISTING,
        proposed_by=uuid4(),
        status=status,
        decision_reason=reason,
    )


class Catalog:
    """Two street offices with a community each, a bureau, providers and admitted items."""

    def __init__(self) -> None:
        self.bureau = organization(OrganizationKind.DISTRICT_BUREAU, "Wuhou civil affairs")
        self.office = organization(OrganizationKind.STREET_OFFICE, "Yulin street office")
        self.other_office = organization(OrganizationKind.STREET_OFFICE, "Jiangxi street office")
        self.community = organization(
            OrganizationKind.COMMUNITY, "Yulin East community", street_office_id=self.office.id
        )
        self.other_community = organization(
            OrganizationKind.COMMUNITY, "Jiangxi community", street_office_id=self.other_office.id
        )
        self.provider = organization(
            OrganizationKind.SOCIAL_ORGANIZATION, "Aixin elderly care", registration=REGISTERED
        )
        self.agency = organization(
            OrganizationKind.SOCIAL_WORK_AGENCY, "Tongxin social work", registration=REGISTERED
        )
        self.admitted = item(ItemStatus.ADMITTED, "Home visits")
        self.second = item(ItemStatus.ADMITTED, "Day care")
        self.organizations: dict[UUID, Organization] = {}
        self.items: dict[UUID, ServiceItem] = {}
        for record in (
            self.bureau,
            self.office,
            self.other_office,
            self.community,
            self.other_community,
            self.provider,
            self.agency,
            self.admitted,
            self.second,
        ):
            self.add(record)

    def add(self, record: ServiceItem | Organization) -> UUID:
        if isinstance(record, ServiceItem):
            self.items[record.id] = record
        else:
            self.organizations[record.id] = record
        return record.id

    def check(self, **overrides: Any) -> None:
        terms: dict[str, Any] = {
            "purchaser_id": self.office.id,
            "implementer_id": self.community.id,
            "provider_id": self.provider.id,
            "item_ids": [self.admitted.id, self.second.id],
            "organizations": self.organizations,
            "items": self.items,
            "as_of": SIGNED,
        }
        terms.update(overrides)
        check_contract_parties(**terms)

    def refusal(self, **overrides: Any) -> str:
        """The message of the refusal, after checking it is a NotContractable answered 422."""
        with pytest.raises(NotContractable) as raised:
            self.check(**overrides)
        assert isinstance(raised.value, InvalidCommand)
        assert status_of(raised.value) == 422
        return str(raised.value)


def status_of(error: Exception) -> int:
    """The HTTP status the services answer `error` with: its nearest mapped class, as Starlette."""
    statuses = dict(DOMAIN_ERROR_STATUS)
    return next(statuses[c] for c in type(error).__mro__ if c in statuses)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


@pytest.mark.parametrize("provider", ["provider", "agency"])
def test_a_street_office_its_community_a_provider_and_admitted_items(
    catalog: Catalog, provider: str
) -> None:
    provider_id = getattr(catalog, provider).id
    catalog.check(provider_id=provider_id)
    filed = organization(
        OrganizationKind.SOCIAL_ORGANIZATION,
        "Neighbours' mutual help",
        registration=Registration(
            track=Track.FILED, category=ProviderCategory.COMMUNITY_PUBLIC_INTEREST
        ),
    )
    catalog.check(provider_id=catalog.add(filed), item_ids=[catalog.admitted.id])


@pytest.mark.parametrize("role", ["purchaser", "implementer", "provider"])
def test_an_unknown_party_is_named(catalog: Catalog, role: str) -> None:
    unknown = uuid4()
    message = catalog.refusal(**{f"{role}_id": unknown})
    assert message == f"{role} {unknown} is not in the catalog as of {DAY}"


def test_an_unknown_item_is_named(catalog: Catalog) -> None:
    unknown = uuid4()
    message = catalog.refusal(item_ids=[catalog.admitted.id, unknown])
    assert message == f"item {unknown} is not in the catalog as of {DAY}"


@pytest.mark.parametrize("who", ["community", "bureau", "provider"])
def test_the_purchaser_is_a_street_office(catalog: Catalog, who: str) -> None:
    wrong: Organization = getattr(catalog, who)
    message = catalog.refusal(purchaser_id=wrong.id)
    assert message == (
        f"purchaser {wrong.id} ({wrong.name}) is a {wrong.kind.value}, not a street_office"
    )


@pytest.mark.parametrize("who", ["office", "other_office", "bureau", "agency"])
def test_the_implementer_is_a_community(catalog: Catalog, who: str) -> None:
    wrong: Organization = getattr(catalog, who)
    message = catalog.refusal(implementer_id=wrong.id)
    assert message == (
        f"implementer {wrong.id} ({wrong.name}) is a {wrong.kind.value}, not a community"
    )


def test_the_implementer_is_a_community_of_the_purchaser(catalog: Catalog) -> None:
    message = catalog.refusal(implementer_id=catalog.other_community.id)
    assert message == (
        f"implementer {catalog.other_community.id} (Jiangxi community) is not a community of "
        "Yulin street office"
    )
    # The other street office may contract with its own community.
    catalog.check(purchaser_id=catalog.other_office.id, implementer_id=catalog.other_community.id)


@pytest.mark.parametrize("who", ["office", "other_community", "bureau"])
def test_the_provider_is_a_social_organization_or_agency(catalog: Catalog, who: str) -> None:
    wrong: Organization = getattr(catalog, who)
    message = catalog.refusal(provider_id=wrong.id)
    assert message == (
        f"provider {wrong.id} ({wrong.name}) is a {wrong.kind.value}, "
        "not a social_organization or social_work_agency"
    )


@pytest.mark.parametrize("kind", sorted(PROVIDER_KINDS))
def test_a_provider_without_registration_is_refused(
    catalog: Catalog, kind: OrganizationKind
) -> None:
    bare = organization(kind, "Unrecognized helpers")
    message = catalog.refusal(provider_id=catalog.add(bare))
    assert message == f"provider {bare.id} (Unrecognized helpers) is neither registered nor filed"


@pytest.mark.parametrize(
    ("status", "reason", "why"),
    [
        (ItemStatus.PROPOSED, None, ""),
        (ItemStatus.UNDER_REVIEW, None, ""),
        (
            ItemStatus.REJECTED,
            "duplicates the home visits item",
            ": duplicates the home visits item",
        ),
        (ItemStatus.RETIRED, "merged into day care", ": merged into day care"),
    ],
)
def test_an_item_not_admitted_is_named_with_why(
    catalog: Catalog, status: ItemStatus, reason: str | None, why: str
) -> None:
    bad = item(status, "Night patrols", reason)
    message = catalog.refusal(item_ids=[catalog.admitted.id, catalog.add(bad)])
    assert (
        message == f"item {bad.id} (Night patrols) is {status.value} as of {DAY}, not admitted{why}"
    )


def test_the_first_fault_is_named(catalog: Catalog) -> None:
    first = item(ItemStatus.REJECTED, "First", "out of scope")
    second = item(ItemStatus.PROPOSED, "Second")
    message = catalog.refusal(item_ids=[catalog.add(first), catalog.add(second)])
    assert str(first.id) in message
    assert str(second.id) not in message
    # Parties are judged before items, the purchaser first.
    unknown = uuid4()
    message = catalog.refusal(
        purchaser_id=unknown, implementer_id=catalog.bureau.id, item_ids=[first.id]
    )
    assert message.startswith(f"purchaser {unknown} ")
