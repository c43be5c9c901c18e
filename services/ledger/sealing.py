"""Sealed prices: an applicant's price stays unreadable until its project's period closes.

Each application's price is recorded twice in its event: as a commitment, SHA-256 of
"<price in fen>:<nonce>", and sealed with AES-GCM under the ledger's key. When the period
closes the ledger opens every seal and discloses price and nonce, so anyone can check them
against the commitments made at application time: a price cannot change after the fact.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_IV_BYTES = 12


def price_commitment(price_fen: int, nonce: str) -> str:
    """The SHA-256 commitment to a price: hex of SHA-256("<fen>:<nonce>")."""
    return hashlib.sha256(f"{price_fen}:{nonce}".encode()).hexdigest()


@dataclass(frozen=True)
class SealedPrice:
    """What an application event carries about its price before the period closes."""

    commitment: str
    sealed: str


class PriceSealer:
    """Seals and opens prices with a key derived from the ledger's sealing secret."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(secret).digest())

    def seal(self, application_id: UUID, price_fen: int) -> SealedPrice:
        """Commit to a price and seal it, bound to its application."""
        nonce = secrets.token_hex(16)
        iv = secrets.token_bytes(_IV_BYTES)
        plain = f"{price_fen}:{nonce}".encode()
        cipher = self._aead.encrypt(iv, plain, application_id.bytes)
        return SealedPrice(
            commitment=price_commitment(price_fen, nonce),
            sealed=base64.b64encode(iv + cipher).decode(),
        )

    def open(self, application_id: UUID, sealed: str) -> tuple[int, str]:
        """The price in fen and its nonce, from a seal this ledger made."""
        raw = base64.b64decode(sealed)
        plain = self._aead.decrypt(raw[:_IV_BYTES], raw[_IV_BYTES:], application_id.bytes)
        fen, _, nonce = plain.decode().partition(":")
        return int(fen), nonce
