"""The rule every ledger event obeys: its business time is never before its aggregate began.

And how a ledger aggregate is copied: the application hands each command its own copy of the
aggregate it keeps in memory, and a contract with thousands of deliveries is copied on every
request, so the copy knows the aggregates' shape instead of exploring it as `deepcopy` does.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.ledger.domain.errors import InvalidCommand

# Values no command changes in place: shared between an aggregate and its copy.
_SHARED = frozenset({str, int, float, bool, bytes, UUID, datetime, date, type(None)})


def _copied(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _SHARED or isinstance(value, Enum):
        return value
    if kind is dict:
        return {key: _copied(item, memo) for key, item in value.items()}
    if kind is list:
        return [_copied(item, memo) for item in value]
    if kind is tuple:
        return tuple(_copied(item, memo) for item in value)
    if dataclasses.is_dataclass(value):
        if kind.__dataclass_params__.frozen:
            return value  # an event, or any other frozen record
        record = object.__new__(kind)
        fields = record.__dict__
        for name, item in vars(value).items():
            fields[name] = item if type(item) in _SHARED else _copied(item, memo)
        return record
    return copy.deepcopy(value, memo)  # a shape not foreseen above: the general way


class DatedAggregate(Aggregate):
    """An aggregate whose events each carry `occurred_at`, the caller's business time."""

    def __deepcopy__(self, memo: dict[int, Any]) -> DatedAggregate:
        twin = object.__new__(type(self))
        for name, value in vars(self).items():
            object.__setattr__(twin, name, _copied(value, memo))
        return twin

    @property
    def began_at(self) -> datetime:
        """When the aggregate came to be: the business time of its first event."""
        raise NotImplementedError

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        # Checked here, where every decorated command passes, so no command can forget it; a
        # back-dated event would make "as of" answers show effects before their causes.
        occurred_at: datetime = kwargs["occurred_at"]
        if occurred_at < self.began_at:
            kind = type(self).__name__.lower()
            raise InvalidCommand(
                f"occurred_at {occurred_at.isoformat()} is before this {kind} began "
                f"({self.began_at.isoformat()})"
            )
        super().trigger_event(event_class, **kwargs)
