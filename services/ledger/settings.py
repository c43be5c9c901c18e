"""The ledger's settings, from LEDGER_* environment variables."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.ledger.audit.ocid import DEFAULT_OCID_PREFIX, check_prefix
from services.ledger.audit.signing import load_signing_key
from services.ledger.store.config import IDLE_IN_TRANSACTION_SECONDS

# Only for development: deployments set LEDGER_BENEFICIARY_KEY to a secret of their own.
DEVELOPMENT_BENEFICIARY_KEY = "development-only-beneficiary-key"
DEVELOPMENT_SEALING_KEY = "development-only-sealing-key"
# The base64 seed of an Ed25519 key: SHA-256 of "community-ledger development-only checkpoint key".
DEVELOPMENT_CHECKPOINT_KEY = "N9XvunSr1U85lqW/wo9zj+yU5gGhsiziPbEBvDnGb4Y="


class LedgerSettings(ServiceSettings):
    """LEDGER_HOST, LEDGER_PORT, LEDGER_DATABASE_URL, LEDGER_CATALOG_URL, …"""

    model_config = SettingsConfigDict(
        env_prefix="LEDGER_", extra="ignore", hide_input_in_errors=True
    )

    port: int = 8002
    database_url: str = "sqlite:///data/ledger.sqlite3"
    # On PostgreSQL, a transaction idle this long ends its session (0: never).
    database_idle_in_transaction_seconds: int = Field(
        default=IDLE_IN_TRANSACTION_SECONDS, ge=0, le=86_400
    )
    beneficiary_key: SecretStr = SecretStr(DEVELOPMENT_BENEFICIARY_KEY)
    # Seals applicants' prices until a project's period closes; keep it secret and unchanged,
    # or sealed prices recorded under the old key can no longer be disclosed.
    sealing_key: SecretStr = SecretStr(DEVELOPMENT_SEALING_KEY)
    catalog_url: str = "http://127.0.0.1:8001"
    catalog_timeout_seconds: float = 5.0
    catalog_attempts: int = 3
    # A service-role token for calling the catalog; unset, the ledger mints its own with
    # AUTH_JWT_SECRET, which only works where that secret is shared.
    catalog_token: SecretStr | None = None
    # OCDS ids of purchase processes: `ocds-` and a prefix registered with OCDS, then the id.
    ocid_prefix: str = DEFAULT_OCID_PREFIX
    # Signs the verifiable log's checkpoints (Ed25519): a PEM private key, or the base64 of a
    # 32-byte seed. Keep it: checkpoints signed with an earlier key no longer verify here.
    checkpoint_key: SecretStr = SecretStr(DEVELOPMENT_CHECKPOINT_KEY)
    # A checkpoint is taken once this many entries, or entries this old, wait for one.
    checkpoint_every_entries: int = Field(default=1000, ge=1, le=1_000_000)
    checkpoint_every_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # Writes arriving together are committed in one transaction; under load the committer
    # waits up to this long for more. 0 commits every write alone.
    group_commit_ms: float = Field(default=2.0, ge=0, le=100)
    # Aggregates kept in memory between requests, brought up to date from their newer events
    # on each use rather than replayed whole. 0 keeps none.
    aggregate_cache_size: int = Field(default=500, ge=0, le=100_000)
    # Reads that build their whole answer in memory (a budget's whole flow, as JSON or CSV, or
    # replayed; a reconciliation) at once; more wait up to the given seconds, then get a 503.
    # Each holds memory in proportion to the largest budget: about 3 kB a flow node.
    large_reads: int = Field(default=2, ge=1, le=64)
    # Flow answers, and the parts of whole flows below contracts and grants, kept in memory
    # between reads, in MiB: a whole flow of 50,000 nodes is about 25, and its parts as much
    # again (counted twice, though an answer joined from parts shares their bytes). 0: none.
    flow_answers_mib: int = Field(default=128, ge=0, le=16_384)
    large_read_wait_seconds: float = Field(default=10.0, ge=0, le=600)

    @field_validator("checkpoint_key")
    @classmethod
    def _ed25519_key(cls, key: SecretStr) -> SecretStr:
        load_signing_key(key.get_secret_value())  # its errors never quote the key
        return key

    @field_validator("catalog_url")
    @classmethod
    def _plain_http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"LEDGER_CATALOG_URL must be an http(s) URL with a host, not {url!r}")
        if parts.username or parts.password:
            # Credentials in a URL end up in logs; the ledger authenticates with a token.
            raise ValueError("LEDGER_CATALOG_URL must not carry credentials; use a token")
        return url.rstrip("/")

    @field_validator("ocid_prefix")
    @classmethod
    def _registered_form(cls, prefix: str) -> str:
        check_prefix(prefix)
        return prefix
