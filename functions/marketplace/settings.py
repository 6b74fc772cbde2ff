"""Marketplace configuration: endpoints, credentials, sync tuning, read per invocation.

Reading is cheap (``from_env`` over a few variables, secrets cached 300 s by Powertools),
so nothing here is cached: a rotated secret or a changed variable takes effect at once,
and clients are cached per container *by their configuration* (see ``spapi``/``slack``).

Endpoints. ``SPAPI_ENVIRONMENT`` (production | sandbox) and ``SPAPI_REGION`` (na | eu | fe)
select Amazon's endpoint; ``SPAPI_ENDPOINT`` overrides it (the simulator). Whenever the
endpoint is an ``amazon.com`` host, Amazon's own LWA URL and the published rates apply,
whatever ``LWA_TOKEN_URL``/``SPAPI_RATE_SCALE`` say: a simulator setting left in the
environment can never point real credentials elsewhere or speed up calls to Amazon.

Credentials. ``SPAPI_CLIENT_ID``/``SPAPI_CLIENT_SECRET``/``SPAPI_REFRESH_TOKEN`` (local) win
when all three are set; otherwise the catalog secret ``marketplace-spapi`` (JSON with
``client_id``, ``client_secret``, ``refresh_token``: LWA client secrets rotate every 180
days, so they live in Secrets Manager). Neither → ``NotConfigured`` (503) naming what is
missing. The Slack webhook URL (a credential too) is ``SLACK_WEBHOOK_URL`` or the
``marketplace-slack`` secret's ``webhook_url``; without one, notifications wait in the outbox.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from opsdeck.errors import NotConfigured
from opsdeck.settings import catalog_secret, from_env

SPAPI_CATALOG_NAME = "marketplace-spapi"
SLACK_CATALOG_NAME = "marketplace-slack"
AMAZON_LWA_URL = "https://api.amazon.com/auth/o2/token"
ENDPOINTS = {
    "production": {
        "na": "https://sellingpartnerapi-na.amazon.com",
        "eu": "https://sellingpartnerapi-eu.amazon.com",
        "fe": "https://sellingpartnerapi-fe.amazon.com",
    },
    "sandbox": {
        "na": "https://sandbox.sellingpartnerapi-na.amazon.com",
        "eu": "https://sandbox.sellingpartnerapi-eu.amazon.com",
        "fe": "https://sandbox.sellingpartnerapi-fe.amazon.com",
    },
}
#: the role a JWT needs for write endpoints (POST /marketplace/orders/sync)
OPERATOR_ROLE = "marketplace-operator"


class MarketplaceSettings(BaseModel):
    """Every knob of the capability, from the environment (see docs/marketplace.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # Amazon SP-API
    spapi_environment: Literal["production", "sandbox"] = "production"
    spapi_region: Literal["na", "eu", "fe"] = "na"
    spapi_endpoint: str | None = None
    lwa_token_url: str | None = None
    spapi_client_id: SecretStr | None = None
    spapi_client_secret: SecretStr | None = None
    spapi_refresh_token: SecretStr | None = None
    spapi_marketplace_id: str = "ATVPDKIKX0DER"
    #: Orders API version: v0 (getOrders + getOrderItems) or 2026-01-01 (searchOrders, items embedded)
    spapi_orders_api: Literal["v0", "2026-01-01"] = "v0"
    #: the static sandbox answers canned cases only: the orders sync asks for this one there
    spapi_sandbox_test_case: str = "TEST_CASE_200"
    spapi_page_size: int = Field(100, ge=1, le=100)
    #: client-side token buckets at the published rates (off: only for a simulator without limits)
    spapi_rate_limit: bool = True
    #: simulators with a time-scale knob refill their quotas this many times faster (never Amazon)
    spapi_rate_scale: float = Field(1.0, gt=0, le=10_000)
    #: pace this fraction below the published/advertised rate (network jitter must not tip us over)
    spapi_rate_margin: float = Field(0.02, ge=0, lt=0.5)
    # Orders sync
    #: re-read this much before the watermark (late-arriving updates); duplicates are skipped
    sync_overlap_s: int = Field(300, ge=0, le=86_400)
    #: CreatedBefore/LastUpdatedBefore must be >= 2 minutes before now (Amazon); keep a margin
    sync_lag_s: int = Field(150, ge=120, le=3600)
    sync_initial_lookback_s: int = Field(86_400, ge=60, le=60 * 86_400)
    #: longest window one run reads (a backlog is caught up over several runs)
    sync_max_window_s: int = Field(86_400, ge=300, le=30 * 86_400)
    #: POST /orders/sync works inline this long, then answers 202 (API Gateway stops at 29 s)
    sync_api_deadline_s: float = Field(20.0, gt=0, le=25)
    #: health reports "degraded" when the last successful orders sync is older than this
    sync_stale_after_s: int = Field(3600, ge=60)
    # Inventory sync
    inventory_overlap_s: int = Field(600, ge=0, le=86_400)
    # Slack
    slack_webhook_url: SecretStr | None = None
    #: more pending notifications than this at once → one digest message instead of one each
    slack_digest_threshold: int = Field(3, ge=1, le=100)
    slack_rate_per_s: float = Field(1.0, gt=0, le=10)
    #: a message Slack itself refuses (invalid_payload, 4xx) is given up after this many tries
    slack_max_attempts: int = Field(5, ge=1, le=1000)

    # ----------------------------------------------------------------- derived

    @property
    def endpoint(self) -> str:
        return (self.spapi_endpoint or ENDPOINTS[self.spapi_environment][self.spapi_region]).rstrip("/")

    @property
    def talks_to_amazon(self) -> bool:
        host = urlsplit(self.endpoint).hostname or ""
        return host == "amazon.com" or host.endswith(".amazon.com")

    @property
    def sandbox(self) -> bool:
        """Static-sandbox semantics: canned responses by pattern (Amazon's, or the simulator's)."""
        return self.spapi_environment == "sandbox"

    @property
    def token_url(self) -> str:
        if self.talks_to_amazon or not self.lwa_token_url:
            return AMAZON_LWA_URL
        return self.lwa_token_url

    @property
    def rate_scale(self) -> float:
        return 1.0 if self.talks_to_amazon else self.spapi_rate_scale


def load() -> MarketplaceSettings:
    return from_env(MarketplaceSettings)


@dataclass(frozen=True, slots=True)
class LwaCredentials:
    client_id: str
    client_secret: str
    refresh_token: str

    def __repr__(self) -> str:  # never print secrets
        return f"LwaCredentials(client_id={self.client_id[:12]!r}…)"

    @property
    def fingerprint(self) -> str:
        """Stable, non-reversible id of this seller authorisation (keys rate-limit buckets)."""
        digest = hashlib.sha256(f"{self.client_id}\0{self.refresh_token}".encode()).hexdigest()
        return digest[:16]


_ENV_NAMES = ("SPAPI_CLIENT_ID", "SPAPI_CLIENT_SECRET", "SPAPI_REFRESH_TOKEN")
_SECRET_KEYS = ("client_id", "client_secret", "refresh_token")


def credentials(settings: MarketplaceSettings) -> LwaCredentials:
    """The LWA credentials, or ``NotConfigured`` (503) saying exactly what is missing."""
    values = (settings.spapi_client_id, settings.spapi_client_secret, settings.spapi_refresh_token)
    if all(values):
        return LwaCredentials(*(v.get_secret_value() for v in values))  # type: ignore[union-attr]
    secret = catalog_secret(SPAPI_CATALOG_NAME)
    if secret is not None:
        missing = [k for k in _SECRET_KEYS if not secret.get(k)]
        if missing:
            raise NotConfigured(
                f"Missing SP-API credentials: the {SPAPI_CATALOG_NAME} secret lacks {', '.join(missing)}"
            )
        return LwaCredentials(*(str(secret[k]) for k in _SECRET_KEYS))
    missing = [name for name, v in zip(_ENV_NAMES, values, strict=True) if not v]
    raise NotConfigured(
        f"Missing SP-API credentials: set {', '.join(missing)} "
        f"(on AWS: the {SPAPI_CATALOG_NAME} secret with {', '.join(_SECRET_KEYS)})"
    )


def slack_webhook_url(settings: MarketplaceSettings) -> str | None:
    """The incoming-webhook URL, or None when Slack is not configured (messages wait)."""
    if settings.slack_webhook_url is not None:
        return settings.slack_webhook_url.get_secret_value()
    secret = catalog_secret(SLACK_CATALOG_NAME)
    if secret is None:
        return None
    url = secret.get("webhook_url") or secret.get("value")
    return str(url) if url else None
