"""Who is calling: JWT verification and role checks for HTTP functions.

Two ways in, one ``Principal`` out:

* ``gateway`` — the route sits behind API Gateway's JWT authorizer, which has already
  verified the token; its claims arrive in ``requestContext.authorizer.jwt`` (array
  claims flattened to ``"[A B]"`` strings) and are trusted as they are.
* ``bearer`` — the function verifies ``Authorization: Bearer <jwt>`` itself (``verify``):
  the header's ``alg`` must be allowed by ``JWT_ALGORITHMS`` *and* have a key source —
  ``JWT_JWKS_URL`` for RS/PS/ES algorithms, an HS256 secret (the local dev issuer, see
  ``issue_dev_token``) for HS256 — so no token can pick its own verification method
  (``alg: none``, RS/HS confusion). ``iss``, ``aud``, ``exp`` and ``sub`` are required.

PyJWT + cryptography cost ~85 ms of import, so ``jwt`` is imported inside functions:
importing this module (done at module level by every HTTP handler) stays cheap. One
``PyJWKClient`` per container caches the JWKS; an unknown ``kid`` refetches it at most
once per ``JWKS_REFETCH_INTERVAL_S`` so forged ``kid`` values cannot turn us into a
request amplifier against the issuer. Every failure is ``Unauthorized`` (401) with a
short reason, a missing role is ``Forbidden`` (403); tokens never appear in messages
or logs.

A verified token is remembered per container for at most ``VERIFIED_TTL_S`` (and never
past its ``exp``): a client repeating its token skips signature and claim checks (~170 µs
on the reference VM), as API Gateway's authorizer cache does. Only a token that verified
is remembered, under the exact token text and the settings it verified against, so a
changed or forged token is always verified in full.

A function that is its own issuer (snacks signs its tokens with keys from Secrets Manager)
passes a ``KeyProvider`` to ``verify``: its issuer, audience, asymmetric algorithms and a
``kid`` → public key lookup replace the platform's ``JWT_*`` settings for that call, with the
same header checks, claim checks and verified-token memory — no HTTP call to its own JWKS.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ConfigError, Forbidden, MissingCredentials, Unauthorized
from .observability import logger
from .openapi import BEARER, raises
from .settings import PlatformSettings, platform, secret

JWKS_REFETCH_INTERVAL_S = 60.0
VERIFIED_TTL_S = 60.0
VERIFIED_MAX = 256
JWKS_TIMEOUT_S = 3.0
MAX_TOKEN_LENGTH = 16 * 1024
MIN_HS256_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key is at least 256 bits
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
# Asymmetric algorithms verified with JWKS keys, by the JWK ``kty`` they need.
_JWKS_KTY = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
    **dict.fromkeys(("ES256", "ES384", "ES512"), "EC"),
}
_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``claims`` is read-only and kept out of ``repr`` (PII)."""

    subject: str
    roles: frozenset[str]
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(repr=False, compare=False)
    source: Literal["gateway", "bearer"]

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))

    def has_roles(self, *roles: str, any_of: bool = False) -> bool:
        """All of ``roles`` (or, with ``any_of``, at least one); true when none are asked."""
        if not roles:
            return True
        check = any if any_of else all
        return check(role in self.roles for role in roles)


# ---------------------------------------------------------------------- claims


def claim_values(value: Any) -> frozenset[str]:
    """A multi-valued claim as a set: list, ``"a b"``/``"a,b"``, JSON or API Gateway's ``"[a b]"``."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return claim_values(parsed)
            text = text[1:-1]
        return frozenset(v for v in _SPLIT.split(text) if v)
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return frozenset(s for v in value if isinstance(v, str) and (s := v.strip()))
    return frozenset()


def principal_from_claims(
    claims: Mapping[str, Any],
    source: Literal["gateway", "bearer"],
    *,
    scopes: Iterable[str] = (),
) -> Principal:
    """Roles from ``JWT_ROLES_CLAIM`` and ``cognito:groups``; scopes from ``scope``/``scp``."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("missing claim: sub")
    roles_claim = platform().jwt_roles_claim
    return Principal(
        subject=subject,
        roles=claim_values(claims.get(roles_claim)) | claim_values(claims.get("cognito:groups")),
        scopes=claim_values(claims.get("scope")) | claim_values(claims.get("scp")) | claim_values(scopes),
        claims=claims,
        source=source,
    )


def principal_from_event(event: Mapping[str, Any]) -> Principal | None:
    """The principal API Gateway's JWT authorizer already verified, or ``None`` without one."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    jwt_ctx = authorizer.get("jwt") if isinstance(authorizer, Mapping) else None
    claims = jwt_ctx.get("claims") if isinstance(jwt_ctx, Mapping) else None
    if not isinstance(claims, Mapping):
        return None
    return principal_from_claims(claims, "gateway", scopes=claim_values(jwt_ctx.get("scopes")))


# --------------------------------------------------------------- verification


@dataclass(frozen=True, eq=False)
class KeyProvider:
    """An in-process issuer's verification settings: ``key(kid)`` → public key or ``None``.

    ``key`` returns a ``cryptography`` public key (or a ``PyJWK``) for a known ``kid`` and
    ``None`` for an unknown one; ``algorithms`` must be asymmetric (RS/PS/ES). Tokens must carry
    ``exp``, ``iss``, ``aud``, ``sub`` and ``kid``, like JWKS-verified ones.
    """

    issuer: str
    audience: str
    algorithms: frozenset[str]
    key: Callable[[str], Any] = field(repr=False)
    leeway_s: int = 30

    def __post_init__(self) -> None:
        bad = set(self.algorithms) - _JWKS_KTY.keys()
        if not self.algorithms or bad:
            raise ConfigError(f"KeyProvider algorithms must be asymmetric, got {sorted(self.algorithms)}")


def _required(value: str | None, env_var: str) -> str:
    if not value:
        raise ConfigError(f"environment variable {env_var} is not set")
    return value


def _has_hs256_secret(settings: PlatformSettings) -> bool:
    return settings.jwt_hs256_secret is not None or bool(settings.jwt_hs256_secret_id)


def _hs256_secret(settings: PlatformSettings) -> bytes:
    if settings.jwt_hs256_secret is not None:
        value, source = settings.jwt_hs256_secret.get_secret_value(), "JWT_HS256_SECRET"
    elif settings.jwt_hs256_secret_id:
        source = f"secret {settings.jwt_hs256_secret_id!r}"
        try:
            value = secret(settings.jwt_hs256_secret_id)["value"]
        except KeyError:
            raise ConfigError(f"{source} has no 'value' member") from None
    else:
        raise ConfigError("environment variable JWT_HS256_SECRET or JWT_HS256_SECRET_ID is not set")
    key = str(value).encode()
    if len(key) < MIN_HS256_SECRET_BYTES:
        raise ConfigError(f"{source} is shorter than {MIN_HS256_SECRET_BYTES} bytes")
    return key


def allowed_algorithms(settings: PlatformSettings | None = None) -> frozenset[str]:
    """``JWT_ALGORITHMS`` minus the algorithms that have no key source configured."""
    settings = settings or platform()
    configured = {a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()}
    unknown = configured - _JWKS_KTY.keys() - {"HS256"}
    if unknown:
        raise ConfigError(f"environment variable JWT_ALGORITHMS has unsupported values: {sorted(unknown)}")
    usable = {a for a in configured if a in _JWKS_KTY} if settings.jwt_jwks_url else set()
    if "HS256" in configured and _has_hs256_secret(settings):
        usable.add("HS256")
    return frozenset(usable)


class _Jwks:
    """A ``PyJWKClient`` plus our own throttle on refetches caused by unknown ``kid`` values."""

    def __init__(self, url: str) -> None:
        from jwt import PyJWKClient

        self.url = url
        self.client = PyJWKClient(url, cache_jwk_set=True, lifespan=300, timeout=JWKS_TIMEOUT_S)
        self.last_refetch = float("-inf")
        self.lock = threading.Lock()

    def key(self, kid: str) -> Any:
        """The ``PyJWK`` for ``kid``; ``Unauthorized`` when unknown or the JWKS cannot be had."""
        from jwt.exceptions import PyJWKClientError, PyJWKError, PyJWKSetError

        try:
            found = self.client.match_kid(self.client.get_signing_keys(), kid)
            if found is None:
                with self.lock:
                    now = time.monotonic()
                    if now - self.last_refetch >= JWKS_REFETCH_INTERVAL_S:
                        self.last_refetch = now
                        found = self.client.match_kid(self.client.get_signing_keys(refresh=True), kid)
        except (PyJWKClientError, PyJWKSetError, PyJWKError) as exc:
            logger.warning("JWKS unavailable", extra={"error": type(exc).__name__, "jwks_url": self.url})
            raise Unauthorized("signing keys unavailable") from None
        if found is None:
            raise Unauthorized("unknown signing key")
        return found


_jwks: _Jwks | None = None
_jwks_lock = threading.Lock()


def _jwks_for(url: str) -> _Jwks:
    global _jwks
    with _jwks_lock:
        if _jwks is None or _jwks.url != url:
            _jwks = _Jwks(url)
        return _jwks


def reset() -> None:
    """Drop the cached JWKS client and verified tokens (tests; changed settings)."""
    global _jwks
    with _jwks_lock:
        _jwks = None
    _verified.clear()


#: token → (principal, monotonic deadline, the settings it verified against)
_verified: dict[str, tuple[Principal, float, PlatformSettings]] = {}


def _verification_key(alg: str, header: Mapping[str, Any], settings: PlatformSettings) -> Any:
    if alg == "HS256":
        return _hs256_secret(settings)
    kid = header.get("kid")
    if not kid:
        raise Unauthorized("missing key id")
    jwk = _jwks_for(_required(settings.jwt_jwks_url, "JWT_JWKS_URL")).key(kid)
    declared = getattr(jwk, "_jwk_data", {}).get("alg")  # the JWK's own ``alg``, if it names one
    if jwk.key_type != _JWKS_KTY[alg] or (declared and declared != alg):
        raise Unauthorized("key does not match algorithm")
    return jwk.key


def _reason(exc: Exception) -> str:
    from jwt import exceptions as e

    if isinstance(exc, e.MissingRequiredClaimError):
        return f"missing claim: {exc.claim}"
    reasons: list[tuple[type[Exception], str]] = [
        (e.ExpiredSignatureError, "token expired"),
        (e.ImmatureSignatureError, "token not yet valid"),
        (e.InvalidAudienceError, "wrong audience"),
        (e.InvalidIssuerError, "wrong issuer"),
        (e.InvalidSignatureError, "signature does not verify"),
        (e.InvalidAlgorithmError, "algorithm not allowed"),
        (e.InvalidKeyError, "key does not match algorithm"),
        (e.InvalidIssuedAtError, "invalid claim: iat"),
        (e.InvalidSubjectError, "invalid claim: sub"),
        (e.DecodeError, "malformed token"),
    ]
    return next((reason for kind, reason in reasons if isinstance(exc, kind)), "invalid token")


def verify(token: str, keys: KeyProvider | None = None) -> Principal:
    """Verify a bearer JWT against the platform settings (or ``keys``); ``Unauthorized`` on any failure."""
    settings: Any = keys if keys is not None else platform()
    remembered = _verified.get(token) if isinstance(token, str) else None
    if remembered is not None:
        principal, deadline, verified_with = remembered
        if verified_with is settings and time.monotonic() < deadline:
            return principal
    principal, expires_in = _verify_with(token, keys) if keys is not None else _verify(token, settings)
    if len(_verified) >= VERIFIED_MAX:
        _verified.clear()
    _verified[token] = (principal, time.monotonic() + min(VERIFIED_TTL_S, expires_in), settings)
    return principal


def _verify(token: str, settings: PlatformSettings) -> tuple[Principal, float]:
    """The full verification; the principal and how many seconds the token stays valid."""
    import jwt

    issuer = _required(settings.jwt_issuer, "JWT_ISSUER")
    audience = _required(settings.jwt_audience, "JWT_AUDIENCE")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("malformed token") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algorithms(settings):
        raise Unauthorized("algorithm not allowed")
    key = _verification_key(alg, header, settings)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            issuer=issuer,
            audience=audience,
            leeway=settings.jwt_leeway_s,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise Unauthorized(_reason(exc)) from None
    expires_in = float(claims["exp"]) + settings.jwt_leeway_s - time.time()
    return principal_from_claims(claims, "bearer"), expires_in


def _verify_with(token: str, keys: KeyProvider) -> tuple[Principal, float]:
    """``_verify`` against an in-process issuer's keys."""
    import jwt

    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("malformed token") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in keys.algorithms:
        raise Unauthorized("algorithm not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("missing key id")
    key = keys.key(kid)
    if key is None:
        raise Unauthorized("unknown signing key")
    key = getattr(key, "key", key)  # a PyJWK carries the cryptography key in ``key``
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            issuer=keys.issuer,
            audience=keys.audience,
            leeway=keys.leeway_s,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise Unauthorized(_reason(exc)) from None
    expires_in = float(claims["exp"]) + keys.leeway_s - time.time()
    return principal_from_claims(claims, "bearer"), expires_in


def issue_dev_token(
    subject: str,
    roles: Iterable[str] = (),
    *,
    scopes: Iterable[str] = (),
    ttl_s: int = 3600,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """An HS256 token from the local dev issuer; ``extra_claims`` override the standard ones."""
    import jwt

    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    settings = platform()
    key = _hs256_secret(settings)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": _required(settings.jwt_issuer, "JWT_ISSUER"),
        "aud": _required(settings.jwt_audience, "JWT_AUDIENCE"),
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
    }
    if roles:
        claims[settings.jwt_roles_claim] = list(roles)
    if scopes:
        claims["scope"] = " ".join(scopes)
    claims.update(extra_claims or {})
    return jwt.encode(claims, key, algorithm="HS256")


# ------------------------------------------------------------------ HTTP layer


def authenticate(request: Request) -> Principal:
    """Gateway claims if API Gateway verified the caller, else the bearer token; cached per request."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    event = request.scope.get("aws.event")
    principal = principal_from_event(event) if isinstance(event, Mapping) else None
    if principal is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingCredentials("missing bearer token")
        principal = verify(token.strip())
    request.state.principal = principal
    return principal


def authorize(principal: Principal, *roles: str, any_of: bool = False) -> Principal:
    """``principal`` if it has the roles (all, or one with ``any_of``); else ``Forbidden``."""
    if principal.has_roles(*roles, any_of=any_of):
        return principal
    if any_of:
        raise Forbidden(f"requires one of the roles: {', '.join(roles)}", required_roles=list(roles))
    missing = [r for r in roles if r not in principal.roles]
    noun = "role" if len(missing) == 1 else "roles"
    raise Forbidden(f"missing {noun}: {', '.join(missing)}", missing_roles=missing)


#: the one bearer scheme of every document (``bearer``); ``auto_error=False``: ``authenticate`` decides
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER,
    bearerFormat="JWT",
    description="A JWT from the opsdeck issuer (roles in the `roles` claim), verified by the function.",
)
_bearer_scheme = bearer_scheme


@raises(Unauthorized)
async def current_principal(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Security(_bearer_scheme),
) -> Principal:
    """FastAPI dependency: the authenticated caller (401 otherwise). ``async``: FastAPI runs a
    sync dependency in a worker thread (~0.3 ms a request here). This one is a dict lookup for
    a remembered token and ~170 µs of signature check for a new one; the only I/O is the JWKS
    fetch on a cold or unknown ``kid`` (a Lambda serves one request at a time, so holding the
    event loop for it costs no other request). Every ``require_roles`` builds on it."""
    # ``_credentials`` only documents the bearer scheme in OpenAPI; ``authenticate`` decides.
    return authenticate(request)


def require_roles(*roles: str, any_of: bool = False) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency factory: 401 without a principal, 403 without the roles."""

    @raises(Forbidden)
    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        return authorize(principal, *roles, any_of=any_of)

    return dependency
