"""Bearer tokens: verifying who calls, and minting tokens for development and between services.

Tokens are JWTs naming a role (`role`), an organization (`org`) and an account (`sub`), for the
audience `community-ledger` unless configured otherwise, and always expiring (`exp`).
Development signs with a shared secret (HS256); production verifies with public keys (RS256,
ES256 or EdDSA) and then accepts the secret only if one was set on purpose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.exceptions import HTTPException
from starlette.types import Scope

from proto.actor import Actor, Role
from services.common.settings import secrets_dir

logger = logging.getLogger("services.auth")
# Only for development: anyone can read it here, so anyone could mint tokens with it.
DEVELOPMENT_JWT_SECRET = "development-only-jwt-secret-of-the-community-ledger"  # noqa: S105
_PEM_END = "-----END PUBLIC KEY-----"
_LEEWAY_SECONDS = 30  # clocks of callers and services differ by a little
VERIFIED_TOKENS_KEPT = 10_000


class AuthSettings(BaseSettings):
    """AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEYS, AUTH_JWT_AUDIENCE: shared by the three services."""

    model_config = SettingsConfigDict(
        env_prefix="AUTH_", extra="ignore", hide_input_in_errors=True, secrets_dir=secrets_dir()
    )

    jwt_secret: SecretStr = SecretStr(DEVELOPMENT_JWT_SECRET)
    jwt_public_keys: str = ""
    """PEM public keys, one after the other; several while keys are rotated."""
    jwt_audience: str = "community-ledger"
    token_ttl_seconds: int = 3600
    """How long tokens minted by the services for each other (and by `make token`) live."""

    @property
    def uses_development_secret(self) -> bool:
        """Whether the secret anyone can read in the source is what signs tokens."""
        return self.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET

    @property
    def can_mint(self) -> bool:
        """Whether this process holds a signing secret: development, or a secret set on purpose."""
        return not self.jwt_public_keys.strip() or not self.uses_development_secret

    def development_secrets(self) -> list[str]:
        """The settings left at a development value anyone could use to mint tokens."""
        return ["AUTH_JWT_SECRET"] if self.can_mint and self.uses_development_secret else []


def _algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name not in by_curve:
            raise ValueError(
                f"AUTH_JWT_PUBLIC_KEYS holds a key on unsupported curve {key.curve.name}"
            )
        return by_curve[key.curve.name]
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ValueError(f"AUTH_JWT_PUBLIC_KEYS holds an unsupported key type {type(key).__name__}")


def _public_keys(pem_bundle: str) -> list[tuple[Any, str]]:
    blocks = [block + _PEM_END for block in pem_bundle.split(_PEM_END) if block.strip()]
    keys = [load_pem_public_key(block.strip().encode()) for block in blocks]
    return [(key, _algorithm(key)) for key in keys]


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired, or not signed by a trusted key."""


def _invalid(reason: jwt.InvalidTokenError) -> InvalidToken:
    return InvalidToken(f"the bearer token is not valid: {reason}")


class TokenVerifier:
    """Checks bearer tokens against the configured keys and names their caller."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.time) -> None:
        self._audience = settings.jwt_audience
        self._clock = clock
        # A caller sends the same token with every request for its life; checking its
        # signature again each time was a tenth of an append's CPU. Only `exp` can turn a token
        # that passed into one that fails, so a token is kept with it and checked against it.
        self._verified: dict[str, tuple[Actor, float]] = {}
        self._keys: list[tuple[Any, str]] = _public_keys(settings.jwt_public_keys)
        if settings.can_mint:
            self._keys.append((settings.jwt_secret.get_secret_value(), "HS256"))

    def verify(self, token: str) -> Actor:
        """The caller a token names; InvalidToken unless a trusted key signed it and it is valid."""
        kept = self._verified.get(token)
        if kept is not None:
            actor, expires = kept
            if self._clock() < expires + _LEEWAY_SECONDS:
                return actor
            self._verified.pop(token, None)
            raise _invalid(jwt.ExpiredSignatureError("Signature has expired"))
        actor, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # rare: as many callers as this at once; they verify again
        self._verified[token] = (actor, expires)
        return actor

    def _verify(self, token: str) -> tuple[Actor, float]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the bearer token is not a JWT: {exc}") from None
        candidates = [key for key, alg in self._keys if alg == algorithm]
        if not candidates:
            raise InvalidToken(f"tokens signed with {algorithm!r} are not accepted here")
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[str(algorithm)],
                    audience=self._audience,
                    options={"require": ["exp", "sub", "role", "org"]},
                    leeway=_LEEWAY_SECONDS,
                )
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue  # another trusted key may have signed it
            except jwt.InvalidTokenError as exc:
                raise _invalid(exc) from None
            try:
                actor = Actor(
                    role=claims["role"], organization_id=claims["org"], subject=claims["sub"]
                )
            except ValidationError:
                roles = ", ".join(role.value for role in Role)
                raise InvalidToken(
                    f"the token must name a role (one of {roles}), an organization id (a UUID) "
                    "and a subject"
                ) from None
            return actor, float(claims["exp"])
        raise InvalidToken("the bearer token is not signed by a key this service trusts")

    def identify(self, scope: Scope) -> str | None:
        """A stable name of the caller of an ASGI request, or None when it has no valid token."""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                try:
                    actor = self.verify(token.strip())
                except InvalidToken:
                    return None
                return f"{actor.role}|{actor.organization_id}|{actor.subject}"
        return None


def mint_token(
    secret: str,
    *,
    role: Role,
    organization_id: UUID,
    subject: str,
    audience: str,
    ttl_seconds: int,
) -> str:
    """A signed HS256 token for a caller; for development and for services holding the secret."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": role.value,
        "org": str(organization_id),
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class ServiceToken:
    """The token a service sends when it calls another: configured, or minted and renewed."""

    settings: AuthSettings
    organization_id: UUID
    subject: str
    configured: SecretStr | None = None
    _token: str = ""
    _renew_at: float = 0.0

    def __call__(self) -> str:
        """A token valid for a while yet."""
        if self.configured is not None:
            return self.configured.get_secret_value()
        if not self.settings.can_mint:
            raise RuntimeError(
                "no token to call other services: set one, or a signing secret (AUTH_JWT_SECRET)"
            )
        if time.monotonic() >= self._renew_at:
            ttl = self.settings.token_ttl_seconds
            self._token = mint_token(
                self.settings.jwt_secret.get_secret_value(),
                role=Role.SERVICE,
                organization_id=self.organization_id,
                subject=self.subject,
                audience=self.settings.jwt_audience,
                ttl_seconds=ttl,
            )
            self._renew_at = time.monotonic() + ttl / 2
        return self._token


_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT naming `role`, `org` and `sub`; `python -m services.token --help` mints "
    "development tokens",
)


async def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The verified caller of this request; 401 without a valid bearer token."""
    # async: verifying needs no I/O, so a worker thread would only add a hop per request.
    challenge = 'Bearer realm="community-ledger"'
    if credentials is None:
        raise HTTPException(
            401,
            "this endpoint needs an Authorization: Bearer <token> header",
            headers={"WWW-Authenticate": challenge},
        )
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(
            401, str(exc), headers={"WWW-Authenticate": challenge + ', error="invalid_token"'}
        ) from None


CurrentActor = Annotated[Actor, Depends(current_actor)]


def install_token_verifier(app: FastAPI, settings: AuthSettings) -> TokenVerifier:
    """Make the app verify bearer tokens with these settings."""
    verifier = TokenVerifier(settings)
    app.state.token_verifier = verifier
    return verifier


Authenticated = Depends(current_actor)
"""For routers whose every endpoint needs a caller: `APIRouter(dependencies=[Authenticated])`."""
