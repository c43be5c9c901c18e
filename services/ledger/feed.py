"""Domain events to feed entries: the envelope and payloads defined in `proto/`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter

from proto.actor import Actor
from proto.canonical import canonical_json
from proto.feed import FeedEntry
from proto.ledger_events import EVENT_PAYLOADS
from proto.money import Money
from services.ledger.store.entries import CANONICAL_BODY_START
from services.ledger.store.reads import FeedRow

# The domain's event classes (named by the library as Aggregate.Event) to their wire names.
EVENT_TYPES: dict[str, str] = {
    "Budget.Opened": "budget.opened",
    "Budget.Adjusted": "budget.adjusted",
    "Budget.Allocated": "allocation.made",
    "Budget.AllocationAdjusted": "allocation.adjusted",
    "Budget.Committed": "commitment.made",
    "Budget.Released": "commitment.released",
    "Contract.Signed": "contract.signed",
    "Contract.Activated": "contract.activated",
    "Contract.Completed": "contract.completed",
    "Contract.Terminated": "contract.terminated",
    "Contract.DeliveryReported": "delivery.reported",
    "Contract.DeliveryAccepted": "delivery.accepted",
    "Contract.DeliveryRejected": "delivery.rejected",
    "Contract.AcceptanceReversed": "delivery.acceptance_reversed",
    "Contract.PaymentRecorded": "payment.recorded",
    "Contract.PaymentReversed": "payment.reversed",
    "Grant.Awarded": "grant.awarded",
    "Grant.TrancheDisbursed": "grant.tranche_disbursed",
    "Grant.UseReported": "grant.use_reported",
    "Grant.Closed": "grant.closed",
    "Grant.Revoked": "grant.revoked",
    "PurchaseProject.Opened": "project.opened",
    "PurchaseProject.Published": "project.published",
    "PurchaseProject.ApplicationSubmitted": "application.submitted",
    "PurchaseProject.ApplicationWithdrawn": "application.withdrawn",
    "PurchaseProject.ApplicationsClosed": "project.applications_closed",
    "PurchaseProject.Evaluated": "project.evaluated",
    "PurchaseProject.Awarded": "project.awarded",
    "PurchaseProject.ObjectionLodged": "objection.lodged",
    "PurchaseProject.ObjectionAnswered": "objection.answered",
    "PurchaseProject.Contracted": "project.contracted",
    "PurchaseProject.Cancelled": "project.cancelled",
    "PurchaseProject.Unsuccessful": "project.unsuccessful",
}
# Aggregates whose feed name is not simply their class name in lower case.
STREAM_TYPES = {"PurchaseProject": "project"}
_ENVELOPE = {"originator_id", "originator_version", "originator_topic", "timestamp", "occurred_at"}
_MOMENT = TypeAdapter(AwareDatetime)
_FEN = "_fen"
# The key the row's position and time precede.
_STREAM_ID = ',"stream_id":'


def _to_wire(value: Any) -> Any:
    """Integer fen fields (`amount_fen`) become Money fields (`amount`), at any depth."""
    if isinstance(value, dict):
        return {
            (key.removesuffix(_FEN) if key.endswith(_FEN) else key): (
                Money.from_fen(item) if key.endswith(_FEN) else _to_wire(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_to_wire(item) for item in value]
    return value


def feed_entry(row: FeedRow, event: Any) -> FeedEntry:
    """The wire form of one stored event."""
    return FeedEntry(
        position=row.position,
        recorded_at=row.recorded_at,
        caused_by=row.caused_by,
        **feed_entry_fields(event),
    )


def entry_body(event: Any) -> str:
    """An event's feed entry as canonical JSON, less the fields its feed row holds; kept with it."""
    return canonical_json(feed_entry_fields(event)).decode()


def feed_entry_fields(event: Any) -> dict[str, Any]:
    """The wire fields an event gives its entry, in JSON form."""
    qualname = type(event).__qualname__
    event_type = EVENT_TYPES[qualname]
    attributes = {k: v for k, v in vars(event).items() if k not in _ENVELOPE}
    payload = EVENT_PAYLOADS[event_type].model_validate(_to_wire(attributes))
    aggregate = qualname.partition(".")[0]
    return {
        "stream_id": str(event.originator_id),
        "stream_type": STREAM_TYPES.get(aggregate, aggregate.lower()),
        "stream_version": event.originator_version,
        "event_type": event_type,
        "occurred_at": _MOMENT.dump_python(event.occurred_at, mode="json"),
        "payload": payload.model_dump(mode="json"),
    }


class EntryWriter:
    """Feed entries as their canonical JSON (proto/canonical.py), from the body kept with each
    event and its feed row's fields: the text served is the text hashed into the log.

    Callers are few and repeat, so each one's JSON is made once.
    """

    def __init__(self) -> None:
        self._callers: dict[Actor, str] = {}

    def entry(self, position: int, recorded_at: datetime, caused_by: Actor, body: str) -> str:
        """One entry's canonical JSON."""
        caller = self._callers.get(caused_by)
        if caller is None:
            caller = self._callers[caused_by] = canonical_json(
                caused_by.model_dump(mode="json")
            ).decode()
        moment = _MOMENT.dump_json(recorded_at).decode()
        if not body.startswith(CANONICAL_BODY_START):
            # Kept before bodies were canonical: the same fields, in the order they were written.
            row = {
                "position": position,
                "recorded_at": json.loads(moment),
                "caused_by": json.loads(caller),
            }
            return canonical_json(json.loads(body) | row).decode()
        # The row's fields slot in where their keys sort: caused_by first, position and
        # recorded_at between the payload and stream_id. Inside a canonical string a quote is
        # always escaped and the payload's keys all come earlier, so the last `,"stream_id":`
        # is the entry's own.
        split = body.rindex(_STREAM_ID)
        return (
            f'{{"caused_by":{caller},{body[1:split]},"position":{position},'
            f'"recorded_at":{moment}{body[split:]}'
        )
