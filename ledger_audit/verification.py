"""Verifying the ledger's log from the outside: every hash, every root, every signature.

Nothing the server computed is trusted: the auditor downloads the feed, hashes each entry as
proto/canonical.py defines, rebuilds the Merkle root at every checkpoint, and checks each
checkpoint's Ed25519 signature with the key pinned on the first run. The last checkpoint it
verified is kept in a state file; on the next run, the same entries must still produce that
root, so a history rewritten in between (even one re-signed by its operator) is caught.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proto.canonical import CHECKPOINT_ORIGIN, canonical_json
from services.ledger.audit.merkle import CompactRange


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


def leaf_hash(entry: dict[str, Any]) -> bytes:
    """RFC 9162 leaf hash of a feed entry, over its canonical bytes (proto/canonical.py)."""
    return sha256(b"\x00" + canonical_json(entry)).digest()


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
    entries: Iterable[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    public_key: str,
    earlier: Verified | None,
    progress: Callable[[int], None] = lambda _: None,
) -> tuple[int, dict[str, Any] | None]:
    """Check the feed against every checkpoint and the earlier run; (entries, latest checkpoint)."""
    for checkpoint in checkpoints:
        check_signature(checkpoint, public_key)
    roots = {c["tree_size"]: c["root_hash"] for c in checkpoints}
    tree = CompactRange()
    # Kept to name the first altered position if a root fails: 32 bytes an entry.
    computed: list[bytes] = []
    for expected_position, entry in enumerate(entries, start=1):
        if entry.get("position") != expected_position:
            raise VerificationFailed(
                f"position {expected_position}: the feed serves position {entry.get('position')} "
                "there; entries are missing or out of order"
            )
        computed.append(leaf_hash(entry))
        tree.append(computed[-1])
        progress(1)
        # The earlier run's root first: a rewritten history may come with its own, newly
        # signed checkpoint of the same size, and must still be caught.
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
        signed = roots.get(tree.size)
        if signed is not None and tree.root().hex() != signed:
            raise RootMismatch(
                f"the first {tree.size} entries no longer hash to checkpoint {tree.size}'s "
                f"signed root: an entry at or before position {tree.size} was altered, removed "
                "or reordered",
                computed,
            )
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
