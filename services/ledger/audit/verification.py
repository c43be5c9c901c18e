"""The verification of the log: every entry derived again from its event, hashed, and held to its
stored leaf hash and to every signed checkpoint, in one pass in position order.

The pass is handed each entry by whoever reads the feed: the checkpointer reads it itself for
`GET /audit/verification`, and reconciliation hands over the entries its replay has already
read and decoded, so that each event is read and decoded once for both. Positions no one
handed over are read by the pass itself before it answers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from proto.canonical import canonical_bytes, checkpoint_note
from proto.feed import FeedEntry
from services.ledger.audit import merkle
from services.ledger.audit.signing import CheckpointSigner
from services.ledger.store.reads import CheckpointRow, FeedRow, LedgerReads

_CHUNK = 1000  # rows, leaf hashes or checkpoints read at a time
_REORDER_CANDIDATES = 64  # later failing positions tried as the first one's true place

FailureReason = Literal["missing", "altered", "reordered", "root-mismatch", "bad-signature"]
Derived = FeedEntry | str
"""An entry as its event reads now, or the name of the error that stopped it being read."""


@dataclass(frozen=True)
class Failure:
    """What the verification found wrong first, and where."""

    reason: FailureReason
    position: int | None
    tree_size: int | None
    detail: str


@dataclass(frozen=True)
class Verification:
    """The outcome of checking every entry, leaf hash and checkpoint."""

    checked_positions: int
    checked_checkpoints: int
    failure: Failure | None


@dataclass(frozen=True)
class _Problem:
    position: int
    reason: FailureReason
    detail: str
    entry: FeedEntry | None = None
    recorded: bytes | None = None


class LogCheck:
    """One pass of the verification; hand it entries in position order, then `finish` it."""

    def __init__(
        self,
        reads: LedgerReads,
        signer: CheckpointSigner,
        derive: Callable[[FeedRow], FeedEntry],
    ) -> None:
        self._reads = reads
        self._signer = signer
        self._derive = derive
        latest = reads.latest_checkpoint()
        # Positions the log vouches for: those hashed, and those a checkpoint covers.
        self._vouched = max(reads.last_leaf(), latest.tree_size if latest else 0)
        self.end = max(reads.head(), self._vouched)
        self._tree = merkle.CompactRange()
        self._checked = 0
        self._pending = deque(reads.checkpoints(after=0, limit=_CHUNK))
        self._first: _Problem | None = None
        self._later: list[_Problem] = []  # failing positions after the first: where it may belong
        self._seen = 0
        self._stored: dict[int, bytes] = {}
        self._stored_through = 0
        self._outcome: Verification | None = None

    def see(self, position: int, entry: Derived) -> None:
        """The entry at `position`; positions passed over since the last one are missing."""
        if self._outcome is not None or position <= self._seen or position > self.end:
            return
        while self._seen < position - 1 and self._outcome is None:
            self._take(self._seen + 1, None)
        if self._outcome is None:
            self._take(position, entry)

    def _read(self, row: FeedRow) -> Derived:
        """A stored row's entry as its event reads now, or why it cannot be read."""
        try:
            return self._derive(row)
        except Exception as exc:  # any failure to read it back means it is not what was written
            return type(exc).__name__

    def finish(self) -> Verification:
        """Read and check the positions not handed over, through the end; the outcome."""
        while self._outcome is None and self._seen < self.end:
            stop = min(self._seen + _CHUNK, self.end)
            for row in self._reads.feed(self._seen, stop - self._seen):
                if row.position <= stop:
                    self.see(row.position, self._read(row))
            while self._outcome is None and self._seen < stop:
                self._take(self._seen + 1, None)  # the feed has no row there
        if self._outcome is None:
            failure = _classify(self._first, self._later) if self._first is not None else None
            self._outcome = Verification(self.end, self._checked, failure)
        return self._outcome

    def _take(self, position: int, entry: Derived | None) -> None:
        self._seen = position
        recorded = self._recorded(position)
        problem, leaf = self._examine(position, entry, recorded)
        # Once one position failed, the pass goes on only to find where its entry belongs.
        if self._first is not None:
            if problem is not None and problem.recorded is not None:
                self._later.append(problem)
                if len(self._later) >= _REORDER_CANDIDATES:
                    found = _classify(self._first, self._later)
                    self._outcome = Verification(position, self._checked, found)
            return
        if problem is not None:
            self._first = problem
            return
        self._tree.append(leaf)
        while self._pending and self._pending[0].tree_size == position:
            failure = self._check(self._pending.popleft())
            if failure is not None:
                self._outcome = Verification(position, self._checked, failure)
                return
            self._checked += 1
            if not self._pending:
                self._pending.extend(self._reads.checkpoints(after=position, limit=_CHUNK))

    def _recorded(self, position: int) -> bytes | None:
        if position > self._stored_through:
            self._stored = dict(self._reads.leaves(position - 1, _CHUNK))
            self._stored_through = position - 1 + _CHUNK
        return self._stored.get(position)

    def _examine(
        self, position: int, entry: Derived | None, recorded: bytes | None
    ) -> tuple[_Problem | None, bytes]:
        """The problem with one position, if any, and the leaf hash its entry has now."""
        if entry is None:
            return _Problem(position, "missing", f"no entry at position {position}"), b""
        if isinstance(entry, str):
            why = f"the event at position {position} cannot be read ({entry})"
            return _Problem(position, "altered", why, recorded=recorded), b""
        leaf = merkle.leaf_hash(canonical_bytes(entry))
        if recorded is None and position <= self._vouched:
            why = f"the leaf hash of position {position} is no longer stored"
            return _Problem(position, "missing", why), leaf
        if recorded is not None and leaf != recorded:
            why = f"the entry at position {position} no longer hashes to its stored leaf hash"
            return _Problem(position, "altered", why, entry, recorded), leaf
        return None, leaf

    def _check(self, checkpoint: CheckpointRow) -> Failure | None:
        """What is wrong with a checkpoint, given the tree of the entries it covers."""
        size = checkpoint.tree_size
        note = checkpoint_note(size, checkpoint.root_hash, checkpoint.taken_at)
        if checkpoint.public_key != self._signer.public_raw:
            why = f"it was signed with key {checkpoint.public_key.hex()}, not the ledger's key"
            return Failure("bad-signature", None, size, why)
        if not self._signer.verifies(note, checkpoint.signature):
            return Failure("bad-signature", None, size, "its signature does not verify")
        if self._tree.root() != checkpoint.root_hash:
            why = (
                f"the entries up to position {size} no longer hash to the root signed for them, "
                "though each matches its stored leaf hash: those were rewritten as well"
            )
            return Failure("root-mismatch", None, size, why)
        return None


def _classify(first: _Problem, later: list[_Problem]) -> Failure:
    """The first problem as a failure, telling a moved entry from a changed one."""
    # An entry that hashes to another position's stored leaf once given that position was
    # recorded there: the rows were renumbered, not rewritten.
    if first.entry is not None:
        for other in later:
            moved = first.entry.model_copy(update={"position": other.position})
            if merkle.leaf_hash(canonical_bytes(moved)) == other.recorded:
                detail = f"position {first.position} holds the entry recorded at {other.position}"
                return Failure("reordered", first.position, None, detail)
    return Failure(first.reason, first.position, None, first.detail)
