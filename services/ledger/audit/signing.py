"""The key checkpoints are signed with (Ed25519), read where settings can check it cheaply.

What is signed is defined in proto/canonical.py; `checkpoints` takes and keeps them.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def load_signing_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS #8) text or the base64 of its 32-byte seed."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            # Environment variables often carry a PEM's line breaks as the two characters \n.
            key = serialization.load_pem_private_key(text.replace("\\n", "\n").encode(), None)
        except (ValueError, TypeError):
            # The library's message could quote the key; say only what is wrong.
            raise ValueError("the checkpoint key is not a readable unencrypted PEM key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the checkpoint key must be an Ed25519 key")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("the checkpoint key is neither a PEM key nor base64") from None
    if len(seed) != 32:
        raise ValueError(f"a base64 checkpoint key holds a 32-byte seed, not {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


class CheckpointSigner:
    """Signs checkpoint notes with the ledger's key, and checks signatures against it."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key: Ed25519PublicKey = key.public_key()
        self.public_raw = self.public_key.public_bytes_raw()
        self.public_pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, note: bytes) -> bytes:
        """The Ed25519 signature of a note (64 bytes)."""
        return self._key.sign(note)

    def verifies(self, note: bytes, signature: bytes) -> bool:
        """Whether this key signed this note."""
        try:
            self.public_key.verify(signature, note)
        except InvalidSignature:
            return False
        return True
