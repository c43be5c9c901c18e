"""Verifying the ledger's log from the outside: every hash, every root, every signature.

Nothing the server computed is trusted: the auditor downloads the log's entries as the exact
bytes proto/canonical.py defines (`GET /audit/entries`), hashes each one, rebuilds the Merkle
root at every checkpoint, and checks each checkpoint's Ed25519 signature with the key pinned on
the first run. The last checkpoint it verified is kept in a state file; on the next run, the
same entries must still produce that root, so a history rewritten in between (even one
re-signed by its operator) is caught.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proto.canonical import CHECKPOINT_ORIGIN
from services.ledger.audit.merkle import CompactRange, leaf_hash


@dataclass(frozen=True)
class Verified:
    """The auditor's memory between runs: the key it trusts and the last checkpoint it checked."""

    public_key: str
    tree_size: int
    root_hash: str
    timestamp: str

    @classmethod
    def load(cls, path: Path) -> Verified | None:
        """The state saved by an earlier run, if any."""
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        """Keep it for the next run."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


class VerificationFailed(Exception):
    """The log does not verify; the message names the first position or checkpoint that fails."""


class RootMismatch(VerificationFailed):
    """The entries no longer hash to a signed (or earlier verified) root."""

    def __init__(self, message: str, computed: list[bytes]) -> None:
        super().__init__(message)
        self.computed = computed
        """The leaf hashes recomputed, position 1 first, up to the tree that failed."""


def first_difference(computed: list[bytes], recorded: Iterable[tuple[int, str]]) -> int | None:
    """The first position whose recomputed leaf hash differs from the one the ledger recorded."""
    seen = 0
    for position, leaf in recorded:
        if position > len(computed):
            break
        seen = position
        if computed[position - 1].hex() != leaf:
            return position
    return seen + 1 if seen < len(computed) else None


_POSITION = b',"position":'


def stated_position(line: bytes) -> int | None:
    """The position an entry's canonical bytes state; None if they state none."""
    # Canonical bytes put the entry's own position after its payload, with only plain values
    # after it, and a quote inside a string is always escaped: the last `,"position":` is it.
    at = line.rfind(_POSITION)
    if at < 0:
        return None
    start = at + len(_POSITION)
    end = line.find(b",", start)
    if end < 0:
        return None  # the record time and the stream follow it in every entry
    digits = line[start:end]
    # Written as canonical JSON writes a number, or it states no position.
    return int(digits) if digits.isdigit() and not digits.startswith(b"0") else None


def check_signature(checkpoint: dict[str, Any], public_key: str) -> None:
    """The checkpoint's note is what its fields say, and the pinned key signed it."""
    note = (
        f"{CHECKPOINT_ORIGIN}\n{checkpoint['tree_size']}\n{checkpoint['root_hash']}\n"
        f"{checkpoint['timestamp']}\n"
    )
    if checkpoint["note"] != note:
        raise VerificationFailed(
            f"checkpoint {checkpoint['tree_size']}: its note does not state its own fields"
        )
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(checkpoint["signature"]), note.encode()
        )
    except (InvalidSignature, ValueError):
        raise VerificationFailed(
            f"checkpoint {checkpoint['tree_size']}: the signature does not verify with the "
            f"pinned key {public_key}"
        ) from None


def verify_log(
    pages: Iterable[Sequence[bytes]],
    checkpoints: list[dict[str, Any]],
    public_key: str,
    earlier: Verified | None,
    progress: Callable[[int], None] = lambda _: None,
) -> tuple[int, dict[str, Any] | None]:
    """Check the log's entries (canonical bytes, in pages) against every checkpoint and the
    earlier run; (entries, latest checkpoint)."""
    for checkpoint in checkpoints:
        check_signature(checkpoint, public_key)
    roots = {c["tree_size"]: c["root_hash"] for c in checkpoints}
    # The sizes whose root is compared. The earlier run's comes first at its size: a rewritten
    # history may come with its own, newly signed checkpoint of the same size.
    stops = sorted(set(roots) | ({earlier.tree_size} if earlier else set()))
    tree = CompactRange()
    # Kept to name the first altered position if a root fails: 32 bytes an entry.
    computed: list[bytes] = []
    for page in pages:
        done = 0
        while done < len(page):
            # Up to the next compared size, or to the page's end if that comes first.
            room = len(page) - done
            upcoming = bisect_right(stops, tree.size)
            if upcoming < len(stops):
                room = min(room, stops[upcoming] - tree.size)
            part = page[done : done + room]
            _check_positions(part, tree.size + 1)
            leaves = [leaf_hash(line) for line in part]
            computed += leaves
            tree.extend(leaves)
            done += len(part)
            _check_root(tree, computed, earlier, roots.get(tree.size))
        progress(len(page))
    if earlier is not None and tree.size < earlier.tree_size:
        raise VerificationFailed(
            f"the feed has {tree.size} entries, fewer than the {earlier.tree_size} verified on "
            f"{earlier.timestamp}: entries were removed"
        )
    beyond = [c["tree_size"] for c in checkpoints if c["tree_size"] > tree.size]
    if beyond:
        raise VerificationFailed(
            f"checkpoint {beyond[0]} covers more entries than the feed serves ({tree.size})"
        )
    return tree.size, (checkpoints[-1] if checkpoints else None)


def _check_positions(lines: Sequence[bytes], first: int) -> None:
    for expected, line in enumerate(lines, start=first):
        # stated_position(line) == expected, without making a number of every line's digits.
        at = line.rfind(_POSITION)
        if at < 0 or not line.startswith(b"%d," % expected, at + len(_POSITION)):
            raise VerificationFailed(
                f"position {expected}: the feed serves position {stated_position(line)} there; "
                "entries are missing or out of order"
            )


def _check_root(
    tree: CompactRange, computed: list[bytes], earlier: Verified | None, signed: str | None
) -> None:
    if (
        earlier is not None
        and tree.size == earlier.tree_size
        and tree.root().hex() != earlier.root_hash
    ):
        raise RootMismatch(
            f"the first {tree.size} entries no longer hash to the root this tool "
            f"verified on {earlier.timestamp}: history was rewritten",
            computed,
        )
    if signed is not None and tree.root().hex() != signed:
        raise RootMismatch(
            f"the first {tree.size} entries no longer hash to checkpoint {tree.size}'s "
            f"signed root: an entry at or before position {tree.size} was altered, removed "
            "or reordered",
            computed,
        )
