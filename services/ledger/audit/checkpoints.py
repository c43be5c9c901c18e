"""Signed checkpoints of the feed's Merkle tree, and the proofs against them; the check of it all
is verification.py's, which the checkpointer starts.

The checkpointer hashes each new feed entry into `ledger_leaves` (its canonical bytes, see
proto/canonical.py), then signs the tree's root with the ledger's Ed25519 key into
`ledger_checkpoints`. It never signs a tree whose stored leaves no longer lead to the latest
checkpoint's root, so the checkpoints it keeps are consistent with each other, or it stops.

Costs, deliberately simple for now: a proof reads every leaf hash of its tree (32 bytes per
entry) and hashes the tree again; the verification decodes and hashes every event once (once
for reconciliation's replay and itself together, when reconciliation runs it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from proto.canonical import checkpoint_note
from proto.feed import FeedEntry
from services.common.errors import InvalidCommand, NotFound, RuleViolation
from services.ledger.audit import merkle
from services.ledger.audit.background import in_background
from services.ledger.audit.signing import CheckpointSigner, load_signing_key
from services.ledger.audit.verification import LogCheck, Verification
from services.ledger.feed import EntryWriter, feed_entry
from services.ledger.store.reads import CheckpointRow, FeedRow

if TYPE_CHECKING:
    from services.ledger.application.base import LedgerBase
    from services.ledger.settings import LedgerSettings

logger = logging.getLogger("services.ledger.audit")
_CHUNK = 1000  # rows read at a time while hashing or checking the whole feed


class EmptyLedger(RuleViolation):
    """Nothing is recorded yet, so there is no tree to sign."""


class NoCheckpoint(NotFound):
    """No checkpoint was taken of a tree of this size."""


class PositionOutsideTree(InvalidCommand):
    """The position is not among the entries the tree covers."""


class SizesOutOfOrder(InvalidCommand):
    """A consistency proof goes from a smaller (or equal) tree to a larger one."""


class LogDamaged(RuleViolation):
    """The stored feed or leaf hashes no longer match what was signed: see the verification."""


@dataclass(frozen=True)
class InclusionProof:
    """An audit path for one entry against a checkpoint."""

    checkpoint: CheckpointRow
    position: int
    leaf_hash: bytes
    path: list[bytes]
    entry: FeedEntry | None


class Checkpointer:
    """Keeps the leaf hashes and the checkpoints of one ledger, and answers proofs from them."""

    def __init__(
        self,
        ledger: LedgerBase,
        signer: CheckpointSigner,
        *,
        every_entries: int,
        every_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.reads = ledger.reads
        self._ledger = ledger
        self._decode = ledger.mapper.to_domain_event
        self.signer = signer
        self.every_entries = every_entries
        self.every_seconds = every_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # The tree as of this process's last checkpoint, so the next root costs only new leaves.
        self._frontier: merkle.CompactRange | None = None

    @classmethod
    def from_settings(cls, ledger: LedgerBase, settings: LedgerSettings) -> Checkpointer:
        """A checkpointer with the key and the cadence the ledger's settings give."""
        return cls(
            ledger,
            CheckpointSigner(load_signing_key(settings.checkpoint_key.get_secret_value())),
            every_entries=settings.checkpoint_every_entries,
            every_seconds=settings.checkpoint_every_seconds,
        )

    def entry(self, row: FeedRow) -> FeedEntry:
        """The wire form of a stored feed row, as `GET /events` serves it."""
        return feed_entry(row, self._decode(row.event))

    def _fill_leaves(self) -> int:
        """Hash the feed's entries not hashed yet; the last position hashed."""
        last, head = self.reads.last_leaf(), self.reads.head()
        while last < head:
            batch = self._written_leaves(last) or self._leaves(last)
            if not batch:
                break
            self.reads.add_leaves(batch)
            last = batch[-1][0]
        return last

    def _written_leaves(self, last: int) -> list[tuple[int, bytes]] | None:
        """The leaves of the entries after `last`, from the page of lines the database writes
        and `GET /audit/entries` serves; None where it does not write every one, or finds a
        position missing (the entry by entry path below says which)."""
        page = self.reads.entry_page(last, _CHUNK, "\n", "")
        if page is None or page.last is None:
            return None
        lines = page.text.split(b"\n")[:-1]
        if len(lines) != page.last - last:
            return None
        return [(last + n, merkle.leaf_hash(line)) for n, line in enumerate(lines, 1)]

    def _leaves(self, last: int) -> list[tuple[int, bytes]]:
        """The leaves of the entries after `last`, each read and written here."""
        batch: list[tuple[int, bytes]] = []
        writer = EntryWriter()
        for row in self.reads.feed_entries(after=last, limit=_CHUNK):
            position = last + len(batch) + 1
            if row.position != position:
                raise LogDamaged(f"the feed has no entry at position {position}")
            try:
                # The canonical text served for the entry. The reconciliation derives each
                # entry again from its event and holds it to these leaves, so a line written
                # wrong fails it rather than passing unnoticed.
                entry = self._ledger.entry_json(row, writer).encode()
            except Exception:  # whatever makes an event unreadable, it was not written so
                raise LogDamaged(f"the entry at position {position} cannot be read") from None
            batch.append((position, merkle.leaf_hash(entry)))
        return batch

    def _advance(self, tree: merkle.CompactRange, size: int, check: CheckpointRow | None) -> None:
        """Bring `tree` to `size` stored leaves, checking it still leads to `check`'s root."""
        while tree.size < size:
            chunk = self.reads.leaves(after=tree.size, limit=min(_CHUNK, size - tree.size))
            if not chunk:
                raise LogDamaged(f"the leaf hash of position {tree.size + 1} is not stored")
            for position, leaf in chunk:
                if position != tree.size + 1:
                    raise LogDamaged(f"the leaf hash of position {tree.size + 1} is not stored")
                tree.append(leaf)
                if (
                    check is not None
                    and tree.size == check.tree_size
                    and tree.root() != check.root_hash
                ):
                    raise LogDamaged(
                        f"the stored leaf hashes no longer lead to the root signed at tree "
                        f"size {tree.size}"
                    )

    def take(self) -> tuple[CheckpointRow, bool]:
        """Sign the tree of every entry recorded so far; (checkpoint, whether it is new)."""
        with self._lock:
            size = self._fill_leaves()
            if size == 0:
                raise EmptyLedger("nothing is recorded yet: there is no tree to sign")
            latest = self.reads.latest_checkpoint()
            if latest is not None and latest.tree_size >= size:
                return latest, False
            known = self._frontier
            # A copy: a tree that failed its check must not be taken up again as if it passed.
            tree = known.copy() if known is not None and known.size <= size else None
            tree = tree or merkle.CompactRange()
            self._advance(tree, size, latest)
            taken_at = self._clock()
            root = tree.root()
            signature = self.signer.sign(checkpoint_note(size, root, taken_at))
            mine = CheckpointRow(size, root, taken_at, self.signer.public_raw, signature)
            self.reads.add_checkpoint(mine)
            self._frontier = tree
            kept = self.reads.checkpoint(size)
            # Another process may have signed this size first; its checkpoint is the one kept.
            return (kept, kept == mine) if kept is not None else (mine, True)

    def maybe_checkpoint(self) -> CheckpointRow | None:
        """Take a checkpoint if N entries or T seconds of entries wait for one; the new one."""
        head = self.reads.head()
        latest = self.reads.latest_checkpoint()
        covered = latest.tree_size if latest is not None else 0
        if head <= covered:
            return None
        if head - covered < self.every_entries:
            # Time counts from the oldest entry no checkpoint covers, not from the last one taken.
            oldest = self.reads.feed(after=covered, limit=1)
            waited = self._clock() - oldest[0].recorded_at if oldest else timedelta(0)
            if waited < timedelta(seconds=self.every_seconds):
                return None
        checkpoint, is_new = self.take()
        return checkpoint if is_new else None

    # --- proofs -------------------------------------------------------------------------------

    def checkpoint(self, tree_size: int | None) -> CheckpointRow:
        """The checkpoint of this tree size, or the latest when None; 404 if none was taken."""
        found = (
            self.reads.latest_checkpoint()
            if tree_size is None
            else self.reads.checkpoint(tree_size)
        )
        if found is None:
            raise NoCheckpoint(
                "no checkpoint was taken yet"
                if tree_size is None
                else f"no checkpoint was taken of the tree of size {tree_size}"
            )
        return found

    def _tree(self, checkpoint: CheckpointRow) -> list[bytes]:
        """Every stored leaf hash of a checkpoint's tree, checked against its signed root."""
        size = checkpoint.tree_size
        rows = self.reads.leaves(after=0, limit=size)
        if len(rows) != size or (rows and rows[-1][0] != size):
            raise LogDamaged(f"leaf hashes of the tree of size {size} are missing")
        leaves = [leaf for _, leaf in rows]
        if merkle.root(leaves) != checkpoint.root_hash:
            raise LogDamaged(f"the stored leaf hashes no longer lead to checkpoint {size}'s root")
        return leaves

    def inclusion(self, position: int, tree_size: int | None) -> InclusionProof:
        """The audit path of the entry at `position` in a checkpoint's tree."""
        checkpoint = self.checkpoint(tree_size)
        if position > checkpoint.tree_size:
            raise PositionOutsideTree(
                f"position {position} is not in the tree of size {checkpoint.tree_size}"
            )
        leaves = self._tree(checkpoint)
        rows = self.reads.feed(after=position - 1, limit=1)
        try:
            entry = self.entry(rows[0]) if rows and rows[0].position == position else None
        except Exception:  # an unreadable entry is shown as missing; the verification says why
            entry = None
        path = merkle.inclusion_path(position - 1, leaves)
        return InclusionProof(checkpoint, position, leaves[position - 1], path, entry)

    def consistency(
        self, first: int, second: int | None
    ) -> tuple[CheckpointRow, CheckpointRow, list[bytes]]:
        """The proof that one checkpoint's tree is a prefix of a later one's."""
        later = self.checkpoint(second)
        if first > later.tree_size:
            raise SizesOutOfOrder(
                f"the first tree ({first}) must not be larger than the second ({later.tree_size})"
            )
        earlier = self.checkpoint(first)
        leaves = self._tree(later)
        if merkle.root(leaves[:first]) != earlier.root_hash:
            raise LogDamaged(f"the stored leaf hashes no longer lead to checkpoint {first}'s root")
        return earlier, later, merkle.consistency_proof(first, leaves)

    # --- verification -------------------------------------------------------------------------

    def log_check(self) -> LogCheck:
        """A pass of the verification, to be handed entries or left to read them itself."""
        return LogCheck(self.reads, self.signer, self.entry)

    def verify(self) -> Verification:
        """Rehash every event; check it against its stored leaf hash and every checkpoint."""
        return self.log_check().finish()


def checkpointing(
    checkpointer: Checkpointer, *, poll_seconds: float | None = None
) -> AbstractAsyncContextManager[None]:
    """Take checkpoints in the background, as the settings ask, for the duration of a block."""

    def signed(taken: CheckpointRow | None) -> None:
        if taken is not None:
            logger.info("checkpoint of tree size %d signed", taken.tree_size)

    return in_background(
        "ledger-checkpointer",
        checkpointer.maybe_checkpoint,
        every=poll_seconds if poll_seconds is not None else min(checkpointer.every_seconds, 1.0),
        failing="no checkpoint could be taken",
        done=signed,
    )
