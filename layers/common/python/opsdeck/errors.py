"""Domain exceptions and their HTTP meaning, declared in one place.

Every error that leaves an HTTP function is an RFC 9457 problem document
(``application/problem+json``) whose ``type`` is stable: clients may switch on it.
Code raises these exceptions; ``opsdeck.api`` renders them. Nothing here imports
a web framework, so queue and scheduled functions can raise them too.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

PROBLEM_BASE = "https://opsdeck.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class OpsdeckError(Exception):
    """Base of every expected failure. Subclasses fix status, type slug and title."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def headers(self) -> dict[str, str]:
        return {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        return problem(self.status, self.slug, self.title, self.detail, instance=instance, **self.extra)


class InvalidInput(OpsdeckError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class Unauthorized(OpsdeckError):
    """No credentials, or credentials that do not verify (401)."""

    status, slug, title = 401, "unauthorized", "Authentication required"

    def headers(self) -> dict[str, str]:
        return {"www-authenticate": 'Bearer error="invalid_token"'}


class MissingCredentials(Unauthorized):
    """No credentials at all (401): RFC 6750 §3.1, the challenge carries no error code."""

    def headers(self) -> dict[str, str]:
        return {"www-authenticate": "Bearer"}


class Forbidden(OpsdeckError):
    """Valid credentials without the required role (403)."""

    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(OpsdeckError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(OpsdeckError):
    status, slug, title = 409, "conflict", "Conflict"


class RateLimited(OpsdeckError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after_s: float | None = None, **extra: Any):
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"retry-after": str(max(1, math.ceil(self.retry_after_s)))}


class UpstreamError(OpsdeckError):
    """An upstream service (SP-API, Apify, Slack, …) failed or answered garbage (502)."""

    status, slug, title = 502, "upstream-error", "Upstream service failed"


class NotConfigured(OpsdeckError):
    """A capability is deployed without the configuration it needs (503)."""

    status, slug, title = 503, "not-configured", "Service not configured"


class ConfigError(OpsdeckError):
    """Bad or missing platform configuration: one line naming what is wrong."""

    status, slug, title = 503, "config-error", "Configuration error"


class Unavailable(OpsdeckError):
    """A dependency (database, cache) cannot be reached right now (503)."""

    status, slug, title = 503, "unavailable", "Dependency unavailable"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a problem document. ``extra`` members are added as extension members."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update((k, v) for k, v in extra.items() if k not in _STANDARD_MEMBERS)
    return body


_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


# Problem slugs for statuses produced by the framework itself (routing, validation).
STATUS_SLUGS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-input", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal", "Internal error"),
    502: ("upstream-error", "Upstream service failed"),
    503: ("unavailable", "Dependency unavailable"),
}


def status_problem(status: int, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    slug, title = STATUS_SLUGS.get(status, ("http-" + str(status), "HTTP error"))
    return problem(status, slug, title, detail, **extra)
