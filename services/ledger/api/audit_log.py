"""The verifiable log: signed checkpoints of the feed's Merkle tree, proofs, and the tamper check.

What is hashed and signed is defined in proto/canonical.py; the proofs are RFC 9162's, so an
auditor checks them with any RFC 9162 (or RFC 6962) verifier and the public key served here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from proto.actor import Actor
from proto.canonical import checkpoint_note, checkpoint_time
from proto.feed import FeedEntry
from services.common.auth import Authenticated, CurrentActor
from services.common.http import After
from services.common.permissions import require_role
from services.common.problems import PROBLEM_RESPONSES
from services.common.wire import MAX_POSITION
from services.ledger.api.deps import Cursor, Ledger, Limit
from services.ledger.application.access import OVERSEERS
from services.ledger.audit.checkpoints import Checkpointer
from services.ledger.audit.verification import FailureReason
from services.ledger.store.reads import CheckpointRow


async def _overseer(caller: CurrentActor) -> Actor:
    require_role(caller, OVERSEERS, "read the ledger's verifiable log")
    return caller


async def get_checkpointer(request: Request) -> Checkpointer:
    """The checkpointer built at startup for this process's ledger."""
    checkpointer: Checkpointer = request.app.state.checkpointer
    return checkpointer


Audit = Annotated[Checkpointer, Depends(get_checkpointer)]
# Every endpoint is for overseers: a router-wide dependency, so none can forget it.
router = APIRouter(
    dependencies=[Authenticated, Depends(_overseer)],
    prefix="/audit",
    tags=["audit"],
    responses=PROBLEM_RESPONSES,
)

Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="32 bytes, lowercase hex")]
Size = Annotated[int, Field(ge=1, description="Number of entries: positions 1..tree_size")]
Position = Annotated[int, Query(ge=1, le=MAX_POSITION, description="A feed position")]
TreeSize = Annotated[int, Query(ge=1, le=MAX_POSITION, description="A checkpoint's tree size")]


class PublicKey(BaseModel):
    """The key every checkpoint is signed with."""

    algorithm: str = Field(examples=["Ed25519"])
    pem: str = Field(description="SubjectPublicKeyInfo, PEM")
    raw: Hex32 = Field(description="The 32-byte Ed25519 public key (RFC 8032)")


class Checkpoint(BaseModel):
    """A signed tree head: the Merkle root of the feed's first `tree_size` entries."""

    tree_size: Size
    root_hash: Hex32 = Field(description="RFC 9162 MTH of the entries' leaf hashes")
    timestamp: str = Field(description="When it was taken, as the note writes it (UTC)")
    note: str = Field(description="The exact text signed, UTF-8: see proto/canonical.py")
    signature: str = Field(
        pattern=r"^[0-9a-f]{128}$", description="Ed25519 signature of `note`, hex"
    )
    public_key: Hex32 = Field(description="The key that signed it")


class CheckpointPage(BaseModel):
    items: list[Checkpoint]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class InclusionProof(BaseModel):
    """RFC 9162 section 2.1.3: the entry's leaf is in the checkpoint's tree."""

    position: int = Field(ge=1)
    leaf_index: int = Field(ge=0, description="position - 1")
    leaf_hash: Hex32 = Field(description="SHA-256(0x00 || canonical bytes of the entry)")
    audit_path: list[Hex32] = Field(description="From the leaf's sibling up to the root's child")
    checkpoint: Checkpoint
    entry: FeedEntry | None = Field(
        description="The entry as the feed serves it now; null if it is gone or unreadable"
    )


class ConsistencyProof(BaseModel):
    """RFC 9162 section 2.1.4: the first checkpoint's tree is a prefix of the second's."""

    first: Checkpoint
    second: Checkpoint
    consistency_path: list[Hex32] = Field(
        description="Empty when both are the same tree; the first root is not repeated"
    )


class Leaf(BaseModel):
    position: int = Field(ge=1)
    leaf_hash: Hex32


class LeafPage(BaseModel):
    """Stored leaf hashes; ask again with `after=next_after` until `leaves` is empty."""

    leaves: list[Leaf]
    next_after: int = Field(ge=0)


class VerificationFailure(BaseModel):
    reason: FailureReason = Field(
        description="missing: no entry (or leaf hash) where the log has one; altered: the entry "
        "no longer hashes as recorded, or cannot be read; reordered: it holds an entry recorded "
        "at another position; root-mismatch: entries and leaf hashes were rewritten together, "
        "the signed root catches them; bad-signature: a checkpoint's signature does not verify"
    )
    position: int | None = Field(description="The first position that fails, when one does")
    tree_size: int | None = Field(description="The checkpoint that fails, when one does")
    detail: str


class Verification(BaseModel):
    """The whole log checked from the events up, stopping at the first failure."""

    ok: bool
    checked_positions: int = Field(ge=0, description="Positions examined")
    checked_checkpoints: int = Field(ge=0, description="Checkpoints found sound")
    failure: VerificationFailure | None


def _checkpoint(row: CheckpointRow) -> Checkpoint:
    note = checkpoint_note(row.tree_size, row.root_hash, row.taken_at)
    return Checkpoint(
        tree_size=row.tree_size,
        root_hash=row.root_hash.hex(),
        timestamp=checkpoint_time(row.taken_at),
        note=note.decode(),
        signature=row.signature.hex(),
        public_key=row.public_key.hex(),
    )


@router.get("/public-key", operation_id="getCheckpointKey")
def get_public_key(audit: Audit) -> PublicKey:
    """The public key that verifies every checkpoint's signature."""
    signer = audit.signer
    return PublicKey(algorithm="Ed25519", pem=signer.public_pem, raw=signer.public_raw.hex())


@router.get("/checkpoints", operation_id="listCheckpoints")
def list_checkpoints(audit: Audit, limit: Limit = 100, cursor: Cursor = 0) -> CheckpointPage:
    """Every checkpoint kept, smallest tree first; `cursor` is a tree size."""
    rows = audit.reads.checkpoints(after=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return CheckpointPage(
        items=[_checkpoint(r) for r in rows], next_cursor=rows[-1].tree_size if more else None
    )


@router.post(
    "/checkpoints",
    operation_id="takeCheckpoint",
    status_code=201,
    responses={
        200: {
            "model": Checkpoint,
            "description": "Nothing was recorded since the latest checkpoint: that one",
        }
    },
)
def take_checkpoint(audit: Audit, response: Response) -> Checkpoint:
    """Sign the tree of every entry recorded so far, now."""
    row, is_new = audit.take()
    response.status_code = 201 if is_new else 200
    response.headers["Location"] = f"/audit/checkpoints/{row.tree_size}"
    return _checkpoint(row)


@router.get("/checkpoints/latest", operation_id="getLatestCheckpoint")
def get_latest_checkpoint(audit: Audit) -> Checkpoint:
    """The checkpoint of the largest tree signed."""
    return _checkpoint(audit.checkpoint(None))


@router.get("/checkpoints/{tree_size}", operation_id="getCheckpoint")
def get_checkpoint(
    audit: Audit, tree_size: Annotated[int, Path(ge=1, le=MAX_POSITION)]
) -> Checkpoint:
    """The checkpoint of the tree of this size."""
    return _checkpoint(audit.checkpoint(tree_size))


@router.get("/proofs/inclusion", operation_id="proveInclusion")
def prove_inclusion(
    audit: Audit, position: Position, tree_size: TreeSize | None = None
) -> InclusionProof:
    """The audit path of an entry in a checkpoint's tree (the latest unless `tree_size`)."""
    proof = audit.inclusion(position, tree_size)
    return InclusionProof(
        position=proof.position,
        leaf_index=proof.position - 1,
        leaf_hash=proof.leaf_hash.hex(),
        audit_path=[node.hex() for node in proof.path],
        checkpoint=_checkpoint(proof.checkpoint),
        entry=proof.entry,
    )


@router.get("/proofs/consistency", operation_id="proveConsistency")
def prove_consistency(
    audit: Audit,
    first: Annotated[int, Query(ge=1, le=MAX_POSITION, description="The earlier tree size")],
    second: Annotated[
        int | None,
        Query(ge=1, le=MAX_POSITION, description="The later tree size; the latest if omitted"),
    ] = None,
) -> ConsistencyProof:
    """The proof that one checkpoint's tree is the start of a later one's."""
    earlier, later, path = audit.consistency(first, second)
    return ConsistencyProof(
        first=_checkpoint(earlier),
        second=_checkpoint(later),
        consistency_path=[node.hex() for node in path],
    )


@router.get("/leaves", operation_id="listLeaves")
def list_leaves(
    audit: Audit,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Return leaves after this position")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LeafPage:
    """Stored leaf hashes by position, to recompute roots independently."""
    leaves = [Leaf(position=p, leaf_hash=h.hex()) for p, h in audit.reads.leaves(after, limit)]
    return LeafPage(leaves=leaves, next_after=leaves[-1].position if leaves else after)


LOG_LINES = "application/jsonl"
"""JSON Lines: one JSON text per line, each ending in a line feed."""


@router.get(
    "/entries",
    operation_id="listLogEntries",
    response_class=Response,
    responses={
        200: {
            "content": {LOG_LINES: {"schema": {"type": "string"}}},
            "description": "One line per entry, position `after + 1` first: its canonical "
            "bytes (proto/canonical.py) and a line feed. Fewer than `limit` lines: the end.",
        }
    },
)
def list_log_entries(
    ledger: Ledger,
    caller: CurrentActor,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """The feed's entries as the exact bytes their leaf hashes are over, one per line."""
    return Response(ledger.log_lines(after=after, limit=limit, by=caller), media_type=LOG_LINES)


@router.get("/verification", operation_id="verifyLog")
def verify_log(audit: Audit) -> Verification:
    """Recompute every leaf from the events and check the leaf hashes and every checkpoint."""
    result = audit.verify()
    failure = result.failure
    return Verification(
        ok=failure is None,
        checked_positions=result.checked_positions,
        checked_checkpoints=result.checked_checkpoints,
        failure=None
        if failure is None
        else VerificationFailure(
            reason=failure.reason,
            position=failure.position,
            tree_size=failure.tree_size,
            detail=failure.detail,
        ),
    )
