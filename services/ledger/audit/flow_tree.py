"""A budget's funding flow as a tree, its figures summed from the leaves up, and its wire forms.

The tree is built once from the flow's nodes, lightly: a whole flow holds a node for every
delivery and payment, tens of thousands of them, and a pydantic model of each cost seconds and
about 4 kB a node. So the JSON answer is written from the tree directly, in the bytes the
BudgetFlow model itself would write (a test holds the two to each other); the model is still
there for a caller that wants objects, and the CSV and reconciliation read the same tree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from pydantic_core import to_json

from proto.audit import BudgetFlow, FlowKind, FlowNode
from proto.money import amount_of
from services.ledger.audit.flow_nodes import FIGURES, NodeKind, NodeState

LEVELS: dict[FlowKind, int] = {
    "budget": 0,
    "allocation": 1,
    "contract": 2,
    "grant": 2,
    "delivery": 3,
    "payment": 3,
    "tranche": 3,
}
# A node's wire fields in the model's order, blank until its details fill them: every field
# is always present on the wire. Its children are written after them.
_EMPTY: dict[str, Any] = {
    name: () if name == "item_ids" else None for name in FlowNode.model_fields if name != "children"
}
_NO_PARTS: Mapping[str, bytes] = {}
Written = tuple[bytes, ...]
"""JSON written in pieces, to be sent one after another: 25 MB joined into one is copied
twice, about as long as a whole flow kept takes to send."""
_PIECE = 64 * 1024
# Contracts list their deliveries before their payments; siblings otherwise go by creation.
_SIBLING_RANK: dict[NodeKind, int] = {"payment": 1}


def wire_time(moment: str | None) -> str | None:
    """An ISO 8601 time as the models write it: UTC as `Z`, any other offset as it is."""
    if moment is not None and moment.endswith("+00:00"):
        return moment[:-6] + "Z"
    return moment


@dataclass(frozen=True, slots=True)
class Branch:
    """A node in its place in the tree: its figures in fen (summed from below where a budget
    or an allocation sums them; None where a figure does not apply) and its children."""

    node: NodeState
    figures: Mapping[str, int | None]
    children: list[Branch]

    @property
    def kind(self) -> FlowKind:
        return cast(FlowKind, self.node.kind)

    @property
    def id(self) -> str:
        """The id the wire shows: a UUID, or a payment's or tranche's treasury reference."""
        return str(self.node.details["id"])

    def walk(self) -> Iterator[Branch]:
        """This branch and every one below it, depth first, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()

    def amounts(self) -> dict[str, str | None]:
        """Each wire figure as a decimal string in yuan; a shortfall as overdrawn, never < 0."""
        amounts = {
            name: None if fen is None else amount_of(fen)
            for name, fen in self.figures.items()
            if name != "remaining"
        }
        remaining = self.figures.get("remaining")
        amounts["remaining"] = amounts["overdrawn"] = None
        if remaining is not None:
            amounts["remaining"] = amount_of(max(remaining, 0))
            amounts["overdrawn"] = amount_of(-remaining) if remaining < 0 else None
        return amounts

    def fields(self) -> dict[str, Any]:
        """The node's wire fields as JSON values, in the model's order, children left out."""
        fields = _EMPTY.copy()
        fields.update(self.node.details)
        fields["kind"] = kind = self.kind
        fields["level"] = LEVELS[kind]
        fields["state"] = self.node.state
        fields["occurred_at"] = wire_time(fields["occurred_at"])
        for name, amount in self.amounts().items():
            if amount is not None:
                fields[name] = {"amount": amount, "currency": "CNY"}
        return fields

    def model(self) -> FlowNode:
        """The node and everything below it as validated models."""
        return FlowNode.model_validate(
            {**self.fields(), "children": [child.model() for child in self.children]}
        )

    def json_chunks(self, parts: Mapping[str, bytes] = _NO_PARTS) -> Iterator[bytes]:
        """The node and everything below it as JSON, a node at a time; below a node whose key
        `parts` holds, its children as written there."""
        yield to_json(self.fields())[:-1] + b',"children":['
        part = parts.get(self.node.key)
        if part is not None:
            yield part
        else:
            for rank, child in enumerate(self.children):
                if rank:
                    yield b","
                yield from child.json_chunks(parts)
        yield b"]}"

    def children_json(self) -> bytes:
        """The node's children as JSON, as `json_chunks` writes them inside its list."""
        return b",".join(b"".join(child.json_chunks()) for child in self.children)


def _own_figures(node: NodeState) -> dict[str, int | None]:
    """Every wire figure of a node, None where it has none of its own."""
    figures: dict[str, int | None] = dict.fromkeys(FIGURES)
    figures.update(node.figures)
    return figures


def lone(node: NodeState) -> Branch:
    """A node as a branch of its own, its figures its own: what a delivery, payment or tranche
    is in any tree."""
    return Branch(node, _own_figures(node), [])


def grow(nodes: Mapping[str, NodeState], root_key: str) -> Branch:
    """The tree under `root_key`, budgets' and allocations' figures summed from below."""
    children: dict[str, list[NodeState]] = defaultdict(list)
    for node in nodes.values():
        if node.parent is not None:
            children[node.parent].append(node)
    for siblings in children.values():
        siblings.sort(key=lambda n: (_SIBLING_RANK.get(n.kind, 0), n.order))

    def below(node: NodeState) -> list[NodeState]:
        found = children.get(node.key, [])
        if node.kind != "allocation":
            return found
        # An allocation's contracts and grants hang from its commitments, in commitment order;
        # one whose record is not (yet) visible on the same terms is left out, not failed on.
        return [holder for commitment in found for holder in children.get(commitment.key, [])]

    def branch(node: NodeState) -> Branch:
        kids = [branch(child) for child in below(node)]
        figures = _own_figures(node)
        if node.kind in ("budget", "allocation"):
            for name in ("released", "accepted", "paid"):
                figures[name] = sum(kid.figures.get(name) or 0 for kid in kids)
        return Branch(node, figures, kids)

    return branch(nodes[root_key])


def _head(budget_id: UUID, position: int, as_of: datetime | None, source: str) -> dict[str, Any]:
    return {
        "budget_id": str(budget_id),
        "position": position,
        "as_of": wire_time(as_of.isoformat()) if as_of else None,
        "source": source,
    }


def written_answer(
    budget_id: UUID, position: int, as_of: datetime | None, source: str, budget: Written
) -> Written:
    """A flow answer's JSON around its budget's, as `BudgetFlow` would write it."""
    head = to_json(_head(budget_id, position, as_of, source))[:-1] + b',"budget":'
    return (head, *budget, b"}")


@dataclass(frozen=True)
class FlowAnswer:
    """A budget's flow as one answer: the tree, and the terms it answers on."""

    budget_id: UUID
    position: int
    as_of: datetime | None
    source: str
    budget: Branch

    def model(self) -> BudgetFlow:
        """The answer as a validated model."""
        head = _head(self.budget_id, self.position, self.as_of, self.source)
        return BudgetFlow.model_validate({**head, "budget": self.budget.model()})

    def budget_json(self, parts: Mapping[str, bytes] = _NO_PARTS) -> Written:
        """The budget's part of the answer: the whole tree's JSON, with `parts` written below
        the nodes of their keys (see `Branch.json_chunks`), in pieces of about `_PIECE` bytes
        or more: the parts are pieces of their own, never copied."""
        pieces: list[bytes] = []
        gathered: list[bytes] = []
        size = 0
        for chunk in self.budget.json_chunks(parts):
            if len(chunk) >= _PIECE:
                if gathered:
                    pieces.append(b"".join(gathered))
                    gathered, size = [], 0
                pieces.append(chunk)
                continue
            gathered.append(chunk)
            size += len(chunk)
            if size >= _PIECE:
                pieces.append(b"".join(gathered))
                gathered, size = [], 0
        if gathered:
            pieces.append(b"".join(gathered))
        return tuple(pieces)

    def json(self) -> bytes:
        """The answer's JSON, byte for byte what its model would write."""
        return b"".join(
            written_answer(
                self.budget_id, self.position, self.as_of, self.source, self.budget_json()
            )
        )
