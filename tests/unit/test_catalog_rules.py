"""The catalog's rules: who is what, what a provider needs, admission, refusals and platforms."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import pytest

from proto.catalog import (
    PROVIDER_KINDS,
    DeliveryMode,
    DutyList,
    Funding,
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
from services.catalog.domain.communities import check_platform, check_refusal
from services.catalog.domain.items import admit, reject, retire, start_review
from services.catalog.domain.organizations import check_registration, new_organization
from services.common.errors import InvalidCommand, RuleViolation

NON_PROVIDER_KINDS = sorted(set(OrganizationKind) - PROVIDER_KINDS)
FUNDING = [Funding(source="Wuhou district finance", year=2014, amount=Money(amount="360000.00"))]


def organization(kind: OrganizationKind, **fields: Any) -> Organization:
    return Organization(id=uuid4(), version=1, kind=kind, name=f"a {kind.value}", **fields)


def make_registration(
    track: Track = Track.REGISTERED,
    category: ProviderCategory = ProviderCategory.COMMUNITY_PUBLIC_INTEREST,
    capital: str | None = "3000.00",
    members: int | None = 5,
) -> Registration:
    return Registration(
        track=track,
        category=category,
        registered_capital=Money(amount=capital) if capital is not None else None,
        members=members,
    )


def registration_for(kind: OrganizationKind) -> Registration:
    """A registration that fits the provider's kind."""
    if kind is OrganizationKind.SOCIAL_WORK_AGENCY:
        return make_registration(category=ProviderCategory.SOCIAL_WORK_AGENCY)
    return make_registration()


def provider(kind: OrganizationKind = OrganizationKind.SOCIAL_ORGANIZATION) -> Organization:
    return organization(kind, registration=registration_for(kind))


def item(
    status: ItemStatus = ItemStatus.PROPOSED,
    kind: ItemKind = ItemKind.PUBLIC,
    duty_list: DutyList = DutyList.NONE,
    **fields: Any,
) -> ServiceItem:
    fields = {"version": 1, **fields}
    return ServiceItem(
        id=uuid4(),
        name="Management services for elderly people on minimum living allowance",
        description="home visits",
        kind=kind,
        domain=ItemDomain.ELDERLY,
        target_groups=["elderly over 60"],
        delivery_modes=[DeliveryMode.ON_SITE],
        duty_list=duty_list,
        proposed_by=uuid4(),
        status=status,
        **fields,
    )


def create(
    kind: OrganizationKind,
    *,
    street_office: Organization | None = None,
    registration: Registration | None = None,
) -> Organization:
    return new_organization(
        organization_id=uuid4(),
        kind=kind,
        name="Yulin community",
        code=None,
        street_office=street_office,
        registration=registration,
        contact=None,
    )


# Organization kinds


def test_a_community_belongs_to_its_street_office() -> None:
    office = organization(OrganizationKind.STREET_OFFICE)
    community = create(OrganizationKind.COMMUNITY, street_office=office)
    assert community.kind is OrganizationKind.COMMUNITY
    assert community.street_office_id == office.id
    assert community.version == 1


def test_a_community_needs_a_street_office() -> None:
    with pytest.raises(InvalidCommand, match="a community belongs to a street office"):
        create(OrganizationKind.COMMUNITY)


@pytest.mark.parametrize("kind", sorted(set(OrganizationKind) - {OrganizationKind.STREET_OFFICE}))
def test_a_communitys_street_office_must_be_a_street_office(kind: OrganizationKind) -> None:
    wrong = organization(kind)
    with pytest.raises(InvalidCommand) as raised:
        create(OrganizationKind.COMMUNITY, street_office=wrong)
    assert str(raised.value) == (
        f"street_office_id {wrong.id} is a {kind.value}, not a street office"
    )


@pytest.mark.parametrize("kind", sorted(set(OrganizationKind) - {OrganizationKind.COMMUNITY}))
def test_only_a_community_has_a_street_office(kind: OrganizationKind) -> None:
    office = organization(OrganizationKind.STREET_OFFICE)
    with pytest.raises(InvalidCommand, match="only a community has a street office"):
        create(kind, street_office=office, registration=make_registration())


@pytest.mark.parametrize("kind", sorted(PROVIDER_KINDS))
def test_a_provider_needs_its_registration(kind: OrganizationKind) -> None:
    with pytest.raises(InvalidCommand, match=re.escape("registered (登记) or filed (备案)")):
        create(kind)
    created = create(kind, registration=registration_for(kind))
    assert created.registration == registration_for(kind)
    assert created.street_office_id is None


@pytest.mark.parametrize("kind", NON_PROVIDER_KINDS)
def test_a_non_provider_has_no_registration(kind: OrganizationKind) -> None:
    office = (
        organization(OrganizationKind.STREET_OFFICE) if kind is OrganizationKind.COMMUNITY else None
    )
    with pytest.raises(InvalidCommand, match=f"a {kind.value} has no provider registration"):
        create(kind, street_office=office, registration=make_registration())
    assert create(kind, street_office=office).registration is None


# Registration thresholds


def test_exactly_the_thresholds_pass() -> None:
    check_registration(
        OrganizationKind.SOCIAL_ORGANIZATION, make_registration(capital="3000.00", members=5)
    )
    created = create(OrganizationKind.SOCIAL_ORGANIZATION, registration=make_registration())
    assert created.registration is not None
    assert created.registration.registered_capital == Money(amount="3000.00")


@pytest.mark.parametrize(
    ("capital", "members", "message"),
    [
        ("2999.99", 5, "at least 3000.00 CNY of capital, got 2999.99"),
        (None, 5, "at least 3000.00 CNY of capital, got none"),
        ("0", 5, "at least 3000.00 CNY of capital, got 0"),
        ("3000.00", 4, "at least 5 members, got 4"),
        ("3000.00", None, "at least 5 members, got none"),
        ("1000000.00", 0, "at least 5 members, got 0"),
    ],
)
def test_a_registered_community_organization_below_a_threshold_is_refused(
    capital: str | None, members: int | None, message: str
) -> None:
    below = make_registration(capital=capital, members=members)
    with pytest.raises(InvalidCommand, match=re.escape(message)):
        check_registration(OrganizationKind.SOCIAL_ORGANIZATION, below)
    # The same check guards registering the organization itself.
    with pytest.raises(InvalidCommand, match=re.escape(message)):
        create(OrganizationKind.SOCIAL_ORGANIZATION, registration=below)


def test_a_filed_community_organization_needs_no_capital_nor_members() -> None:
    filed = make_registration(track=Track.FILED, capital=None, members=None)
    check_registration(OrganizationKind.SOCIAL_ORGANIZATION, filed)
    created = create(OrganizationKind.SOCIAL_ORGANIZATION, registration=filed)
    assert created.registration == filed


@pytest.mark.parametrize(
    "category", sorted(set(ProviderCategory) - {ProviderCategory.COMMUNITY_PUBLIC_INTEREST})
)
def test_other_categories_have_no_threshold(category: ProviderCategory) -> None:
    kind = (
        OrganizationKind.SOCIAL_WORK_AGENCY
        if category is ProviderCategory.SOCIAL_WORK_AGENCY
        else OrganizationKind.SOCIAL_ORGANIZATION
    )
    bare = make_registration(category=category, capital=None, members=None)
    check_registration(kind, bare)
    check_registration(kind, make_registration(category=category, capital="0.01", members=1))
    assert create(kind, registration=bare).registration == bare


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        (OrganizationKind.SOCIAL_WORK_AGENCY, ProviderCategory.COMMUNITY_PUBLIC_INTEREST),
        (OrganizationKind.SOCIAL_ORGANIZATION, ProviderCategory.SOCIAL_WORK_AGENCY),
    ],
)
def test_kind_and_registration_category_agree(
    kind: OrganizationKind, category: ProviderCategory
) -> None:
    with pytest.raises(InvalidCommand, match=f"cannot be registered in the category {category}"):
        create(kind, registration=make_registration(category=category))


# Admission

ACTIONS: dict[str, tuple[Callable[[ServiceItem], ServiceItem], set[ItemStatus]]] = {
    "start the review of": (start_review, {ItemStatus.PROPOSED}),
    "admit": (lambda i: admit(i, FUNDING), {ItemStatus.UNDER_REVIEW}),
    "reject": (
        lambda i: reject(i, "duplicates an existing item"),
        {ItemStatus.PROPOSED, ItemStatus.UNDER_REVIEW},
    ),
    "retire": (lambda i: retire(i, "merged into another item"), {ItemStatus.ADMITTED}),
}
ILLEGAL = [
    (action, status)
    for action, (_, allowed) in ACTIONS.items()
    for status in ItemStatus
    if status not in allowed
]


def test_an_item_goes_through_review_to_admission_then_retirement() -> None:
    proposed = item(code="WH-EL-01")
    reviewed = start_review(proposed)
    admitted = admit(reviewed, FUNDING)
    retired = retire(admitted, "  merged into another item ")
    assert [i.status for i in (proposed, reviewed, admitted, retired)] == [
        ItemStatus.PROPOSED,
        ItemStatus.UNDER_REVIEW,
        ItemStatus.ADMITTED,
        ItemStatus.RETIRED,
    ]
    assert [i.version for i in (proposed, reviewed, admitted, retired)] == [1, 2, 3, 4]
    assert admitted.funding == FUNDING
    assert admitted.decision_reason is None
    assert retired.decision_reason == "merged into another item"
    assert retired.funding == FUNDING
    # Each step is a new version: the record it came from is left as it was.
    assert (proposed.status, proposed.version) == (ItemStatus.PROPOSED, 1)
    assert {i.id for i in (proposed, reviewed, admitted, retired)} == {proposed.id}
    assert retired.code == "WH-EL-01"


@pytest.mark.parametrize("status", [ItemStatus.PROPOSED, ItemStatus.UNDER_REVIEW])
def test_a_proposed_or_reviewed_item_can_be_rejected(status: ItemStatus) -> None:
    before = item(status, version=3)
    rejected = reject(before, " duplicates an existing item\n")
    assert rejected.status is ItemStatus.REJECTED
    assert rejected.decision_reason == "duplicates an existing item"
    assert rejected.version == 4


@pytest.mark.parametrize(("action", "status"), ILLEGAL)
def test_every_illegal_transition_is_a_rule_violation(action: str, status: ItemStatus) -> None:
    change, allowed = ACTIONS[action]
    before = item(status)
    with pytest.raises(RuleViolation) as raised:
        change(before)
    message = str(raised.value)
    assert message.startswith(f"cannot {action} item {before.id} ({before.name}): ")
    assert f"it is {status.value}, not " in message
    assert all(s.value in message for s in allowed)


@pytest.mark.parametrize("kind", [ItemKind.PUBLIC, ItemKind.SOCIAL])
def test_a_public_or_social_item_is_admitted_with_its_funding(kind: ItemKind) -> None:
    reviewed = item(ItemStatus.UNDER_REVIEW, kind=kind)
    with pytest.raises(InvalidCommand) as raised:
        admit(reviewed, [])
    assert not isinstance(raised.value, RuleViolation)
    assert f"admitting a {kind.value} item needs its funding" in str(raised.value)
    assert admit(reviewed, FUNDING).status is ItemStatus.ADMITTED


def test_a_market_item_may_be_admitted_without_funding() -> None:
    admitted = admit(item(ItemStatus.UNDER_REVIEW, kind=ItemKind.MARKET), [])
    assert admitted.status is ItemStatus.ADMITTED
    assert admitted.funding == []
    assert admitted.version == 2


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
@pytest.mark.parametrize(
    ("decide", "status"),
    [
        (reject, ItemStatus.PROPOSED),
        (reject, ItemStatus.UNDER_REVIEW),
        (retire, ItemStatus.ADMITTED),
    ],
)
def test_rejection_and_retirement_need_a_reason(
    decide: Callable[[ServiceItem, str], ServiceItem], status: ItemStatus, reason: str
) -> None:
    with pytest.raises(InvalidCommand, match="a reason is required"):
        decide(item(status), reason)


# Refusals


def test_a_community_refuses_an_item_on_none_of_its_lists() -> None:
    community = organization(OrganizationKind.COMMUNITY, street_office_id=uuid4())
    check_refusal(community, item(duty_list=DutyList.NONE), "no staff for night visits")


@pytest.mark.parametrize("kind", sorted(set(OrganizationKind) - {OrganizationKind.COMMUNITY}))
def test_only_a_community_may_refuse(kind: OrganizationKind) -> None:
    refuser = organization(kind)
    with pytest.raises(InvalidCommand) as raised:
        check_refusal(refuser, item(), "not ours")
    assert str(raised.value) == (
        f"community {refuser.id} ({refuser.name}) is a {kind.value}, not a community"
    )


@pytest.mark.parametrize("duty_list", sorted(set(DutyList) - {DutyList.NONE}))
def test_an_item_on_a_duty_list_cannot_be_refused(duty_list: DutyList) -> None:
    community = organization(OrganizationKind.COMMUNITY, street_office_id=uuid4())
    listed = item(duty_list=duty_list)
    with pytest.raises(RuleViolation) as raised:
        check_refusal(community, listed, "not ours")
    assert str(raised.value) == (
        f"item {listed.id} ({listed.name}) is on the {duty_list.value} list: "
        "a community cannot refuse it"
    )


@pytest.mark.parametrize("reason", ["", "  \n"])
def test_a_refusal_needs_its_reason(reason: str) -> None:
    community = organization(OrganizationKind.COMMUNITY, street_office_id=uuid4())
    with pytest.raises(InvalidCommand, match="a refusal needs its reason"):
        check_refusal(community, item(duty_list=DutyList.NONE), reason)


# Platforms


def test_a_platform_offers_items_in_force_by_providers() -> None:
    community = organization(OrganizationKind.COMMUNITY, street_office_id=uuid4())
    items = [item(s) for s in (ItemStatus.PROPOSED, ItemStatus.UNDER_REVIEW, ItemStatus.ADMITTED)]
    providers = [provider(k) for k in sorted(PROVIDER_KINDS)]
    check_platform(community, items, providers)
    check_platform(community, [], [])


@pytest.mark.parametrize("status", [ItemStatus.REJECTED, ItemStatus.RETIRED])
def test_a_platform_cannot_offer_a_rejected_or_retired_item(status: ItemStatus) -> None:
    community = organization(OrganizationKind.COMMUNITY, street_office_id=uuid4())
    gone = item(status, decision_reason="merged")
    with pytest.raises(RuleViolation) as raised:
        check_platform(community, [item(ItemStatus.ADMITTED), gone], [provider()])
    assert str(raised.value) == (
        f"item {gone.id} ({gone.name}) is {status.value}: a platform cannot offer it"
    )


@pytest.mark.parametrize("kind", NON_PROVIDER_KINDS)
def test_a_platform_lists_only_providers_as_providers(kind: OrganizationKind) -> None:
    community = organization(OrganizationKind.COMMUNITY, street_office_id=uuid4())
    wrong = organization(kind)
    with pytest.raises(InvalidCommand) as raised:
        check_platform(community, [item(ItemStatus.ADMITTED)], [provider(), wrong])
    assert str(raised.value) == (
        f"provider {wrong.id} ({wrong.name}) is a {kind.value}, "
        "not a social_organization or social_work_agency"
    )


@pytest.mark.parametrize("kind", sorted(set(OrganizationKind) - {OrganizationKind.COMMUNITY}))
def test_a_platform_belongs_to_a_community(kind: OrganizationKind) -> None:
    owner = organization(kind)
    with pytest.raises(InvalidCommand, match=f"is a {kind.value}, not a community"):
        check_platform(owner, [], [])


def test_funding_lines_are_above_zero() -> None:
    reviewed = item(ItemStatus.UNDER_REVIEW)
    free = Funding(source="Wuhou district finance", year=2014, amount=Money(amount="0.00"))
    with pytest.raises(InvalidCommand, match=re.escape("must be above 0.00")):
        admit(reviewed, [free])
