"""Subscriptions' signing secrets: made here, shown once, kept encrypted at rest."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the public prefix Standard Webhooks gives secrets


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class SecretBox:
    """Encrypts secrets with a key from configuration (NOTIFIER_ENCRYPTION_KEY)."""

    def __init__(self, key: str) -> None:
        # Fernet wants 32 bytes; any configured string, hashed, gives them.
        digest = hashlib.sha256(key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret: str) -> bytes:
        """The secret, encrypted and authenticated."""
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        """The secret again; ValueError if it was sealed under another key or altered."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise ValueError(
                "a subscription secret cannot be decrypted: NOTIFIER_ENCRYPTION_KEY changed "
                "since it was stored, or the row was altered"
            ) from None
