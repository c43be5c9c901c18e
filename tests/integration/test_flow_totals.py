"""The flow read model's kept totals: each node's figures on both clocks, however its moves arrive.

Moves are stored as the feed gives them, in batches, and many are back-dated: recorded after
moves of their node that happened later in business time. Whatever the order and the batching,
a node's figures as of a time, known at a position, are the sum of its moves inside both.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from services.ledger.store.flow_moves import FlowMove
from services.ledger.store.flow_rows import FlowRows
from services.ledger.store.tables import FLOW_FIGURES, FLOW_TOTALS_TABLE
from tests.support.ledger_app import ledger_application

BUDGET = UUID("00000000-0000-4000-8000-000000000001")
NODES = [f"node-{n}" for n in range(5)]
DAY_ONE = datetime(2024, 1, 1, tzinfo=UTC)
# Business times are kept as microseconds since 1970: the month around it must add up too.
ACROSS_THE_EPOCH = datetime(1969, 12, 17, tzinfo=UTC)


@pytest.fixture
def rows(database_url: str, catalog_url: str) -> Iterator[FlowRows]:
    """The read model's tables in a fresh ledger database, registered and empty."""
    with ledger_application(database_url, catalog_url) as ledger:
        kept = FlowRows(ledger.recorder)
        kept.ensure()
        yield kept


def moves_of(seed: int, entries: int, first: datetime = DAY_ONE) -> list[FlowMove]:
    """Feed entries moving one to three nodes each, on days drawn at random (so often repeated)."""
    chance = random.Random(seed)  # noqa: S311 -- test data; seeded so runs repeat
    moves: list[FlowMove] = []
    for position in range(1, entries + 1):
        occurred_at = first + timedelta(days=chance.randrange(30))
        for seq, key in enumerate(chance.sample(NODES, chance.randint(1, 3))):
            names = chance.sample(FLOW_FIGURES, chance.randint(1, 3))
            moves.append(
                FlowMove(
                    position=position,
                    seq=seq,
                    budget_id=BUDGET,
                    stream_id=BUDGET,
                    node_key=key,
                    kind="contract",
                    parent_key=None,
                    created=False,
                    occurred_at=occurred_at,
                    deltas={name: chance.randint(-500, 1000) for name in names},
                    state=None,
                    details=None,
                )
            )
    return moves


def expected(
    moves: list[FlowMove], position: int, as_of: datetime | None
) -> dict[str, dict[str, int]]:
    """Each node's figures summed the slow way, over the moves both clocks let through."""
    sums = {key: dict.fromkeys(FLOW_FIGURES, 0) for key in NODES}
    for move in moves:
        if move.position <= position and (as_of is None or move.occurred_at <= as_of):
            for name, delta in move.deltas.items():
                sums[move.node_key][name] += delta
    return sums


def kept(rows: FlowRows, position: int, as_of: datetime | None) -> dict[str, dict[str, int]]:
    """Each node's figures as the read model gives them; a node it has no row for has none."""
    totals = rows.totals(BUDGET, NODES, position, as_of)
    return {key: totals.get(key, dict.fromkeys(FLOW_FIGURES, 0)) for key in NODES}


def store_in_batches(
    rows: FlowRows, moves: list[FlowMove], sizes: list[int], first: datetime = DAY_ONE
) -> None:
    """Append the moves in batches of the given numbers of feed entries, as a catch-up does."""
    rows.reset()
    after, last = 0, moves[-1].position
    for size in sizes:
        through = min(after + size, last)
        rows.append(after, through, [m for m in moves if after < m.position <= through])
        # At the head, each node's figures as of every day are right after every batch.
        for day in (None, first, first + timedelta(days=12), first + timedelta(days=29)):
            assert kept(rows, through, day) == expected(moves, through, day), (through, day)
        after = through
        if after == last:
            return
    raise AssertionError("the batch sizes do not cover the moves")


@pytest.mark.parametrize(
    ("seed", "sizes", "first"),
    [
        (1, [1] * 120, DAY_ONE),  # one entry a batch: as the ledger catches up while it records
        (2, [120], DAY_ONE),  # all at once, as a rebuild does: back-dated among later moves
        (3, [7, 40, 1, 1, 25, 3, 43], DAY_ONE),
        (5, [1] * 120, ACROSS_THE_EPOCH),
    ],
)
def test_totals_are_the_sum_of_the_moves_on_both_clocks(
    rows: FlowRows, seed: int, sizes: list[int], first: datetime
) -> None:
    moves = moves_of(seed, 120, first)
    store_in_batches(rows, moves, sizes, first)
    # Known at every position, as of days before, between and after the moves.
    days = [first - timedelta(days=1), *(first + timedelta(days=d) for d in range(0, 31, 3))]
    for position in range(0, 121, 7):
        for day in [None, *days]:
            assert kept(rows, position, day) == expected(moves, position, day), (position, day)


def test_a_batch_gives_the_same_rows_as_one_entry_at_a_time(rows: FlowRows) -> None:
    moves = moves_of(4, 80)
    table = rows._table(FLOW_TOTALS_TABLE)
    order = "ORDER BY node_key, occurred_at, position"
    store_in_batches(rows, moves, [1] * 80)
    one_by_one = rows._rows(f"SELECT * FROM {table} {order}")
    store_in_batches(rows, moves, [80])
    assert rows._rows(f"SELECT * FROM {table} {order}") == one_by_one
