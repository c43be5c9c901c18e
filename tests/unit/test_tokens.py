"""Bearer tokens: who a token names, which tokens are refused, and who may mint them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI
from pydantic import SecretStr

import services.common.auth as auth
from proto.actor import Actor, Role
from services.common.auth import (
    DEVELOPMENT_JWT_SECRET,
    AuthSettings,
    CurrentActor,
    InvalidToken,
    ServiceToken,
    TokenVerifier,
    install_token_verifier,
    mint_token,
)
from services.common.problems import install_problem_handlers
from services.token import main

ORG = UUID("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b")
OTHER_ORG = UUID("0b8e7d6c-5a4f-4e3d-9c2b-1a0f9e8d7c6b")
AUDIENCE = "community-ledger"
# At least 32 bytes each: PyJWT warns about shorter HMAC keys, and warnings are errors here.
SECRET = "a-secret-set-on-purpose-for-this-deployment-only"
OTHER_SECRET = "another-secret-nobody-here-trusts-at-all-really"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@pytest.fixture(autouse=True)
def _clean_auth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never depend on the AUTH_* variables of the machine they run on."""
    for name in (
        "AUTH_JWT_SECRET",
        "AUTH_JWT_PUBLIC_KEYS",
        "AUTH_JWT_AUDIENCE",
        "AUTH_TOKEN_TTL_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for a street office of ORG; an override of None drops that claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "street-desk",
        "role": "street",
        "org": str(ORG),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def hs256(secret: str = DEVELOPMENT_JWT_SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def refusal(verifier: TokenVerifier, token: str) -> str:
    """The message InvalidToken gives for a token the verifier must refuse."""
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(token)
    message = str(refused.value)
    assert message.strip(), "a refusal must say why"
    return message


def development_verifier() -> TokenVerifier:
    return TokenVerifier(AuthSettings())


# Key pairs -------------------------------------------------------------------------------------


def rsa_key() -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ed25519_key() -> PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


KEY_TYPES = [
    pytest.param(rsa_key, "RS256", id="rsa-rs256"),
    pytest.param(ec_key, "ES256", id="ec-p256-es256"),
    pytest.param(ed25519_key, "EdDSA", id="ed25519-eddsa"),
]


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def bundle(*keys: PrivateKey) -> str:
    """A PEM bundle of the public halves, one after the other, as AUTH_JWT_PUBLIC_KEYS holds."""
    return "".join(public_pem(key) for key in keys)


def signed(key: PrivateKey, algorithm: str, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=algorithm)


# Development secret ----------------------------------------------------------------------------


def test_a_token_minted_with_the_development_secret_names_its_actor() -> None:
    token = mint_token(
        DEVELOPMENT_JWT_SECRET,
        role=Role.FINANCE,
        organization_id=ORG,
        subject="finance-clerk-7",
        audience=AUDIENCE,
        ttl_seconds=600,
    )

    actor = development_verifier().verify(token)

    assert actor == Actor(role=Role.FINANCE, organization_id=ORG, subject="finance-clerk-7")
    assert actor.role is Role.FINANCE
    assert actor.organization_id == ORG
    assert actor.subject == "finance-clerk-7"


def test_a_minted_token_expires_after_its_ttl() -> None:
    token = mint_token(
        DEVELOPMENT_JWT_SECRET,
        role=Role.STREET,
        organization_id=ORG,
        subject="street-desk",
        audience=AUDIENCE,
        ttl_seconds=900,
    )

    unverified = jwt.decode(token, options={"verify_signature": False})

    assert unverified["exp"] - unverified["iat"] == 900
    assert unverified["aud"] == AUDIENCE


@pytest.mark.parametrize("role", list(Role))
def test_every_role_round_trips(role: Role) -> None:
    token = hs256(role=role.value, sub=f"{role.value}-desk")

    assert development_verifier().verify(token).role is role


# Refusals --------------------------------------------------------------------------------------


def test_an_expired_token_is_refused() -> None:
    now = int(time.time())
    # Well past the verifier's leeway for clock skew.
    token = hs256(iat=now - 3600, exp=now - 300)

    assert "expired" in refusal(development_verifier(), token).lower()


# Tokens verified before ------------------------------------------------------------------------


def test_a_token_verified_once_is_refused_once_it_expires() -> None:
    now = time.time()
    clock = [now]
    verifier = TokenVerifier(AuthSettings(), clock=lambda: clock[0])
    token = hs256(sub="kept-desk", exp=int(now) + 60)
    first = verifier.verify(token)

    clock[0] = now + 60 + 29  # within the leeway for clock skew still
    assert verifier.verify(token) == first
    clock[0] = now + 60 + 31

    assert "expired" in refusal(verifier, token).lower()


def test_a_token_verified_before_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = development_verifier()
    token = hs256(sub="busy-desk")
    first = verifier.verify(token)
    decoded: list[str] = []
    decode = jwt.decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        decoded.append(args[0])
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)

    assert verifier.verify(token) == first
    assert decoded == []
    # Another token of the same caller is a token of its own: its signature is checked.
    assert verifier.verify(hs256(sub="busy-desk", iat=int(time.time()) - 1)) == first
    assert len(decoded) == 1


def test_a_token_like_one_verified_before_but_signed_otherwise_is_refused() -> None:
    verifier = development_verifier()
    token = hs256(sub="kept-desk")
    verifier.verify(token)
    forged = hs256(secret="a-secret-of-32-bytes-or-more-the-ledger-never-had", sub="kept-desk")

    assert "not signed by a key this service trusts" in refusal(verifier, forged)


def test_the_tokens_kept_verified_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_KEPT", 3)
    verifier = development_verifier()
    tokens = [hs256(sub=f"desk-{n}") for n in range(7)]
    for token in tokens:
        verifier.verify(token)

    assert 1 <= len(verifier._verified) <= 3
    assert [verifier.verify(t).subject for t in tokens] == [f"desk-{n}" for n in range(7)]


def test_a_token_for_another_audience_is_refused() -> None:
    token = hs256(aud="some-other-system")

    assert "audience" in refusal(development_verifier(), token).lower()


def test_a_token_without_an_audience_is_refused() -> None:
    token = hs256(aud=None)

    assert "aud" in refusal(development_verifier(), token)


def test_the_configured_audience_is_the_one_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWT_AUDIENCE", "ledger-staging")
    verifier = TokenVerifier(AuthSettings())

    assert verifier.verify(hs256(aud="ledger-staging")).subject == "street-desk"
    assert "audience" in refusal(verifier, hs256()).lower()


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = hs256(OTHER_SECRET)

    assert "not signed by a key this service trusts" in refusal(development_verifier(), token)


def test_an_unsigned_alg_none_token_is_refused() -> None:
    token = jwt.encode(claims(), "", algorithm="none")

    assert "'none'" in refusal(development_verifier(), token)


def test_an_hs256_header_with_its_signature_stripped_is_refused() -> None:
    header, payload, _signature = hs256().split(".")

    message = refusal(development_verifier(), f"{header}.{payload}.")

    assert "not signed by a key this service trusts" in message


@pytest.mark.parametrize("claim", ["exp", "sub", "role", "org"])
def test_a_token_missing_a_required_claim_is_refused(claim: str) -> None:
    missing: dict[str, Any] = {claim: None}
    token = hs256(**missing)

    assert claim in refusal(development_verifier(), token)


def test_a_token_naming_an_unknown_role_is_refused() -> None:
    token = hs256(role="mayor")

    message = refusal(development_verifier(), token)

    assert "role" in message
    assert "street" in message  # it lists the roles there are


@pytest.mark.parametrize("org", ["not-a-uuid", "42", ""])
def test_a_token_whose_org_is_not_a_uuid_is_refused(org: str) -> None:
    token = hs256(org=org)

    assert "UUID" in refusal(development_verifier(), token)


def test_a_token_with_an_empty_subject_is_refused() -> None:
    token = hs256(sub="")

    assert "subject" in refusal(development_verifier(), token)


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "not.a.jwt", "a.b", "Bearer abc", "eyJhbGciOiJIUzI1NiJ9.%%%.%%%"],
)
def test_garbage_that_is_not_a_jwt_is_refused(garbage: str) -> None:
    assert "not a JWT" in refusal(development_verifier(), garbage)


def test_production_does_not_accept_the_public_development_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Public keys configured, secret left at the default: HS256 is not accepted at all."""
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(ec_key()))
    settings = AuthSettings()
    verifier = TokenVerifier(settings)

    message = refusal(verifier, hs256(DEVELOPMENT_JWT_SECRET))

    assert "HS256" in message
    assert settings.uses_development_secret
    assert not settings.can_mint


def test_a_token_hmac_signed_with_the_public_key_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The classic algorithm confusion: HS256 keyed with the (public) PEM of a trusted key."""
    key = rsa_key()
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(key))

    def segment(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = segment({"alg": "HS256", "typ": "JWT"}) + b"." + segment(claims())
    mac = hmac.new(public_pem(key).encode(), signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()

    refusal(TokenVerifier(AuthSettings()), token)


# Public keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("generate", "algorithm"), KEY_TYPES)
def test_tokens_signed_by_either_key_of_a_rotation_bundle_verify(
    monkeypatch: pytest.MonkeyPatch, generate: Callable[[], PrivateKey], algorithm: str
) -> None:
    old, new = generate(), generate()
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(old, new))
    verifier = TokenVerifier(AuthSettings())

    from_old = verifier.verify(signed(old, algorithm, sub="signed-by-old"))
    from_new = verifier.verify(signed(new, algorithm, sub="signed-by-new", org=str(OTHER_ORG)))

    assert from_old == Actor(role=Role.STREET, organization_id=ORG, subject="signed-by-old")
    assert from_new == Actor(role=Role.STREET, organization_id=OTHER_ORG, subject="signed-by-new")


@pytest.mark.parametrize(("generate", "algorithm"), KEY_TYPES)
def test_a_token_signed_by_an_unknown_key_of_the_same_type_is_refused(
    monkeypatch: pytest.MonkeyPatch, generate: Callable[[], PrivateKey], algorithm: str
) -> None:
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(generate(), generate()))
    verifier = TokenVerifier(AuthSettings())

    message = refusal(verifier, signed(generate(), algorithm))

    assert "not signed by a key this service trusts" in message


@pytest.mark.parametrize(("generate", "algorithm"), KEY_TYPES)
def test_public_key_tokens_are_checked_like_any_other(
    monkeypatch: pytest.MonkeyPatch, generate: Callable[[], PrivateKey], algorithm: str
) -> None:
    key = generate()
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(key))
    verifier = TokenVerifier(AuthSettings())
    now = int(time.time())

    assert "expired" in refusal(verifier, signed(key, algorithm, exp=now - 300)).lower()
    assert "audience" in refusal(verifier, signed(key, algorithm, aud="elsewhere")).lower()
    assert "role" in refusal(verifier, signed(key, algorithm, role=None))


def test_a_token_of_an_algorithm_no_configured_key_uses_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(ec_key()))
    verifier = TokenVerifier(AuthSettings())

    assert "RS256" in refusal(verifier, signed(rsa_key(), "RS256"))


def test_a_bundle_mixing_key_types_verifies_each(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [(rsa_key(), "RS256"), (ec_key(), "ES256"), (ed25519_key(), "EdDSA")]
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", "\n".join(public_pem(key) for key, _ in keys))
    verifier = TokenVerifier(AuthSettings())

    for key, algorithm in keys:
        assert verifier.verify(signed(key, algorithm, sub=algorithm)).subject == algorithm


def test_a_p384_key_in_the_bundle_does_not_break_es256_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p256 = ec_key()
    p384 = ec.generate_private_key(ec.SECP384R1())
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(p384, p256))
    verifier = TokenVerifier(AuthSettings())

    assert verifier.verify(signed(p256, "ES256")).subject == "street-desk"
    assert verifier.verify(signed(p384, "ES384", sub="p384")).subject == "p384"


# A secret set on purpose -----------------------------------------------------------------------


def test_a_secret_set_on_purpose_is_accepted_alongside_public_keys() -> None:
    key = ed25519_key()
    settings = AuthSettings(jwt_secret=SecretStr(SECRET), jwt_public_keys=bundle(key))
    verifier = TokenVerifier(settings)

    assert verifier.verify(hs256(SECRET, sub="by-secret")).subject == "by-secret"
    assert verifier.verify(signed(key, "EdDSA", sub="by-key")).subject == "by-key"
    # Only the secret set on purpose: the development one is not trusted by this deployment.
    assert "not signed by a key" in refusal(verifier, hs256(DEVELOPMENT_JWT_SECRET))


def test_a_secret_set_in_the_environment_replaces_the_development_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    verifier = TokenVerifier(AuthSettings())

    assert verifier.verify(hs256(SECRET)).subject == "street-desk"
    refusal(verifier, hs256(DEVELOPMENT_JWT_SECRET))


@pytest.mark.parametrize(
    ("secret", "with_keys", "uses_development_secret", "can_mint"),
    [
        pytest.param(None, False, True, True, id="development"),
        pytest.param(SECRET, False, False, True, id="secret-only"),
        pytest.param(None, True, True, False, id="public-keys-only"),
        pytest.param(SECRET, True, False, True, id="secret-and-public-keys"),
    ],
)
def test_who_may_mint(
    monkeypatch: pytest.MonkeyPatch,
    secret: str | None,
    with_keys: bool,
    uses_development_secret: bool,
    can_mint: bool,
) -> None:
    if secret is not None:
        monkeypatch.setenv("AUTH_JWT_SECRET", secret)
    if with_keys:
        monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(ec_key()))

    settings = AuthSettings()

    assert settings.uses_development_secret is uses_development_secret
    assert settings.can_mint is can_mint


# identify(scope) -------------------------------------------------------------------------------


def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/", "headers": list(headers)}


def bearer(token: str, scheme: str = "Bearer") -> tuple[bytes, bytes]:
    return (b"authorization", f"{scheme} {token}".encode("latin-1"))


def test_identify_names_the_caller_of_a_valid_bearer_token_stably() -> None:
    verifier = development_verifier()
    first, second = hs256(exp=int(time.time()) + 600), hs256(exp=int(time.time()) + 900)
    assert first != second

    caller = verifier.identify(scope((b"accept", b"*/*"), bearer(first)))

    assert isinstance(caller, str)
    assert caller
    # The same caller, whichever of its tokens it sends and however it spells the scheme.
    assert verifier.identify(scope(bearer(first))) == caller
    assert verifier.identify(scope(bearer(second))) == caller
    assert verifier.identify(scope(bearer(first, scheme="bearer"))) == caller
    # Another subject, role or organization is another caller.
    assert verifier.identify(scope(bearer(hs256(sub="someone-else")))) != caller
    assert verifier.identify(scope(bearer(hs256(role="auditor")))) != caller
    assert verifier.identify(scope(bearer(hs256(org=str(OTHER_ORG))))) != caller


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="no-headers"),
        pytest.param([(b"accept", b"*/*")], id="no-authorization"),
        pytest.param([(b"authorization", b"Basic dXNlcjpwYXNz")], id="basic"),
        pytest.param([(b"authorization", b"Bearer")], id="bearer-without-token"),
        pytest.param([(b"authorization", b"Bearer not-a-jwt")], id="garbage"),
        pytest.param([bearer(hs256(OTHER_SECRET))], id="untrusted-secret"),
        pytest.param([bearer(hs256(exp=int(time.time()) - 300))], id="expired"),
        pytest.param([bearer(hs256(role="mayor"))], id="unknown-role"),
    ],
)
def test_identify_is_none_without_a_valid_bearer_token(headers: list[tuple[bytes, bytes]]) -> None:
    assert development_verifier().identify(scope(*headers)) is None


def test_identify_without_a_headers_entry_is_none() -> None:
    assert development_verifier().identify({"type": "http"}) is None


# ServiceToken ----------------------------------------------------------------------------------


class Clock:
    """time.monotonic, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_configured_service_token_is_returned_as_is() -> None:
    service_token = ServiceToken(
        AuthSettings(), ORG, "ledger", configured=SecretStr("configured-token")
    )

    assert service_token() == "configured-token"
    assert service_token() == "configured-token"


def test_a_configured_service_token_needs_no_signing_secret() -> None:
    settings = AuthSettings(jwt_public_keys=bundle(ec_key()))
    service_token = ServiceToken(settings, ORG, "ledger", configured=SecretStr("from-the-idp"))

    assert service_token() == "from-the-idp"


def test_a_minted_service_token_verifies_as_the_service() -> None:
    settings = AuthSettings()

    token = ServiceToken(settings, ORG, "notifier")()

    actor = TokenVerifier(settings).verify(token)
    assert actor == Actor(role=Role.SERVICE, organization_id=ORG, subject="notifier")


def test_a_service_token_minted_with_a_secret_verifies_alongside_public_keys() -> None:
    settings = AuthSettings(jwt_secret=SecretStr(SECRET), jwt_public_keys=bundle(rsa_key()))

    token = ServiceToken(settings, ORG, "catalog")()

    assert TokenVerifier(settings).verify(token).role is Role.SERVICE
    refusal(development_verifier(), token)


def test_a_minted_service_token_is_reused_until_half_its_lifetime_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    # Wall-clock time follows the same clock, so a renewed token differs from the first; it
    # starts 300 s in the past so that both tokens are valid for the real clock PyJWT reads.
    origin = time.time() - 300
    monkeypatch.setattr("services.common.auth.time.monotonic", clock)
    monkeypatch.setattr("services.common.auth.time.time", lambda: origin + clock.now - 1000.0)
    minted: list[str] = []
    real_mint = auth.mint_token

    def counting_mint(*args: Any, **kwargs: Any) -> str:
        minted.append(real_mint(*args, **kwargs))
        return minted[-1]

    monkeypatch.setattr(auth, "mint_token", counting_mint)
    settings = AuthSettings(token_ttl_seconds=600)
    service_token = ServiceToken(settings, ORG, "ledger")

    first = service_token()
    clock.now += 150
    assert service_token() == first
    clock.now += 149.5  # 299.5 s: not yet half of 600
    assert service_token() == first
    assert len(minted) == 1

    clock.now += 0.5  # 300 s: half its lifetime
    renewed = service_token()

    assert len(minted) == 2
    assert renewed != first
    assert TokenVerifier(settings).verify(renewed).role is Role.SERVICE
    clock.now += 100
    assert service_token() == renewed
    assert len(minted) == 2


def test_a_service_token_that_cannot_be_minted_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(ec_key()))
    service_token = ServiceToken(AuthSettings(), ORG, "ledger")

    with pytest.raises(RuntimeError, match="AUTH_JWT_SECRET"):
        service_token()


# The FastAPI dependency ------------------------------------------------------------------------


def whoami_app(settings: AuthSettings) -> FastAPI:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(actor: CurrentActor) -> dict[str, str]:
        return {
            "role": actor.role.value,
            "organization_id": str(actor.organization_id),
            "subject": actor.subject,
        }

    install_token_verifier(app, settings)
    install_problem_handlers(app)
    return app


async def get_whoami(
    headers: dict[str, str] | None = None, settings: AuthSettings | None = None
) -> httpx.Response:
    app = whoami_app(settings or AuthSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get("/whoami", headers=headers)


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == 401
    assert problem["title"] == "Not authenticated"
    assert problem["instance"] == "/whoami"
    return problem


@pytest.mark.asyncio
async def test_a_request_without_a_token_is_401_with_a_bearer_challenge() -> None:
    response = await get_whoami()

    problem = assert_unauthorized(response)
    assert "Authorization: Bearer" in problem["detail"]
    assert "invalid_token" not in response.headers["www-authenticate"]


@pytest.mark.asyncio
async def test_a_request_with_another_scheme_is_401() -> None:
    response = await get_whoami({"Authorization": "Basic dXNlcjpwYXNz"})

    assert_unauthorized(response)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        # Minted when the test runs, not when it is collected: a long suite would otherwise
        # outlive the tokens' ten minutes, and every one would fail as expired.
        pytest.param(lambda: "not-a-jwt", "not a JWT", id="garbage"),
        pytest.param(lambda: hs256(OTHER_SECRET), "not signed by a key", id="untrusted"),
        pytest.param(lambda: hs256(exp=int(time.time()) - 300), "expired", id="expired"),
        pytest.param(lambda: hs256(role="mayor"), "role", id="unknown-role"),
    ],
)
@pytest.mark.asyncio
async def test_a_request_with_a_bad_token_is_401_saying_why(
    token: Callable[[], str], reason: str
) -> None:
    response = await get_whoami({"Authorization": f"Bearer {token()}"})

    problem = assert_unauthorized(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert reason in problem["detail"]


@pytest.mark.asyncio
async def test_a_request_with_a_good_token_reaches_the_endpoint_as_its_actor() -> None:
    token = hs256(role="auditor", sub="auditor-3", org=str(OTHER_ORG))

    response = await get_whoami({"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "role": "auditor",
        "organization_id": str(OTHER_ORG),
        "subject": "auditor-3",
    }


@pytest.mark.asyncio
async def test_the_endpoint_accepts_public_key_tokens_and_refuses_the_development_secret() -> None:
    key = ec_key()
    settings = AuthSettings(jwt_public_keys=bundle(key))

    good = await get_whoami({"Authorization": f"Bearer {signed(key, 'ES256')}"}, settings)
    development = await get_whoami({"Authorization": f"Bearer {hs256()}"}, settings)

    assert good.status_code == 200, good.text
    assert good.json()["subject"] == "street-desk"
    assert "HS256" in assert_unauthorized(development)["detail"]


def test_the_development_secret_is_named_as_such() -> None:
    assert AuthSettings().development_secrets() == ["AUTH_JWT_SECRET"]


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(lambda: AuthSettings(jwt_secret=SecretStr(SECRET)), id="secret"),
        pytest.param(lambda: AuthSettings(jwt_public_keys=bundle(ec_key())), id="public-keys"),
        pytest.param(
            lambda: AuthSettings(jwt_secret=SecretStr(SECRET), jwt_public_keys=bundle(ec_key())),
            id="secret-and-public-keys",
        ),
    ],
)
def test_a_deployment_configuration_holds_no_development_secret(
    settings: Callable[[], AuthSettings],
) -> None:
    assert settings().development_secrets() == []


# The CLI ---------------------------------------------------------------------------------------


def test_the_cli_prints_one_token_naming_the_actor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--role", "street", "--org", str(ORG)]) == 0

    out, err = capsys.readouterr()
    [token] = out.splitlines()
    assert err == ""
    actor = development_verifier().verify(token)
    assert actor == Actor(role=Role.STREET, organization_id=ORG, subject="street-desk")


def test_the_cli_takes_a_subject_and_a_ttl(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--role", "provider", "--org", str(ORG), "--subject", "org-7", "--ttl", "120"]) == 0
    )

    [token] = capsys.readouterr().out.splitlines()
    assert development_verifier().verify(token).subject == "org-7"
    unverified = jwt.decode(token, options={"verify_signature": False})
    assert unverified["exp"] - unverified["iat"] == 120


def test_the_cli_signs_with_the_configured_secret_and_audience(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("AUTH_JWT_AUDIENCE", "ledger-staging")
    org = uuid4()

    assert main(["--role", "auditor", "--org", str(org)]) == 0

    [token] = capsys.readouterr().out.splitlines()
    assert TokenVerifier(AuthSettings()).verify(token).organization_id == org
    default_audience = AuthSettings(jwt_secret=SecretStr(SECRET), jwt_audience=AUDIENCE)
    assert "audience" in refusal(TokenVerifier(default_audience), token).lower()


def test_the_cli_mints_with_a_secret_set_alongside_public_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(ec_key()))

    assert main(["--role", "street", "--org", str(ORG)]) == 0

    [token] = capsys.readouterr().out.splitlines()
    assert TokenVerifier(AuthSettings()).verify(token).role is Role.STREET


def test_the_cli_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--role", "mayor", "--org", str(ORG)])

    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "--role" in err
    assert "invalid choice" in err


def test_the_cli_refuses_an_org_that_is_not_a_uuid(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--role", "street", "--org", "not-a-uuid"])

    assert exited.value.code == 2
    assert "--org" in capsys.readouterr().err


def test_the_cli_will_not_mint_with_public_keys_and_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_PUBLIC_KEYS", bundle(ec_key()))

    assert main(["--role", "street", "--org", str(ORG)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "AUTH_JWT_PUBLIC_KEYS" in err
    assert "AUTH_JWT_SECRET" in err
