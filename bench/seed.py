"""Seeding big ledgers in-process, through the ledger's own application and domain (untimed).

Going through HTTP for a million entries would take far longer than the run may. So the ledger
application is opened in this process on the ledger's database (with the catalog service
running, as the ledger asks it), each contract loaded once, and many domain commands applied
to it before one save: a transaction holds thousands of events. Each batch is saved as the use
cases save it (services/ledger/application/fulfilment.py): deliveries by the provider,
acceptances and payments by the street office, payments claiming their treasury reference.

`checked=False` records the same events through the aggregate's event methods directly, skipping
the commands' checks: those sum over every delivery of the contract (accepted, pending, the
reference already used), which makes a contract with thousands of deliveries cost quadratic
time to seed. The amounts seeded stay within what the checks allow, and reconciliation replays
the result against every rule.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from multiprocessing.synchronize import Event as EventType
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from bench.results import FLOW_CAUGHT_UP, FLOW_REST, LEAVES_HASHED
from bench.world import DELIVERY_PERIOD, ContractRef
from demo.load import CHINA
from proto.actor import Actor, Role
from services.common.auth import AuthSettings
from services.ledger.application import LedgerApplication
from services.ledger.application.base import TREASURY_SCOPE
from services.ledger.audit.checkpoints import Checkpointer
from services.ledger.audit.flow_model import FlowModel
from services.ledger.domain.budget import Budget
from services.ledger.domain.contract import Contract
from services.ledger.main import open_ledger
from services.ledger.settings import LedgerSettings
from services.ledger.store.recorders import ReferenceClaim

AMOUNT_FEN = 100  # 1.00 CNY per delivery: no contract runs out of value
_OPEN_ATTEMPTS = 5
PER_PAYMENT = 20  # deliveries paid together, as one treasury payment


@dataclass(frozen=True)
class Seeded:
    """How many events were recorded, and how long it took."""

    events: int
    seconds: float

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def open_seeder(database_url: str, catalog_url: str) -> LedgerApplication:
    """The ledger application on a ledger's database; group commit off (one writer here)."""
    settings = LedgerSettings(database_url=database_url, catalog_url=catalog_url, group_commit_ms=0)
    # Processes opening the ledger at once each run its CREATE ... IF NOT EXISTS, and
    # PostgreSQL may refuse one of them ("tuple concurrently updated"): open it again then.
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            return open_ledger(settings, AuthSettings())[0]
        except PersistenceError:
            if attempt == _OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _actor(role: Role, organization: str) -> Actor:
    return Actor(role=role, organization_id=UUID(organization), subject=f"bench-{role.value}")


def _day(start: date, end: date, done: int, total: int) -> datetime:
    """A business time moving from `start` to `end` as the seeding goes on."""
    days = (end - start).days
    return datetime.combine(
        start + timedelta(days=days * done // max(total, 1)), datetime.min.time(), CHINA
    ) + timedelta(hours=10)


def _report(contract: Contract, reference: str, when: datetime, checked: bool) -> UUID:
    period = (date.fromisoformat(DELIVERY_PERIOD[0]), date.fromisoformat(DELIVERY_PERIOD[1]))
    fields: dict[str, Any] = {
        "reference": reference,
        "period_start": period[0],
        "period_end": period[1],
        "quantity": 1,
        "unit": "person-times",
        "amount_fen": AMOUNT_FEN,
        "evidence_sha256": [],
        "beneficiary_digests": [],
        "description": "home visits delivered as agreed, with attendance sheets",
        "occurred_at": when,
    }
    if checked:
        return contract.report_delivery(**fields).id
    delivery_id = uuid.uuid4()
    contract._delivery_reported(delivery_id=delivery_id, **fields)
    return delivery_id


def _accept(contract: Contract, delivery_id: UUID, when: datetime, checked: bool) -> None:
    if checked:
        contract.accept_delivery(
            delivery_id=delivery_id, amount_fen=None, score=90, note="", occurred_at=when
        )
    else:
        contract._delivery_accepted(
            delivery_id=delivery_id, accepted_fen=AMOUNT_FEN, score=90, note="", occurred_at=when
        )


def _pay(
    contract: Contract, reference: str, amount_fen: int, when: datetime, checked: bool
) -> None:
    if checked:
        contract.record_payment(reference=reference, amount_fen=amount_fen, occurred_at=when)
    else:
        contract._payment_recorded(reference=reference, amount_fen=amount_fen, occurred_at=when)


def seed_contract(
    ledger: LedgerApplication,
    ref: ContractRef,
    events: int,
    *,
    tag: str,
    batch: int,
    days: tuple[date, date],
    checked: bool,
) -> int:
    """Record about `events` events on one contract (deliveries, acceptances, payments)."""
    contract = ledger._get(Contract, UUID(ref.id))
    provider = _actor(Role.PROVIDER, ref.provider_id)
    street = _actor(Role.STREET, ref.purchaser_id)
    # Per round: `batch` deliveries, their acceptances, and a payment per PER_PAYMENT of them.
    per_round = 2 * batch + batch // PER_PAYMENT
    rounds = max(1, round(events / per_round))
    recorded = 0
    for r in range(rounds):
        when = _day(*days, r, rounds)
        ids = [
            _report(contract, f"{tag}-D-{ref.id[:8]}-{r}-{i}", when, checked) for i in range(batch)
        ]
        ledger._save(contract, caused_by=provider)
        accepted = when + timedelta(days=1)
        for delivery_id in ids:
            _accept(contract, delivery_id, accepted, checked)
        claims = []
        for p in range(batch // PER_PAYMENT):
            reference = f"{tag}-GK-{ref.id[:8]}-{r}-{p}"
            _pay(
                contract, reference, AMOUNT_FEN * PER_PAYMENT, accepted + timedelta(days=1), checked
            )
            claims.append(ReferenceClaim(TREASURY_SCOPE, reference, contract.id))
        ledger._save(contract, references=claims, caused_by=street)
        recorded += per_round
    return recorded


def seed(
    ledger: LedgerApplication,
    contracts: list[ContractRef],
    events: int,
    *,
    tag: str,
    batch: int = 500,
    days: tuple[date, date] = (date(2014, 10, 1), date(2014, 12, 28)),
    checked: bool = True,
    progress: Callable[[int], None] = lambda _: None,
) -> Seeded:
    """Spread about `events` events over `contracts`; what was recorded, and how fast."""
    started = time.perf_counter()
    each = events // len(contracts)
    # About five rounds per contract, so the business dates spread over the period and an
    # as-of date in its middle sees part of the events; few rounds, so few transactions.
    batch = max(PER_PAYMENT, min(batch, each // 10))
    total = 0
    for ref in contracts:
        done = seed_contract(ledger, ref, each, tag=tag, batch=batch, days=days, checked=checked)
        total += done
        progress(done)
    return Seeded(total, time.perf_counter() - started)


def contract_sizes(ledger: LedgerApplication, contracts: list[ContractRef]) -> list[int]:
    """How many events each contract holds."""
    return [ledger._get(Contract, UUID(c.id)).version for c in contracts]


def events_behind(ledger: LedgerApplication, budget_id: str, contracts: list[ContractRef]) -> int:
    """Events of the budget and of its contracts: what its funding flow stands on."""
    budget = ledger._get(Budget, UUID(budget_id))
    return budget.version + sum(contract_sizes(ledger, contracts))


# Set in each follower process by the pool: whether the seeding has ended.
_seeded: EventType | None = None
_PAUSE_SECONDS = 0.2  # a follower that found nothing new waits this long before looking again
_STRETCH = 10_000  # entries the read model takes in before it looks whether the seeding ended


def _share(seeded: EventType) -> None:
    global _seeded
    _seeded = seeded


def _follow_flow(database_url: str, catalog_url: str) -> list[tuple[str, int, float]]:
    # In a process of its own: following the feed while it is seeded, then to the head.
    assert _seeded is not None
    ledger = open_seeder(database_url, catalog_url)
    model = FlowModel(ledger)
    started = time.perf_counter()
    ended: tuple[float, int] | None = None  # when it saw the seeding had ended, and where it was
    try:
        reached = model.rows.position()
        while True:
            # Read before the head: once it is set, the head read after it is the last one.
            seeded = _seeded.is_set()
            head = ledger.reads.head()
            if seeded and ended is None:
                ended = (time.perf_counter(), reached)
            if reached >= head:
                if seeded:
                    break
                time.sleep(_PAUSE_SECONDS)
                continue
            # A stretch at a time, so that the end of the seeding is seen within seconds.
            reached = model.catch_up(min(head, reached + _STRETCH))
    finally:
        ledger.close()
    done = time.perf_counter()
    assert ended is not None
    return [
        (FLOW_CAUGHT_UP, reached, done - started),
        (FLOW_REST, reached - ended[1], done - ended[0]),
    ]


def _hash_leaves(database_url: str, catalog_url: str) -> list[tuple[str, int, float]]:
    # In a process of its own, once the seeding has ended: one checkpoint of the whole feed.
    ledger = open_seeder(database_url, catalog_url)
    started = time.perf_counter()
    try:
        settings = LedgerSettings(database_url=database_url, catalog_url=catalog_url)
        reached = Checkpointer.from_settings(ledger, settings).take()[0].tree_size
    finally:
        ledger.close()
    return [(LEAVES_HASHED, reached, time.perf_counter() - started)]


@contextmanager
def following(database_url: str, catalog_url: str) -> Iterator[list[tuple[str, int, float]]]:
    """The flow read model follows the feed while the body seeds it; then the leaves are hashed.

    The ledger service would do both in its background threads, in one process and so on one
    core, after the seeding; here the read model follows in a process of its own from the
    start, and the leaf hashes are taken in another beside the read model's last stretch, so
    the service starts caught up. The list yielded holds, once the block ends, each step's
    name, the entries it covered and its seconds.
    """
    context = multiprocessing.get_context("spawn")
    seeded = context.Event()
    steps: list[tuple[str, int, float]] = []
    with ProcessPoolExecutor(
        max_workers=2, mp_context=context, initializer=_share, initargs=(seeded,)
    ) as pool:
        flow = pool.submit(_follow_flow, database_url, catalog_url)
        try:
            yield steps
        finally:
            seeded.set()
        leaves = pool.submit(_hash_leaves, database_url, catalog_url)
        steps += flow.result() + leaves.result()
