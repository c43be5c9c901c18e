r"""The exact bytes the ledger's verifiable log hashes and signs, for auditors in any language.

The ledger's feed (`GET /events`) is also a Merkle tree as RFC 9162 (Certificate Transparency
v2) defines it, section 2.1, with SHA-256:

- Leaf `i` (0-based) is the feed entry at position `i + 1`. Its leaf hash is
  `SHA-256(0x00 || canonical bytes of the entry)`.
- An interior node is `SHA-256(0x01 || left || right)`; a tree of n > 1 leaves splits at k, the
  largest power of two smaller than n (left: leaves 0..k-1, right: k..n-1). The empty tree's
  hash is SHA-256 of the empty string (e3b0c442…b855).
- Inclusion and consistency proofs are RFC 9162's audit paths (sections 2.1.3 and 2.1.4),
  hashes as lowercase hex; any RFC 9162 / RFC 6962 verifier checks them.

**Canonical bytes of a feed entry.** Take the entry as the JSON object `GET /events` serves
(`FeedEntry` in proto/feed.py: position, stream_id, stream_type, stream_version, event_type,
occurred_at, recorded_at, caused_by, payload) and write it again:

1. Object members sorted by key, at every depth, comparing keys by Unicode code point (every
   key the ledger writes is ASCII, so this is plain byte order).
2. No insignificant whitespace: `,` between members and elements, `:` between key and value.
3. Strings escape only `"` as `\"`, `\` as `\\`, and the control characters U+0000-U+001F
   (`\b \t \n \f \r`, the others as `\u00xx` in lowercase hex); every other character,
   Chinese included, is written as itself.
4. Numbers are integers (positions, versions, years, quantities, scores), in plain decimal: a
   minus sign if negative, no plus sign, exponent, fraction or leading zeros; the ledger writes
   no fractional number. Money travels as decimal strings (`{"amount": "29000.00", "currency":
   "CNY"}`), UUIDs as lowercase hyphenated strings, times as the ISO 8601 strings served
   (`2014-06-02T10:00:00+08:00`, `2014-06-02T02:00:00.123456Z`): they are strings, copied as
   they are, never re-rendered.
5. `true`, `false` and `null` as such. The text is encoded as UTF-8, without a byte order mark.

For these entries this coincides with RFC 8785 (the JSON Canonicalization Scheme), since keys
are ASCII and numbers integers; in Python it is
`json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`.

The ledger serves each entry in exactly this form: inside the JSON page of `GET /events`, and
one entry per line (each ending in a line feed) at `GET /audit/entries`, whose lines are hashed
as they come.

Changing the feed entry's fields, or how one is rendered, changes every leaf hash: the wire
form of `FeedEntry` is frozen by the checkpoints already signed.

**Signed checkpoints.** A checkpoint commits to the tree of the first `tree_size` entries. Its
Ed25519 signature (RFC 8032, public key at `GET /audit/public-key`) is over the UTF-8 bytes of
the note, four lines each ending in a line feed (0x0a):

    community-ledger checkpoint
    <tree size in decimal>
    <root hash, 64 lowercase hex digits>
    <time taken, UTC: YYYY-MM-DDTHH:MM:SS.ffffffZ, always six fractional digits>

e.g. `community-ledger checkpoint\n42\n5dc9…4328\n2014-06-02T02:00:00.000000Z\n`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the auditor's tool starts without the wire models (pydantic) it needs not
    from proto.feed import FeedEntry

CHECKPOINT_ORIGIN = "community-ledger checkpoint"
"""The first line of every checkpoint note: names what the signature is about."""


def canonical_json(value: object) -> bytes:
    """The canonical bytes of any JSON value (parsed from the wire), as described above."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_bytes(entry: FeedEntry) -> bytes:
    """The canonical bytes of a feed entry: what its Merkle leaf hash is taken over."""
    return canonical_json(entry.model_dump(mode="json"))


def checkpoint_time(moment: datetime) -> str:
    """A checkpoint's time as its note writes it: UTC, microseconds, `Z`."""
    if moment.tzinfo is None:
        raise ValueError("a checkpoint's time needs a timezone")
    # isoformat, unlike strftime, pads every field (years below 1000 included) on every platform.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def checkpoint_note(tree_size: int, root_hash: bytes, taken_at: datetime) -> bytes:
    """The exact bytes a checkpoint's signature is over."""
    if tree_size < 0 or len(root_hash) != 32:
        raise ValueError("a checkpoint names a tree size ≥ 0 and a 32-byte SHA-256 root")
    lines = (CHECKPOINT_ORIGIN, str(tree_size), root_hash.hex(), checkpoint_time(taken_at))
    return "".join(f"{line}\n" for line in lines).encode()
