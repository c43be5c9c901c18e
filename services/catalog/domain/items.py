"""Admission (准入): a proposed item is reviewed, then admitted with its funding or rejected."""

from __future__ import annotations

from proto.catalog import Funding, ItemKind, ItemStatus, ServiceItem
from services.common.errors import InvalidCommand, RuleViolation

_FROM: dict[str, tuple[ItemStatus, ...]] = {
    "start the review of": (ItemStatus.PROPOSED,),
    "admit": (ItemStatus.UNDER_REVIEW,),
    "reject": (ItemStatus.PROPOSED, ItemStatus.UNDER_REVIEW),
    "retire": (ItemStatus.ADMITTED,),
}


def _require(item: ServiceItem, action: str) -> None:
    allowed = _FROM[action]
    if item.status not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise RuleViolation(
            f"cannot {action} item {item.id} ({item.name}): it is {item.status.value}, not {names}"
        )


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidCommand("a reason is required")
    return reason.strip()


def _next(item: ServiceItem, **changes: object) -> ServiceItem:
    return item.model_copy(update={"version": item.version + 1, **changes})


def start_review(item: ServiceItem) -> ServiceItem:
    """A proposed item goes under review."""
    _require(item, "start the review of")
    return _next(item, status=ItemStatus.UNDER_REVIEW)


def admit(item: ServiceItem, funding: list[Funding]) -> ServiceItem:
    """Admit a reviewed item with the money it brings; funding follows the task (费随事转)."""
    _require(item, "admit")
    for line in funding:
        if line.amount.fen <= 0:
            raise InvalidCommand(f"funding from {line.source} for {line.year} must be above 0.00")
    if not funding and item.kind is not ItemKind.MARKET:
        raise InvalidCommand(
            f"admitting a {item.kind.value} item needs its funding (source, year, amount): "
            "funding follows the task"
        )
    return _next(item, status=ItemStatus.ADMITTED, funding=funding, decision_reason=None)


def reject(item: ServiceItem, reason: str) -> ServiceItem:
    """Reject a proposed or reviewed item, with a reason."""
    _require(item, "reject")
    return _next(item, status=ItemStatus.REJECTED, decision_reason=_reason(reason))


def retire(item: ServiceItem, reason: str) -> ServiceItem:
    """Retire an admitted item, with a reason; it can no longer be contracted."""
    _require(item, "retire")
    return _next(item, status=ItemStatus.RETIRED, decision_reason=_reason(reason))
