"""Alert rules: which feed entries raise an alert, once, with exact figures."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from proto.feed import FeedEntry
from services.notifier.alerts import (
    ALLOCATION_COMMITTED_SHARE,
    BUDGET_COMMITTED_SHARE,
    DELIVERY_REJECTED,
    ITEM_PROPOSED,
    PAYMENT_MADE,
    committed_share_alerts,
    delivery_rejected_alert,
    item_proposed_alert,
    payment_made_alert,
    share_threshold,
)
from services.notifier.settings import NotifierSettings

NINETY = share_threshold(0.9)
RECORDED = datetime(2014, 6, 2, 2, 0, tzinfo=UTC)
BUDGET_ID = str(uuid4())
HOLDER_ID = str(uuid4())
ALLOCATION_ID = str(uuid4())
STREET_ID = str(uuid4())


def cny(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "CNY"}


def entry(event_type: str, payload: dict[str, Any], position: int = 42) -> FeedEntry:
    return FeedEntry(
        position=position,
        stream_id=uuid4(),
        stream_type=event_type.partition(".")[0],
        stream_version=3,
        event_type=event_type,
        occurred_at=datetime(2014, 6, 2, 10, 0, tzinfo=UTC),
        recorded_at=RECORDED,
        caused_by=None,
        payload=payload,
    )


def commitment(amount: str = "1.00") -> FeedEntry:
    payload = {
        "allocation_id": ALLOCATION_ID,
        "commitment_id": str(uuid4()),
        "commitment_kind": "contract",
        "amount": cny(amount),
    }
    return entry("commitment.made", payload)


def budget(
    allocation: str, committed: str, *, appropriation: str = "30850000.00", budget_committed: str
) -> dict[str, Any]:
    """A budget as `GET /budgets/{id}` answers, with one allocation of interest."""
    available = Decimal(allocation) - Decimal(committed)
    return {
        "id": BUDGET_ID,
        "holder_id": HOLDER_ID,
        "appropriation": cny(appropriation),
        "committed": cny(budget_committed),
        "allocations": [
            {
                "id": str(uuid4()),
                "street_office_id": str(uuid4()),
                "amount": cny("5000.00"),
                "committed": cny("5000.00"),
                "available": cny("0.00"),
            },
            {
                "id": ALLOCATION_ID,
                "street_office_id": STREET_ID,
                "amount": cny(allocation),
                "committed": cny(committed),
                "available": cny(str(available)),
            },
        ],
    }


def of_type(messages: list[Any], event_type: str) -> list[Any]:
    return [m for m in messages if m.event_type == event_type]


def test_the_default_threshold_is_ninety_percent_exactly() -> None:
    assert share_threshold(NotifierSettings().committed_share_alert) == Decimal("0.9")


def test_an_allocation_crossing_the_share_raises_an_alert_with_its_figures() -> None:
    before = budget("1000000.00", "500000.00", budget_committed="500000.00")
    after = budget("1000000.00", "950000.00", budget_committed="950000.00")
    source = commitment("450000.00")
    [alert] = committed_share_alerts(
        source, feed="ledger", before=before, after=after, threshold=NINETY
    )
    assert alert.event_type == ALLOCATION_COMMITTED_SHARE
    assert alert.data == {
        "budget_id": BUDGET_ID,
        "allocation_id": ALLOCATION_ID,
        "street_office_id": STREET_ID,
        "amount": cny("1000000.00"),
        "committed": cny("950000.00"),
        "available": cny("50000.00"),
        "committed_before": cny("500000.00"),
        "committed_share": "0.9500",
        "threshold": "0.9",
        "source": {
            "feed": "ledger",
            "position": 42,
            "event_type": "commitment.made",
            "stream_id": str(source.stream_id),
        },
    }
    assert alert.organization_ids == {HOLDER_ID, STREET_ID}
    assert alert.budget_id == BUDGET_ID
    assert (alert.feed, alert.position, alert.timestamp) == ("ledger", 42, RECORDED)


def test_the_crossing_fires_once_not_again_further_above() -> None:
    below = budget("1000.00", "100.00", budget_committed="100.00")
    above = budget("1000.00", "950.00", budget_committed="950.00")
    further = budget("1000.00", "990.00", budget_committed="990.00")
    first = committed_share_alerts(
        commitment(), feed="ledger", before=below, after=above, threshold=NINETY
    )
    again = committed_share_alerts(
        commitment(), feed="ledger", before=above, after=further, threshold=NINETY
    )
    assert [a.event_type for a in first] == [ALLOCATION_COMMITTED_SHARE]
    assert again == []


@pytest.mark.parametrize(
    ("committed", "fires"),
    [("899.99", False), ("900.00", True), ("900.01", True)],
)
def test_exactly_at_the_threshold_fires_and_a_fen_below_does_not(
    committed: str, fires: bool
) -> None:
    before = budget("1000.00", "0.00", budget_committed="0.00")
    after = budget("1000.00", committed, budget_committed=committed)
    alerts = committed_share_alerts(
        commitment(committed), feed="ledger", before=before, after=after, threshold=NINETY
    )
    assert bool(of_type(alerts, ALLOCATION_COMMITTED_SHARE)) is fires


def test_shares_are_compared_exactly_not_in_floating_point() -> None:
    # 2.20 of 4.00 is exactly 55%, but in floats 220 >= 0.55 * 400 is False.
    threshold = share_threshold(0.55)
    before = budget("4.00", "1.00", budget_committed="1.00")
    after = budget("4.00", "2.20", budget_committed="2.20")
    [alert] = committed_share_alerts(
        commitment("1.20"), feed="ledger", before=before, after=after, threshold=threshold
    )
    assert (alert.data["committed_share"], alert.data["threshold"]) == ("0.5500", "0.55")


def test_the_share_is_never_rounded_up_into_crossing() -> None:
    # 26 765 999.99 of 29 740 000.00 is 0.899999999…: below 90%, and it reads so.
    before = budget("29740000.00", "0.00", budget_committed="0.00")
    after = budget("29740000.00", "26765999.99", budget_committed="26765999.99")
    assert (
        committed_share_alerts(
            commitment(), feed="ledger", before=before, after=after, threshold=NINETY
        )
        == []
    )
    after = budget("29740000.00", "26766000.00", budget_committed="26766000.00")
    [alert] = committed_share_alerts(
        commitment(), feed="ledger", before=before, after=after, threshold=NINETY
    )
    assert alert.data["committed_share"] == "0.9000"
    assert alert.data["available"] == cny("2974000.00")


def test_a_budget_crossing_raises_its_own_alert_beside_the_allocation() -> None:
    before = budget("1000.00", "100.00", appropriation="10000.00", budget_committed="8900.00")
    after = budget("1000.00", "950.00", appropriation="10000.00", budget_committed="9750.00")
    alerts = committed_share_alerts(
        commitment("850.00"), feed="ledger", before=before, after=after, threshold=NINETY
    )
    assert sorted(a.event_type for a in alerts) == [
        ALLOCATION_COMMITTED_SHARE,
        BUDGET_COMMITTED_SHARE,
    ]
    [budget_alert] = of_type(alerts, BUDGET_COMMITTED_SHARE)
    assert {k: v for k, v in budget_alert.data.items() if k != "source"} == {
        "budget_id": BUDGET_ID,
        "holder_id": HOLDER_ID,
        "appropriation": cny("10000.00"),
        "committed": cny("9750.00"),
        "committed_before": cny("8900.00"),
        "committed_share": "0.9750",
        "threshold": "0.9",
    }
    assert budget_alert.organization_ids == {HOLDER_ID}
    # Two messages from one source position, each with an id of its own.
    assert len({a.id for a in alerts}) == 2


def test_a_budget_crossing_alone_does_not_name_an_allocation() -> None:
    # A smaller appropriation raises the budget's share; the allocation is untouched.
    before = budget("1000.00", "500.00", appropriation="10000.00", budget_committed="8500.00")
    after = budget("1000.00", "500.00", appropriation="9000.00", budget_committed="8500.00")
    payload = {
        "source_kind": "district_finance",
        "source_name": "Wuhou district finance",
        "direction": "decrease",
        "amount": cny("1000.00"),
        "reason": "mid-year cut",
    }
    alerts = committed_share_alerts(
        entry("budget.adjusted", payload),
        feed="ledger",
        before=before,
        after=after,
        threshold=NINETY,
    )
    assert [a.event_type for a in alerts] == [BUDGET_COMMITTED_SHARE]
    assert alerts[0].data["committed_share"] == "0.9444"


def test_a_shrunken_allocation_can_cross_without_new_commitments() -> None:
    before = budget("1000.00", "850.00", budget_committed="850.00")
    after = budget("900.00", "850.00", budget_committed="850.00")
    payload = {
        "allocation_id": ALLOCATION_ID,
        "direction": "decrease",
        "amount": cny("100.00"),
        "reason": "moved to another street",
    }
    alerts = committed_share_alerts(
        entry("allocation.adjusted", payload),
        feed="ledger",
        before=before,
        after=after,
        threshold=NINETY,
    )
    assert [a.event_type for a in alerts] == [ALLOCATION_COMMITTED_SHARE]
    assert alerts[0].data["committed_share"] == "0.9444"


def test_nothing_committed_never_alerts_even_on_an_empty_allocation() -> None:
    before = budget("0.00", "0.00", appropriation="0.00", budget_committed="0.00")
    after = budget("0.00", "0.00", appropriation="0.00", budget_committed="0.00")
    assert (
        committed_share_alerts(
            commitment(), feed="ledger", before=before, after=after, threshold=NINETY
        )
        == []
    )


CONTRACT = {
    "id": str(uuid4()),
    "reference": "CQ-2014-001",
    "budget_id": BUDGET_ID,
    "purchaser_id": STREET_ID,
    "implementer_id": str(uuid4()),
    "provider_id": str(uuid4()),
    "value": cny("360000.00"),
    "accepted": cny("59000.10"),
    "paid": cny("58999.99"),
    "unpaid_accepted": cny("0.11"),
}


def test_a_payment_alert_carries_the_payment_and_the_contract_figures() -> None:
    source = entry("payment.recorded", {"reference": "TREASURY-7", "amount": cny("29999.99")})
    alert = payment_made_alert(source, feed="ledger", contract=CONTRACT)
    assert alert.event_type == PAYMENT_MADE
    assert alert.data["amount"] == cny("29999.99")
    assert (alert.data["paid"], alert.data["unpaid_accepted"]) == (cny("58999.99"), cny("0.11"))
    assert alert.data["reference"] == "TREASURY-7"
    assert alert.data["contract_id"] == CONTRACT["id"]
    assert alert.data["source"]["position"] == 42
    assert alert.organization_ids == {
        CONTRACT["purchaser_id"],
        CONTRACT["implementer_id"],
        CONTRACT["provider_id"],
    }
    assert alert.budget_id == BUDGET_ID


def test_a_rejection_alert_says_what_was_claimed_and_why() -> None:
    delivery_id = str(uuid4())
    source = entry(
        "delivery.rejected",
        {"delivery_id": delivery_id, "reason": "sign-in sheets missing", "score": 30},
    )
    delivery = {
        "id": delivery_id,
        "reference": "M-05",
        "period_start": "2014-05-01",
        "period_end": "2014-05-31",
        "quantity": 120,
        "unit": "person-times",
        "amount": cny("500.05"),
    }
    alert = delivery_rejected_alert(source, feed="ledger", contract=CONTRACT, delivery=delivery)
    assert alert.event_type == DELIVERY_REJECTED
    assert alert.data["claimed"] == cny("500.05")
    assert (alert.data["reason"], alert.data["score"]) == ("sign-in sheets missing", 30)
    assert (alert.data["delivery_id"], alert.data["contract_reference"]) == (
        delivery_id,
        "CQ-2014-001",
    )
    assert CONTRACT["provider_id"] in alert.organization_ids


def test_a_proposed_item_alerts_its_proposer() -> None:
    bureau = str(uuid4())
    item = {
        "id": str(uuid4()),
        "version": 1,
        "name": "Home visits to elderly people living alone",
        "description": "",
        "kind": "public",
        "domain": "elderly",
        "target_groups": ["elderly living alone"],
        "delivery_modes": ["on_site"],
        "duty_list": "committee_assisting",
        "standard_unit_price": {"amount": cny("35.50"), "unit": "person-time"},
        "proposed_by": bureau,
        "status": "proposed",
        "funding": [],
    }
    alert = item_proposed_alert(entry("item.proposed", item, position=7), feed="catalog")
    assert alert.event_type == ITEM_PROPOSED
    assert (alert.feed, alert.position) == ("catalog", 7)
    assert alert.data["item_id"] == item["id"]
    assert alert.data["standard_unit_price"] == {"amount": cny("35.50"), "unit": "person-time"}
    assert alert.organization_ids == {bureau}
    assert alert.budget_id is None
