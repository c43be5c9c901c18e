"""The flow's tree: sums from the leaves up, siblings in order, and JSON that is the model's own."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import get_args
from uuid import UUID, uuid4

import pytest

from proto.audit import BudgetFlow
from services.ledger.audit.flow_csv import flow_csv
from services.ledger.audit.flow_nodes import (
    DEEP_KINDS,
    HOLDER_KINDS,
    SHALLOW_KINDS,
    NodeKind,
    NodeState,
    commitment_key,
    node_key,
)
from services.ledger.audit.flow_tree import FlowAnswer, grow, wire_time

BUDGET = uuid4()
BEIJING = timezone(timedelta(hours=8))


def _budget(remaining: int) -> NodeState:
    return NodeState(
        node_key(BUDGET, "budget", BUDGET),
        "budget",
        None,
        {
            "appropriated": 1_000_00,
            "allocated": 900_00,
            "committed": 800_00,
            "remaining": remaining,
        },
        details={
            "id": str(BUDGET),
            "reference": "预算-2014-001",
            "title": '街道 "社区服务" 购买\n第二行',
            "occurred_at": datetime(2014, 1, 1, tzinfo=UTC).isoformat(),
            "holder_id": str(uuid4()),
        },
        order=(0, 0),
    )


def _allocation(allocation_id: UUID, rank: int) -> NodeState:
    return NodeState(
        node_key(BUDGET, "allocation", allocation_id),
        "allocation",
        node_key(BUDGET, "budget", BUDGET),
        {"allocated": 450_00, "committed": 400_00, "remaining": 50_00},
        details={"id": str(allocation_id), "street_office_id": str(uuid4())},
        order=(0, rank),
    )


def _contract(contract_id: UUID, allocation_id: UUID, accepted: int, paid: int) -> list[NodeState]:
    key = node_key(contract_id, "contract", contract_id)
    signed = datetime(2014, 3, 1, 9, 30, 0, 120000, tzinfo=BEIJING)
    return [
        NodeState(
            commitment_key(BUDGET, contract_id),
            "commitment",
            node_key(BUDGET, "allocation", allocation_id),
            {},
            order=(1, 0),
        ),
        NodeState(
            key,
            "contract",
            commitment_key(BUDGET, contract_id),
            {
                "amount": 400_00,
                "committed": 400_00,
                "released": 0,
                "accepted": accepted,
                "paid": paid,
                "remaining": 400_00 - paid,
            },
            "active",
            {
                "id": str(contract_id),
                "reference": "HT-1",
                "title": "=SUM(A1)",
                "occurred_at": signed.isoformat(),
                "street_office_id": str(uuid4()),
                "implementer_id": str(uuid4()),
                "provider_id": str(uuid4()),
                "item_ids": [str(uuid4()), str(uuid4())],
            },
            (1, 1),
        ),
        # Recorded before the delivery, listed after it: payments follow deliveries.
        NodeState(
            node_key(contract_id, "payment", "GK-7"),
            "payment",
            key,
            {"amount": paid, "paid": paid},
            "paid",
            {"id": "GK-7", "reference": "GK-7", "occurred_at": signed.isoformat()},
            (2, 0),
        ),
        NodeState(
            node_key(contract_id, "delivery", contract_id),
            "delivery",
            key,
            {"amount": accepted, "accepted": accepted},
            "accepted",
            {"id": str(uuid4()), "reference": None, "occurred_at": signed.isoformat()},
            (3, 0),
        ),
    ]


def _nodes(remaining: int = 200_00) -> list[NodeState]:
    first, second = uuid4(), uuid4()
    nodes = [_budget(remaining), _allocation(first, 1), _allocation(second, 2)]
    nodes += _contract(uuid4(), first, 300_00, 250_00)
    nodes += _contract(uuid4(), second, 12_34, 0)
    # Committed on terms its own record does not show: no contract node hangs from it.
    nodes.append(
        NodeState(commitment_key(BUDGET, uuid4()), "commitment", nodes[1].key, {}, order=(4, 0))
    )
    return nodes


def _answer(remaining: int = 200_00, nodes: list[NodeState] | None = None) -> FlowAnswer:
    nodes = _nodes(remaining) if nodes is None else nodes
    tree = grow({node.key: node for node in nodes}, node_key(BUDGET, "budget", BUDGET))
    as_of = datetime(2014, 12, 31, 23, 59, 59, tzinfo=UTC)
    return FlowAnswer(BUDGET, 42, as_of, "read-model", tree)


def test_a_tree_written_with_the_parts_below_its_holders_is_the_tree_written_whole() -> None:
    nodes = _nodes()
    answer = _answer(nodes=nodes)
    holders = [b for b in answer.budget.walk() if b.kind in HOLDER_KINDS]
    assert len(holders) == 2
    # Each part as written below its holder alone; the tree grown without what lies below.
    parts = {holder.node.key: holder.children_json() for holder in holders}
    shallow = _answer(nodes=[node for node in nodes if node.kind in SHALLOW_KINDS])

    whole = b"".join(answer.budget_json())
    assert b"".join(shallow.budget_json()) != whole
    assert b"".join(shallow.budget_json(parts)) == whole


def test_a_large_answer_is_written_in_pieces_its_large_parts_never_copied() -> None:
    nodes = _nodes()
    answer = _answer(nodes=nodes)
    shallow = _answer(nodes=[node for node in nodes if node.kind in SHALLOW_KINDS])
    holders = [b for b in answer.budget.walk() if b.kind in HOLDER_KINDS]
    # A part as large as a contract with hundreds of deliveries, and one small.
    large = b",".join([holders[0].children_json()] * 2_000)
    parts = {holders[0].node.key: large, holders[1].node.key: holders[1].children_json()}

    pieces = shallow.budget_json(parts)

    assert any(piece is large for piece in pieces)
    assert len(pieces) == 3  # what comes before the large part, the part, and what follows
    written = b"".join(pieces)
    assert written.count(large) == 1
    assert json.loads(written)["id"] == str(BUDGET)


def test_every_kind_of_node_is_either_shallow_or_below_a_holder() -> None:
    kinds = set(get_args(get_args(NodeKind)[0])) | set(get_args(get_args(NodeKind)[1]))
    assert set(SHALLOW_KINDS) | set(DEEP_KINDS) == kinds
    assert not set(SHALLOW_KINDS) & set(DEEP_KINDS)
    assert set(HOLDER_KINDS) <= set(SHALLOW_KINDS)


@pytest.mark.parametrize("remaining", [200_00, -5_01])
def test_the_json_written_is_byte_for_byte_what_the_model_writes(remaining: int) -> None:
    answer = _answer(remaining)

    assert answer.json() == answer.model().model_dump_json().encode()
    BudgetFlow.model_validate_json(answer.json())  # and it is a valid answer


def test_budgets_and_allocations_sum_their_children_and_payments_follow_deliveries() -> None:
    flow = json.loads(_answer().json())
    budget = flow["budget"]
    first, second = budget["children"]

    assert [child["kind"] for child in first["children"][0]["children"]] == [
        "delivery",
        "payment",
    ]
    assert first["accepted"]["amount"] == "300.00"
    assert first["paid"]["amount"] == "250.00"
    assert second["accepted"]["amount"] == "12.34"
    assert second["paid"]["amount"] == "0.00"
    assert budget["accepted"]["amount"] == "312.34"
    assert budget["paid"]["amount"] == "250.00"
    assert budget["released"]["amount"] == "0.00"
    # A commitment with nothing visible under it adds nothing and shows nothing.
    assert len(first["children"]) == 1
    assert budget["appropriated"]["amount"] == "1000.00"


def test_a_figure_below_zero_other_than_remaining_is_refused_not_written() -> None:
    answer = _answer()
    delivery = answer.budget.children[0].children[0].children[0]
    bent = replace(delivery.node, figures={"amount": 5_00, "accepted": -5})
    broken = replace(answer, budget=grow({bent.key: bent}, bent.key))

    with pytest.raises(ValueError, match="never negative, got -5 fen"):
        broken.json()


def test_a_shortfall_shows_as_overdrawn_and_remaining_never_below_zero() -> None:
    budget = json.loads(_answer(-5_01).json())["budget"]

    assert budget["remaining"] == {"amount": "0.00", "currency": "CNY"}
    assert budget["overdrawn"] == {"amount": "5.01", "currency": "CNY"}


def test_the_csv_reads_the_same_tree() -> None:
    answer = _answer()
    rows = list(csv.DictReader(io.StringIO(flow_csv(answer), newline="")))
    flow = json.loads(answer.json())["budget"]

    assert [row["kind"] for row in rows] == [branch.kind for branch in answer.budget.walk()]
    assert (rows[0]["position"], rows[0]["as_of"]) == ("42", "2014-12-31T23:59:59+00:00")
    assert rows[0]["title"] == flow["title"]  # quotes and a line break kept
    assert rows[0]["accepted"] == flow["accepted"]["amount"] == "312.34"
    assert rows[2]["title"] == "'=SUM(A1)"  # a formula-like title is defused
    assert rows[2]["occurred_at"] == "2014-03-01T09:30:00.120000+08:00"


@pytest.mark.parametrize(
    ("written", "wire"),
    [
        ("2014-01-01T00:00:00+00:00", "2014-01-01T00:00:00Z"),
        ("2014-01-01T08:00:00.000005+08:00", "2014-01-01T08:00:00.000005+08:00"),
        (None, None),
    ],
)
def test_times_are_written_as_the_models_write_them(written: str | None, wire: str | None) -> None:
    assert wire_time(written) == wire
