"""The notifier's settings, from NOTIFIER_* environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

# Only for development: deployments set NOTIFIER_ENCRYPTION_KEY to a secret of their own.
DEVELOPMENT_ENCRYPTION_KEY = "development-only-notifier-encryption-key"
# Roughly the Standard Webhooks schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


class NotifierSettings(ServiceSettings):
    """NOTIFIER_HOST, NOTIFIER_PORT, NOTIFIER_DATABASE_URL, NOTIFIER_LEDGER_URL, …"""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_", extra="ignore", hide_input_in_errors=True
    )

    port: int = 8003
    database_url: str = "sqlite:///data/notifier.sqlite3"
    migrate_on_start: bool = True
    ledger_url: str = "http://127.0.0.1:8002"
    catalog_url: str = "http://127.0.0.1:8001"
    # A service-role token for reading the feeds; unset, the notifier mints its own with
    # AUTH_JWT_SECRET, which only works where that secret is shared.
    feed_token: SecretStr | None = None
    # Encrypts subscriptions' signing secrets at rest; keep it secret and unchanged.
    encryption_key: SecretStr = SecretStr(DEVELOPMENT_ENCRYPTION_KEY)
    # Follow the feeds and deliver; off, the service only answers its API (e.g. a replica
    # kept for reads, or tests of the API alone).
    worker: bool = True
    # How long an idle worker waits before reading the feeds again: the most an event waits
    # to be seen after a quiet spell. Each read is one request to the ledger and one to the
    # catalog; a busy worker reads again as soon as it has delivered.
    poll_interval_seconds: float = Field(default=0.25, gt=0)
    feed_page_size: int = Field(default=200, ge=1, le=1000)
    # How long one process holds the right to follow and deliver before renewing it.
    lease_seconds: float = Field(default=15.0, gt=0)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    delivery_concurrency: int = Field(default=16, ge=1)
    retry_schedule_seconds: tuple[int, ...] = DEFAULT_SCHEDULE
    retry_jitter: float = Field(default=0.2, ge=0, le=1)
    # A subscription failing without a single success for this long is disabled.
    disable_after_seconds: int = Field(default=5 * 24 * 3600, ge=1)
    # After a rotation, the previous secret signs too for this long.
    secret_overlap_seconds: int = Field(default=24 * 3600, ge=0)
    # Targets allowed even on private, loopback or link-local addresses: host names or
    # networks (CIDR), comma-separated, e.g. "127.0.0.1/32,receiver.internal".
    allowed_targets: str = ""
    # Alerts: an allocation or budget crossing this share of its money committed.
    committed_share_alert: float = Field(default=0.9, gt=0, le=1)

    @field_validator("retry_schedule_seconds")
    @classmethod
    def _a_schedule(cls, schedule: tuple[int, ...]) -> tuple[int, ...]:
        if not schedule or any(delay < 0 for delay in schedule):
            raise ValueError("the retry schedule needs at least one delay, none negative")
        return schedule
