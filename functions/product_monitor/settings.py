"""product_monitor configuration, from the environment (read per invocation: cheap).

Apify. ``APIFY_API_URL`` (default ``https://api.apify.com``) is the ONE host the client talks
to: it must be an ``https`` URL on ``apify.com`` (the real API) or a loopback ``http`` URL (the
simulator); anything else is refused at configuration time (seed §8: SSRF protection, only
Apify's domain). The token is ``APIFY_TOKEN`` (local) or the catalog secret
``product-monitor-apify`` (``{"token": ...}``). Neither → ``NotConfigured`` (503).
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from opsdeck.errors import ConfigError, NotConfigured
from opsdeck.settings import catalog_secret, from_env

APIFY_SECRET = "product-monitor-apify"  # noqa: S105 - a secret's name
VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
READ_ROLES = (VIEWER, OPERATOR, ADMIN)
WRITE_ROLES = (OPERATOR, ADMIN)
ADMIN_ROLES = (ADMIN,)


class MonitorSettings(BaseModel):
    """Every knob of the capability (docs/product_monitor.md, "Configuration")."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # Apify
    apify_api_url: str = "https://api.apify.com"
    apify_token: SecretStr | None = None
    #: the product-details actor (``username~actor-name`` or its id)
    apify_actor: str = "junglee~amazon-crawler"
    #: the reviews actor (one item per review); empty = no reviews fetched
    apify_reviews_actor: str = "junglee~amazon-reviews-scraper"
    #: reviews asked per ASIN (Amazon serves ~10 a page; what the summary is computed over)
    apify_reviews_per_asin: int = Field(10, ge=1, le=100)
    #: which reviews: the most recent (what changes day to day) or the most helpful
    apify_reviews_sort: Literal["recent", "helpful"] = "recent"
    #: async (cost known: ``usageTotalUsd``) or sync (run-sync-get-dataset-items; 408 → async)
    apify_run_mode: Literal["async", "sync"] = "async"
    #: shared token bucket: Apify API calls per second across every worker, and burst
    apify_rate_per_s: float = Field(2.0, gt=0, le=1000)
    apify_burst: int = Field(4, ge=1, le=1000)
    #: after a 429 the shared pace is halved, down to this fraction of apify_rate_per_s
    apify_min_rate_fraction: float = Field(0.1, gt=0, le=1)
    apify_poll_wait_s: int = Field(30, ge=0, le=60)
    apify_run_timeout_s: int = Field(480, ge=10, le=3600)
    apify_page_size: int = Field(250, ge=1, le=1000)
    amazon_domain: str = "amazon.com"
    # Planner
    batch_size: int = Field(100, ge=50, le=100)
    #: a health sample (every 6 h) fetches this fraction of the tracked ASINs (at least one batch)
    health_sample_fraction: float = Field(0.1, gt=0, le=1)
    # Anomaly thresholds (percent / stars)
    price_drop_pct: Decimal = Field(Decimal("10"), gt=0, le=100)
    price_spike_pct: Decimal = Field(Decimal("15"), gt=0, le=1000)
    rating_drop: Decimal = Field(Decimal("0.2"), gt=0, le=5)
    bsr_jump_pct: Decimal = Field(Decimal("50"), gt=0, le=100_000)
    #: recommendation "address_review_themes": share of 1-2 star reviews among those read, over
    #: at least ``review_min_read`` reviews
    review_low_share: Decimal = Field(Decimal("0.2"), gt=0, le=1)
    review_min_read: int = Field(5, ge=1, le=100)
    # Recommendations: an LLM plug-in (``module:function``); empty = rule-based only
    recommendation_llm: str = ""
    # API
    #: 128 KiB: POST /v1/ingest-runs with its 5,000 ASINs fits (API Gateway's own limit is 10 MB)
    max_body_bytes: int = Field(128 * 1024, ge=256, le=1024 * 1024)
    max_tracked_per_request: int = Field(500, ge=1, le=5000)

    @property
    def apify_base(self) -> str:
        return checked_base_url(self.apify_api_url)


def checked_base_url(url: str) -> str:
    """``url`` when it is Apify's (https, ``apify.com``) or a loopback simulator; else ConfigError."""
    parts = urlsplit(url.rstrip("/"))
    host = (parts.hostname or "").lower()
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("APIFY_API_URL must be a bare origin (no credentials, query or fragment)")
    if parts.scheme == "https" and (host == "apify.com" or host.endswith(".apify.com")):
        return f"https://{parts.netloc}"
    if parts.scheme == "http" and _loopback(host):
        return f"http://{parts.netloc}{parts.path}"
    raise ConfigError(
        "APIFY_API_URL must be https://…apify.com (or a loopback simulator), "
        f"not {parts.scheme}://{host or '?'}"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load() -> MonitorSettings:
    return from_env(MonitorSettings)


def apify_token(settings: MonitorSettings) -> str:
    if settings.apify_token is not None:
        return settings.apify_token.get_secret_value()
    secret = catalog_secret(APIFY_SECRET)
    if secret is not None and (secret.get("token") or secret.get("value")):
        return str(secret.get("token") or secret.get("value"))
    raise NotConfigured(
        f"Missing Apify token: set APIFY_TOKEN (on AWS: the {APIFY_SECRET} secret, key token)"
    )
