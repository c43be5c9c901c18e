"""The rule every ledger event obeys: its business time is never before its aggregate began."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from services.ledger.domain.errors import InvalidCommand


class DatedAggregate(Aggregate):
    """An aggregate whose events each carry `occurred_at`, the caller's business time."""

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
