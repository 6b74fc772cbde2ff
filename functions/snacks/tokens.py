"""snacks is its own token issuer: ES256 keys from Secrets Manager, a ``kid`` per key, JWKS.

The catalog secret ``snacks-signing-keys`` (``SNACKS_SIGNING_KEYS_SECRET_ID``) holds::

    {"active_kid": "2026-12", "keys": [{"kid": "2026-12", "alg": "ES256", "private_key": "<PEM>"},
                                       {"kid": "2026-11", "alg": "ES256", "private_key": "<PEM>"}]}

New tokens are signed with the active key; every listed key verifies (rotation: add a key,
make it active, drop the old one after the refresh-token lifetime). The secret is read through
``opsdeck.settings.secret`` (cached 300 s); a token with an unknown ``kid`` rereads it at most
once a minute. Verification goes through ``opsdeck.auth.verify`` with a ``KeyProvider`` of
these public keys — the same checks as every other opsdeck token, no HTTP call to our JWKS.

Access tokens (audience ``snacks``) live ``SNACKS_ACCESS_TTL_S`` (300 s); refresh tokens
(audience ``snacks-refresh``, so neither can stand in for the other) live
``SNACKS_REFRESH_TTL_S`` (14 days) and are single-use (``repository.refresh``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from opsdeck import auth
from opsdeck.errors import ConfigError
from opsdeck.naming import secret_id_env
from opsdeck.settings import secret

SECRET = "snacks-signing-keys"  # noqa: S105 (the catalog name of the secret)
ISSUER = "opsdeck-snacks"
ACCESS_AUDIENCE = "snacks"
REFRESH_AUDIENCE = "snacks-refresh"
ALGORITHMS = frozenset({"ES256", "RS256"})
RELOAD_INTERVAL_S = 60.0


def access_ttl_s() -> int:
    return int(os.environ.get("SNACKS_ACCESS_TTL_S", "300"))


def refresh_ttl_s() -> int:
    return int(os.environ.get("SNACKS_REFRESH_TTL_S", str(14 * 24 * 3600)))


@dataclass(frozen=True)
class KeySet:
    active_kid: str
    private: dict[str, tuple[str, Any]]  # kid → (alg, private key)
    public: dict[str, tuple[str, Any]]  # kid → (alg, public key)


def parse(data: Any) -> KeySet:
    """The key set of a secret value; ``ConfigError`` naming what is wrong (never the key)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        active = data["active_kid"]
        entries = list(data["keys"])
    except (KeyError, TypeError):
        raise ConfigError(f"secret {SECRET} needs active_kid and keys") from None
    private: dict[str, tuple[str, Any]] = {}
    for entry in entries:
        kid, alg = entry.get("kid"), entry.get("alg", "ES256")
        if not kid or alg not in ALGORITHMS:
            raise ConfigError(f"secret {SECRET}: every key needs a kid and alg ES256 or RS256")
        try:
            key = load_pem_private_key(str(entry["private_key"]).encode(), password=None)
        except (KeyError, ValueError, TypeError):
            raise ConfigError(f"secret {SECRET}: key {kid!r} is not a PEM private key") from None
        wanted = ec.EllipticCurvePrivateKey if alg == "ES256" else rsa.RSAPrivateKey
        if not isinstance(key, wanted) or (alg == "ES256" and key.curve.name != "secp256r1"):
            raise ConfigError(f"secret {SECRET}: key {kid!r} does not fit {alg}")
        private[kid] = (alg, key)
    if active not in private:
        raise ConfigError(f"secret {SECRET}: active_kid {active!r} is not among the keys")
    return KeySet(active, private, {kid: (alg, k.public_key()) for kid, (alg, k) in private.items()})


class _Keys:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raw: str | None = None
        self.keyset: KeySet | None = None
        self.last_reload = float("-inf")

    def get(self, *, fresh: bool = False) -> KeySet:
        secret_id = os.environ.get(secret_id_env(SECRET))
        if not secret_id:
            raise ConfigError(f"environment variable {secret_id_env(SECRET)} is not set")
        value = secret(secret_id, max_age=0 if fresh else 300)
        raw = json.dumps(dict(value), sort_keys=True)
        with self.lock:
            if raw != self.raw or self.keyset is None:
                self.keyset, self.raw = parse(dict(value)), raw
            return self.keyset

    def public_key(self, kid: str) -> Any:
        keyset = self.get()
        if kid not in keyset.public:
            with self.lock:
                due = time.monotonic() - self.last_reload >= RELOAD_INTERVAL_S
                if due:
                    self.last_reload = time.monotonic()
            if due:
                keyset = self.get(fresh=True)
        found = keyset.public.get(kid)
        return None if found is None else found[1]


_keys = _Keys()


def reset() -> None:
    global _keys
    _keys = _Keys()


def keyset() -> KeySet:
    return _keys.get()


def access_provider() -> auth.KeyProvider:
    return auth.KeyProvider(ISSUER, ACCESS_AUDIENCE, ALGORITHMS, _keys.public_key, leeway_s=0)


def refresh_provider() -> auth.KeyProvider:
    return auth.KeyProvider(ISSUER, REFRESH_AUDIENCE, ALGORITHMS, _keys.public_key, leeway_s=0)


# KeyProvider objects are compared by identity in the verified-token memory: keep one each
_providers: dict[str, auth.KeyProvider] = {}


def provider(kind: str) -> auth.KeyProvider:
    found = _providers.get(kind)
    if found is None:
        found = _providers[kind] = access_provider() if kind == "access" else refresh_provider()
    return found


def _sign(claims: dict[str, Any]) -> str:
    import jwt

    ks = keyset()
    alg, key = ks.private[ks.active_kid]
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": ks.active_kid})


def issue_access(user_uid: str, role: str, generation: int, *, now: float | None = None) -> str:
    now = int(time.time() if now is None else now)
    return _sign(
        {
            "iss": ISSUER,
            "aud": ACCESS_AUDIENCE,
            "sub": user_uid,
            "iat": now,
            "nbf": now,
            "exp": now + access_ttl_s(),
            "jti": uuid.uuid4().hex,
            "token_type": "access",
            "roles": [role],
            "gen": generation,
        }
    )


def issue_refresh(user_uid: str, generation: int, family: str, jti: str, expires_at: int, now: int) -> str:
    return _sign(
        {
            "iss": ISSUER,
            "aud": REFRESH_AUDIENCE,
            "sub": user_uid,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": jti,
            "fam": family,
            "token_type": "refresh",
            "gen": generation,
        }
    )


def jwks() -> dict[str, Any]:
    """The public keys as a JWK Set (RFC 7517), one per ``kid``."""
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    out = []
    for kid, (alg, key) in sorted(keyset().public.items()):
        algorithm = ECAlgorithm if alg == "ES256" else RSAAlgorithm
        jwk = algorithm.to_jwk(key, as_dict=True)
        out.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    return {"keys": out}


def new_key_entry(kid: str) -> dict[str, str]:
    """A fresh ES256 key for the secret (local cloud, tests, rotation)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {"kid": kid, "alg": "ES256", "private_key": pem}


def new_secret_value(kid: str = "local-1") -> dict[str, Any]:
    return {"active_kid": kid, "keys": [new_key_entry(kid)]}
