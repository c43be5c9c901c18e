"""Alert rules: feed entries that deserve a notification of their own.

Each rule is a pure function of a feed entry and what the follower read about it from the
ledger (e.g. a budget just before and just after the entry). An alert is a message like any
other, of type `alert.…`, made from the same source position, so replaying the feed makes the
same alert with the same id. Shares are compared exactly, in integer fen and fractions.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from typing import Any

from proto.feed import FeedEntry
from proto.money import Money
from services.notifier.messages import Message

ALLOCATION_COMMITTED_SHARE = "alert.allocation_committed_share"
BUDGET_COMMITTED_SHARE = "alert.budget_committed_share"
DELIVERY_REJECTED = "alert.delivery_rejected"
PAYMENT_MADE = "alert.payment_made"
ITEM_PROPOSED = "alert.item_proposed"
ALERT_TYPES = (
    ALLOCATION_COMMITTED_SHARE,
    BUDGET_COMMITTED_SHARE,
    DELIVERY_REJECTED,
    PAYMENT_MADE,
    ITEM_PROPOSED,
)

# The only ledger events that can raise a committed share: more committed, a smaller
# allocation, or a smaller appropriation. (Releases only lower it; new allocations start empty.)
SHARE_EVENTS = frozenset({"commitment.made", "allocation.adjusted", "budget.adjusted"})
_SHARE_DIGITS = Decimal("0.0001")

Json = Mapping[str, Any]


def share_threshold(share: float) -> Decimal:
    """The configured share (a float setting such as 0.9) as the decimal it was written as."""
    # repr gives the shortest decimal that reads back as the same float: 0.9, not 0.90000000…
    return Decimal(repr(share))


def fen(money: Json) -> int:
    """Money on the wire (`{"amount": "123.45", …}`) in integer fen."""
    return Money.model_validate(money).fen


def at_or_above(committed_fen: int, total_fen: int, threshold: Decimal) -> bool:
    """Whether `committed / total` is at or above the threshold, exactly; nothing committed
    never is (so an empty allocation of zero is not "fully committed")."""
    if committed_fen <= 0:
        return False
    return Fraction(committed_fen) >= Fraction(threshold) * total_fen


def crossed(before: tuple[int, int] | None, after: tuple[int, int], threshold: Decimal) -> bool:
    """Whether (committed, total) went from below the threshold to at or above it."""
    was = before is not None and at_or_above(*before, threshold)
    return not was and at_or_above(*after, threshold)


def share_text(committed_fen: int, total_fen: int) -> str | None:
    """The share as a decimal string to four places, rounded down so it never reads as
    crossing when it did not; None when there is nothing to share."""
    if total_fen <= 0:
        return None
    share = Decimal(committed_fen) / Decimal(total_fen)
    return str(share.quantize(_SHARE_DIGITS, rounding=ROUND_DOWN))


def source_of(entry: FeedEntry, feed: str) -> dict[str, Any]:
    """Where an alert came from: the feed, the entry's position, type and stream."""
    return {
        "feed": feed,
        "position": entry.position,
        "event_type": entry.event_type,
        "stream_id": str(entry.stream_id),
    }


def _alert(
    entry: FeedEntry,
    feed: str,
    event_type: str,
    data: dict[str, Any],
    organization_ids: set[str],
    budget_id: str | None,
) -> Message:
    return Message(
        feed=feed,
        position=entry.position,
        event_type=event_type,
        timestamp=entry.recorded_at,
        data={**data, "source": source_of(entry, feed)},
        organization_ids=frozenset(organization_ids),
        budget_id=budget_id,
    )


def _allocation(budget: Json | None, allocation_id: str) -> Json | None:
    if budget is None:
        return None
    return next((a for a in budget["allocations"] if str(a["id"]) == allocation_id), None)


def committed_share_alerts(
    entry: FeedEntry, *, feed: str, before: Json | None, after: Json, threshold: Decimal
) -> list[Message]:
    """Alerts for the entry's allocation and its budget crossing the committed share.

    `before` and `after` are the budget (`GET /budgets/{id}`) as the ledger knew it just
    before the entry and with it; `before` is None if the budget did not exist yet.
    """
    alerts: list[Message] = []
    budget_id = str(after["id"])
    holder_id = str(after["holder_id"])
    threshold_text = str(threshold)
    allocation_id = entry.payload.get("allocation_id")
    now = _allocation(after, str(allocation_id)) if allocation_id is not None else None
    if now is not None:
        was = _allocation(before, str(now["id"]))
        figures_before = (fen(was["committed"]), fen(was["amount"])) if was else None
        figures_after = (fen(now["committed"]), fen(now["amount"]))
        if crossed(figures_before, figures_after, threshold):
            street_office_id = str(now["street_office_id"])
            data = {
                "budget_id": budget_id,
                "allocation_id": str(now["id"]),
                "street_office_id": street_office_id,
                "amount": dict(now["amount"]),
                "committed": dict(now["committed"]),
                "available": dict(now["available"]),
                "committed_before": dict(was["committed"]) if was else None,
                "committed_share": share_text(*figures_after),
                "threshold": threshold_text,
            }
            alerts.append(
                _alert(
                    entry,
                    feed,
                    ALLOCATION_COMMITTED_SHARE,
                    data,
                    {holder_id, street_office_id},
                    budget_id,
                )
            )
    budget_before = (fen(before["committed"]), fen(before["appropriation"])) if before else None
    budget_after = (fen(after["committed"]), fen(after["appropriation"]))
    if crossed(budget_before, budget_after, threshold):
        data = {
            "budget_id": budget_id,
            "holder_id": holder_id,
            "appropriation": dict(after["appropriation"]),
            "committed": dict(after["committed"]),
            "committed_before": dict(before["committed"]) if before else None,
            "committed_share": share_text(*budget_after),
            "threshold": threshold_text,
        }
        alerts.append(_alert(entry, feed, BUDGET_COMMITTED_SHARE, data, {holder_id}, budget_id))
    return alerts


def contract_parties(contract: Json) -> set[str]:
    """The organizations party to a contract: purchaser, implementer and provider."""
    return {str(contract[k]) for k in ("purchaser_id", "implementer_id", "provider_id")}


def delivery_rejected_alert(
    entry: FeedEntry, *, feed: str, contract: Json, delivery: Json
) -> Message:
    """A delivery rejected: what was claimed for which period, why, and the score."""
    data = {
        "contract_id": str(contract["id"]),
        "contract_reference": contract["reference"],
        "budget_id": str(contract["budget_id"]),
        "purchaser_id": str(contract["purchaser_id"]),
        "implementer_id": str(contract["implementer_id"]),
        "provider_id": str(contract["provider_id"]),
        "delivery_id": str(entry.payload["delivery_id"]),
        "delivery_reference": delivery.get("reference"),
        "period_start": delivery["period_start"],
        "period_end": delivery["period_end"],
        "quantity": delivery["quantity"],
        "unit": delivery["unit"],
        "claimed": dict(delivery["amount"]),
        "reason": entry.payload["reason"],
        "score": entry.payload.get("score"),
    }
    budget_id = str(contract["budget_id"])
    return _alert(entry, feed, DELIVERY_REJECTED, data, contract_parties(contract), budget_id)


def payment_made_alert(entry: FeedEntry, *, feed: str, contract: Json) -> Message:
    """A payment recorded on a contract: its amount, and the contract's figures with it.

    `contract` is the contract as the ledger knew it with the payment (`known_at=position`).
    """
    data = {
        "contract_id": str(contract["id"]),
        "contract_reference": contract["reference"],
        "budget_id": str(contract["budget_id"]),
        "purchaser_id": str(contract["purchaser_id"]),
        "implementer_id": str(contract["implementer_id"]),
        "provider_id": str(contract["provider_id"]),
        "reference": entry.payload["reference"],
        "amount": dict(entry.payload["amount"]),
        "value": dict(contract["value"]),
        "accepted": dict(contract["accepted"]),
        "paid": dict(contract["paid"]),
        "unpaid_accepted": dict(contract["unpaid_accepted"]),
    }
    budget_id = str(contract["budget_id"])
    return _alert(entry, feed, PAYMENT_MADE, data, contract_parties(contract), budget_id)


def item_proposed_alert(entry: FeedEntry, *, feed: str) -> Message:
    """A service item proposed for admission: what it is, who proposed it, at what price."""
    item = entry.payload
    data = {
        "item_id": str(item["id"]),
        "name": item["name"],
        "code": item.get("code"),
        "kind": item["kind"],
        "domain": item["domain"],
        "duty_list": item["duty_list"],
        "target_groups": list(item["target_groups"]),
        "standard_unit_price": item.get("standard_unit_price"),
        "funding": list(item.get("funding", [])),
        "proposed_by": str(item["proposed_by"]),
    }
    return _alert(entry, feed, ITEM_PROPOSED, data, {str(item["proposed_by"])}, None)
