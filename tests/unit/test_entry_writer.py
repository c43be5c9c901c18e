"""Feed entries are written as their canonical bytes, whatever their payload holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from proto.actor import Actor, Role
from proto.canonical import canonical_json
from services.ledger.feed import EntryWriter

CALLER = Actor(
    role=Role.STREET,
    organization_id=UUID("6f1c2a4e-0000-4000-8000-00000000000a"),
    subject='街道办 "南湖"\\经办',
)
RECORDED = datetime(2026, 11, 23, 2, 0, 0, 123456, tzinfo=UTC)

AWKWARD_PAYLOADS: list[dict[str, Any]] = [
    {"amount": {"amount": "29000.00", "currency": "CNY"}, "note": "plain"},
    # The row's keys, nested, and in strings: the writer must place the entry's own.
    {"position": 7, "stream_id": "not the entry's", "caused_by": {"position": 1}},
    {"note": ',"stream_id":"x",\',"position":9,', "list": [{"stream_id": 1}, '"stream_id"']},
    {"note": "社区养老服务\n第二季度\t\u0001\u001f\\", "zeta": None, "alpha": [True, False, -3]},
    {},
]


def fields(payload: dict[str, Any]) -> dict[str, Any]:
    """What an event gives its entry (services/ledger/feed.py, feed_entry_fields)."""
    return {
        "stream_id": "0b7d7c1e-5a8e-4b7a-9a55-3f4a4c1d2e3f",
        "stream_type": "contract",
        "stream_version": 12,
        "event_type": "payment.recorded",
        "occurred_at": datetime(2014, 6, 2, 10, tzinfo=timezone(timedelta(hours=8))).isoformat(),
        "payload": payload,
    }


def expected(payload: dict[str, Any], position: int) -> str:
    """The canonical bytes of the whole entry, made as an auditor makes them."""
    entry = fields(payload) | {
        "position": position,
        "recorded_at": "2026-11-23T02:00:00.123456Z",
        "caused_by": json.loads(CALLER.model_dump_json()),
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("payload", AWKWARD_PAYLOADS)
def test_an_entry_from_its_canonical_body_is_its_canonical_bytes(payload: dict[str, Any]) -> None:
    body = canonical_json(fields(payload)).decode()
    written = EntryWriter().entry(4711, RECORDED, CALLER, body)
    assert written == expected(payload, 4711)


@pytest.mark.parametrize("payload", AWKWARD_PAYLOADS)
def test_a_body_kept_before_bodies_were_canonical_gives_the_same_bytes(
    payload: dict[str, Any],
) -> None:
    # As earlier ledgers kept it: the fields in the order they were made, nested too.
    body = json.dumps(fields(payload), ensure_ascii=False, separators=(",", ":"))
    assert not body.startswith('{"event_type"')
    assert EntryWriter().entry(3, RECORDED, CALLER, body) == expected(payload, 3)
