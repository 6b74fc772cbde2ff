"""opsdeck.auth: JWT verification, roles/scopes, FastAPI dependencies.

The JWKS is served by a real HTTP server on 127.0.0.1 so ``PyJWKClient`` runs for real
(caching, refetch throttle, connection errors); nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, Depends, Request
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from opsdeck import auth
from opsdeck.errors import ConfigError, Forbidden, Unauthorized
from tests.support import ROOT, LambdaContext, env

ISS = "https://issuer.test/opsdeck"
AUD = "opsdeck-api"
HS_SECRET = "dev-secret-dev-secret-dev-secret-0123456789"
PROBLEM = "https://opsdeck.dev/problems/"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    data = algorithm.to_jwk(key.public_key(), as_dict=True)
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now, "nbf": now, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rs256(payload: dict[str, Any] | None = None, kid: str = "rsa-1", key: Any = RSA_KEY) -> str:
    return jwt.encode(payload or claims(), key, algorithm="RS256", headers={"kid": kid})


def es256(payload: dict[str, Any] | None = None, kid: str = "ec-1") -> str:
    return jwt.encode(payload or claims(), EC_KEY, algorithm="ES256", headers={"kid": kid})


def rejected(token: str) -> str:
    with pytest.raises(Unauthorized) as info:
        auth.verify(token)
    assert not token or token not in str(info.value)
    return info.value.detail


# ------------------------------------------------------------------- JWKS server


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def jwks(jwks_server: JwksServer) -> JwksServer:
    jwks_server.keys = [_jwk(RSA_KEY, "rsa-1", "RS256"), _jwk(EC_KEY, "ec-1", "ES256")]
    jwks_server.hits = 0
    return jwks_server


@pytest.fixture(autouse=True)
def _fresh_auth() -> Iterator[None]:
    auth.reset()
    yield
    auth.reset()


def _jwt_env(**values: str | None) -> dict[str, str | None]:
    base: dict[str, str | None] = {
        "JWT_ISSUER": ISS,
        "JWT_AUDIENCE": AUD,
        "JWT_JWKS_URL": None,
        "JWT_HS256_SECRET": None,
        "JWT_HS256_SECRET_ID": None,
        "JWT_ALGORITHMS": None,
        "JWT_LEEWAY_S": None,
        "JWT_ROLES_CLAIM": None,
    }
    base.update(values)
    return base


@pytest.fixture
def jwks_only(jwks: JwksServer) -> Iterator[JwksServer]:
    """Production shape: RS256/ES256 from the JWKS, no HS256 secret."""
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url)):
        yield jwks


@pytest.fixture
def dev_only() -> Iterator[None]:
    """The local dev issuer: HS256 only."""
    with env(**_jwt_env(JWT_HS256_SECRET=HS_SECRET, JWT_ALGORITHMS="HS256")):
        yield


# ----------------------------------------------------------------- valid tokens


def test_cold_import_does_not_load_pyjwt() -> None:
    code = "import sys, opsdeck.auth; print(sorted(m for m in ('jwt', 'cryptography') if m in sys.modules))"
    pythonpath = os.pathsep.join([str(ROOT / "layers/common/python"), str(ROOT)])
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_valid_rs256(jwks_only: JwksServer) -> None:
    p = auth.verify(rs256(claims(roles=["ADMIN_READ"], scope="orders:read orders:write")))
    assert p.subject == "user-1"
    assert p.roles == frozenset({"ADMIN_READ"})
    assert p.scopes == frozenset({"orders:read", "orders:write"})
    assert p.source == "bearer"
    assert p.claims["iss"] == ISS
    with pytest.raises(TypeError):
        p.claims["sub"] = "someone-else"  # type: ignore[index]
    assert p.has_roles("ADMIN_READ")
    assert not p.has_roles("ADMIN_READ", "ADMIN_AUDIT")
    assert p.has_roles("ADMIN_READ", "ADMIN_AUDIT", any_of=True)
    assert "iss" not in repr(p)


def test_valid_es256(jwks_only: JwksServer) -> None:
    p = auth.verify(es256(claims(sub="svc-7", roles="OPS")))
    assert (p.subject, p.roles) == ("svc-7", frozenset({"OPS"}))


def test_jwks_is_fetched_once_and_cached(jwks_only: JwksServer) -> None:
    for _ in range(3):
        auth.verify(rs256())
        auth.verify(es256())
    assert jwks_only.hits == 1


def test_valid_hs256_dev_token(dev_only: None) -> None:
    token = auth.issue_dev_token("dev-user", ["ADMIN_READ", "OPS"], scopes=["a", "b"], ttl_s=60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    p = auth.verify(token)
    assert p.subject == "dev-user"
    assert p.roles == frozenset({"ADMIN_READ", "OPS"})
    assert p.scopes == frozenset({"a", "b"})
    assert p.claims["exp"] - p.claims["iat"] == 60
    assert p.claims["iss"] == ISS
    assert p.claims["aud"] == AUD


def test_hs256_secret_from_secret_id(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake_secret(secret_id: str, **_: Any) -> dict[str, str]:
        asked.append(secret_id)
        return {"value": HS_SECRET}

    monkeypatch.setattr(auth, "secret", fake_secret)
    with env(**_jwt_env(JWT_HS256_SECRET_ID="opsdeck/dev-jwt", JWT_ALGORITHMS="HS256")):
        token = jwt.encode(claims(), HS_SECRET, algorithm="HS256")
        assert auth.verify(token).subject == "user-1"
    assert asked == ["opsdeck/dev-jwt"]


def test_issue_dev_token_needs_a_secret() -> None:
    with env(**_jwt_env()), pytest.raises(ConfigError, match="JWT_HS256_SECRET"):
        auth.issue_dev_token("x")
    with env(**_jwt_env(JWT_HS256_SECRET="short")), pytest.raises(ConfigError, match="32 bytes"):
        auth.issue_dev_token("x")


def test_issue_dev_token_extra_claims_override(dev_only: None) -> None:
    token = auth.issue_dev_token("x", extra_claims={"exp": int(time.time()) - 3600, "tenant": "t1"})
    assert jwt.decode(token, options={"verify_signature": False})["tenant"] == "t1"
    assert rejected(token) == "token expired"


# -------------------------------------------------------------- time claims


def test_expired(jwks_only: JwksServer) -> None:
    now = int(time.time())
    assert rejected(rs256(claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600))) == "token expired"


def test_expired_within_leeway_passes(jwks_only: JwksServer) -> None:
    assert auth.verify(rs256(claims(exp=int(time.time()) - 10))).subject == "user-1"


def test_nbf_in_future(jwks_only: JwksServer) -> None:
    now = int(time.time())
    assert rejected(rs256(claims(nbf=now + 300, iat=now))) == "token not yet valid"


def test_nbf_and_iat_within_leeway_pass(jwks_only: JwksServer) -> None:
    now = int(time.time())
    assert auth.verify(rs256(claims(nbf=now + 10, iat=now + 10))).subject == "user-1"


def test_iat_in_future(jwks_only: JwksServer) -> None:
    assert rejected(rs256(claims(iat=int(time.time()) + 600))) == "token not yet valid"


def test_leeway_is_configurable(jwks: JwksServer) -> None:
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url, JWT_LEEWAY_S="0")):
        assert rejected(rs256(claims(exp=int(time.time()) - 10))) == "token expired"


# ------------------------------------------------------------ iss/aud/required


def test_wrong_audience(jwks_only: JwksServer) -> None:
    assert rejected(rs256(claims(aud="another-api"))) == "wrong audience"


def test_audience_list_containing_ours_passes(jwks_only: JwksServer) -> None:
    assert auth.verify(rs256(claims(aud=["another-api", AUD]))).subject == "user-1"


def test_wrong_issuer(jwks_only: JwksServer) -> None:
    assert rejected(rs256(claims(iss="https://evil.test/"))) == "wrong issuer"


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub"])
def test_missing_required_claim(jwks_only: JwksServer, claim: str) -> None:
    assert rejected(rs256(claims(**{claim: None}))) == f"missing claim: {claim}"


@pytest.mark.parametrize("var", ["JWT_ISSUER", "JWT_AUDIENCE"])
def test_missing_issuer_or_audience_config(jwks: JwksServer, var: str) -> None:
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url, **{var: None})), pytest.raises(ConfigError, match=var):
        auth.verify(rs256())


def test_unsupported_algorithm_config(jwks: JwksServer) -> None:
    settings = _jwt_env(JWT_JWKS_URL=jwks.url, JWT_ALGORITHMS="RS256,none")
    with env(**settings), pytest.raises(ConfigError, match="JWT_ALGORITHMS"):
        auth.verify(rs256())


# ------------------------------------------------------------- forged tokens


def _unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(payload).encode())}."


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_rejected(jwks: JwksServer, alg: str) -> None:
    # Even with every key source configured, an unsigned token never passes.
    extra = {"JWT_HS256_SECRET": HS_SECRET, "JWT_ALGORITHMS": "RS256,ES256,HS256"}
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url, **extra)):
        assert rejected(_unsigned(claims(roles=["ADMIN_READ"]), alg)) == "algorithm not allowed"
    assert jwks.hits == 0


def test_unknown_alg_is_rejected(jwks_only: JwksServer) -> None:
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS512", headers={"kid": "rsa-1"})
    assert rejected(token) == "algorithm not allowed"


def test_tampered_payload(jwks_only: JwksServer) -> None:
    header, _, signature = rs256(claims(roles=["VIEWER"])).split(".")
    forged = b64url(json.dumps(claims(roles=["ADMIN_READ"])).encode())
    assert rejected(f"{header}.{forged}.{signature}") == "signature does not verify"


def test_signed_by_another_key_with_known_kid(jwks_only: JwksServer) -> None:
    assert rejected(rs256(key=OTHER_RSA_KEY)) == "signature does not verify"


def _hs256_with_public_key(kid: str = "rsa-1") -> str:
    """The classic alg confusion: HMAC keyed with the issuer's (public) RSA key."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64url(json.dumps(claims(roles=["ADMIN_READ"])).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def test_hs256_rejected_when_only_jwks_configured(jwks_only: JwksServer) -> None:
    assert rejected(_hs256_with_public_key()) == "algorithm not allowed"
    assert rejected(jwt.encode(claims(), HS_SECRET, algorithm="HS256")) == "algorithm not allowed"


def test_hs256_with_public_key_fails_even_when_hs256_allowed(jwks: JwksServer) -> None:
    extra = {"JWT_HS256_SECRET": HS_SECRET, "JWT_ALGORITHMS": "RS256,HS256"}
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url, **extra)):
        assert rejected(_hs256_with_public_key()) == "signature does not verify"


def test_hs256_not_accepted_unless_listed_in_algorithms() -> None:
    with env(**_jwt_env(JWT_HS256_SECRET=HS_SECRET)):  # JWT_ALGORITHMS defaults to RS256,ES256
        assert rejected(auth.issue_dev_token("x")) == "algorithm not allowed"


def test_hs256_listed_but_no_secret_is_rejected() -> None:
    with env(**_jwt_env(JWT_ALGORITHMS="HS256")):
        assert rejected(jwt.encode(claims(), HS_SECRET, algorithm="HS256")) == "algorithm not allowed"


def test_rs256_rejected_when_only_hs256_configured(dev_only: None) -> None:
    assert rejected(rs256()) == "algorithm not allowed"


def test_rs256_rejected_without_jwks_url_even_if_listed() -> None:
    with env(**_jwt_env(JWT_HS256_SECRET=HS_SECRET, JWT_ALGORITHMS="RS256,HS256")):
        assert rejected(rs256()) == "algorithm not allowed"


def test_key_type_must_match_algorithm(jwks_only: JwksServer) -> None:
    assert rejected(es256(kid="rsa-1")) == "key does not match algorithm"


def test_missing_kid(jwks_only: JwksServer) -> None:
    assert rejected(jwt.encode(claims(), RSA_KEY, algorithm="RS256")) == "missing key id"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed token"),
        ("abc", "malformed token"),
        ("a.b.c", "malformed token"),
        ("x" * 20000, "malformed token"),
        ("e30.e30.", "algorithm not allowed"),  # header {} has no alg
        (b64url(b'{"alg":"RS256","kid":"rsa-1"}') + ".!!.", "malformed token"),
    ],
)
def test_malformed(jwks_only: JwksServer, token: str, reason: str) -> None:
    assert rejected(token) == reason


# ------------------------------------------------------------------ JWKS refetch


def test_unknown_kid_refetches_at_most_once_per_minute(jwks_only: JwksServer) -> None:
    auth.verify(rs256())
    assert jwks_only.hits == 1
    assert rejected(rs256(kid="unknown-1")) == "unknown signing key"
    assert jwks_only.hits == 2  # exactly one refetch
    assert rejected(rs256(kid="unknown-2")) == "unknown signing key"
    assert rejected(rs256(kid="unknown-1")) == "unknown signing key"
    assert jwks_only.hits == 2  # throttled: no refetch within 60 s
    assert auth.verify(rs256()).subject == "user-1"  # known keys still served from cache
    assert jwks_only.hits == 2

    assert auth._jwks is not None
    auth._jwks.last_refetch -= auth.JWKS_REFETCH_INTERVAL_S + 1  # a minute later
    assert rejected(rs256(kid="unknown-3")) == "unknown signing key"
    assert jwks_only.hits == 3


def test_rotated_key_is_picked_up_by_the_refetch(jwks_only: JwksServer) -> None:
    auth.verify(rs256())
    jwks_only.keys.append(_jwk(OTHER_RSA_KEY, "rsa-2", "RS256"))
    assert auth.verify(rs256(kid="rsa-2", key=OTHER_RSA_KEY)).subject == "user-1"
    assert jwks_only.hits == 2


def test_jwks_unreachable_is_401_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()  # nothing listens there any more
    warnings: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(auth.logger, "warning", lambda msg, extra=None: warnings.append((msg, extra or {})))
    token = rs256()
    with env(**_jwt_env(JWT_JWKS_URL=f"http://127.0.0.1:{port}/jwks.json")):
        assert rejected(token) == "signing keys unavailable"
    assert len(warnings) == 1
    msg, extra = warnings[0]
    assert msg == "JWKS unavailable"
    assert extra["error"] == "PyJWKClientConnectionError"
    assert token not in json.dumps(extra)


def test_jwks_url_change_gets_a_new_client(jwks: JwksServer) -> None:
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url)):
        auth.verify(rs256())
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url + "?v=2")):
        auth.verify(rs256())
    assert jwks.hits == 2


# ------------------------------------------------------------- roles & scopes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["ADMIN_READ", "ADMIN_AUDIT"], {"ADMIN_READ", "ADMIN_AUDIT"}),
        ("ADMIN_READ ADMIN_AUDIT", {"ADMIN_READ", "ADMIN_AUDIT"}),
        ("ADMIN_READ,ADMIN_AUDIT", {"ADMIN_READ", "ADMIN_AUDIT"}),
        ("[ADMIN_READ ADMIN_AUDIT]", {"ADMIN_READ", "ADMIN_AUDIT"}),
        ("[ADMIN_READ]", {"ADMIN_READ"}),
        ('["ADMIN_READ", "ADMIN_AUDIT"]', {"ADMIN_READ", "ADMIN_AUDIT"}),
        ("[]", set()),
        ("", set()),
        (None, set()),
        (42, set()),
        ({"ADMIN_READ": True}, set()),
    ],
)
def test_claim_values(value: Any, expected: set[str]) -> None:
    assert auth.claim_values(value) == frozenset(expected)


@pytest.mark.parametrize(
    "extra",
    [
        {"roles": ["ADMIN_READ", "OPS"]},
        {"roles": "ADMIN_READ OPS"},
        {"roles": "[ADMIN_READ OPS]"},
        {"cognito:groups": ["ADMIN_READ", "OPS"]},
        {"roles": "ADMIN_READ", "cognito:groups": "[OPS]"},
    ],
)
def test_roles_from_tokens(jwks_only: JwksServer, extra: dict[str, Any]) -> None:
    assert auth.verify(rs256(claims(**extra))).roles == frozenset({"ADMIN_READ", "OPS"})


def test_custom_roles_claim(jwks: JwksServer) -> None:
    with env(**_jwt_env(JWT_JWKS_URL=jwks.url, JWT_ROLES_CLAIM="https://opsdeck.dev/roles")):
        p = auth.verify(rs256(claims(**{"https://opsdeck.dev/roles": ["OPS"], "roles": ["IGNORED"]})))
    assert p.roles == frozenset({"OPS"})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"scope": "orders:read orders:write"}, {"orders:read", "orders:write"}),
        ({"scp": ["orders:read", "orders:write"]}, {"orders:read", "orders:write"}),
        ({"scp": "orders:read"}, {"orders:read"}),
        ({"scope": "a", "scp": ["b"]}, {"a", "b"}),
        ({}, set()),
    ],
)
def test_scopes_from_tokens(jwks_only: JwksServer, extra: dict[str, Any], expected: set[str]) -> None:
    assert auth.verify(rs256(claims(**extra))).scopes == frozenset(expected)


def test_authorize() -> None:
    p = auth.Principal("u", frozenset({"A", "B"}), frozenset(), {"sub": "u"}, "bearer")
    with pytest.raises(TypeError):
        p.claims["sub"] = "x"  # type: ignore[index]
    assert hash(p) == hash(auth.Principal("u", frozenset({"A", "B"}), frozenset(), {}, "bearer"))
    assert auth.authorize(p, "A", "B") is p
    assert auth.authorize(p, "C", "A", any_of=True) is p
    with pytest.raises(Forbidden) as info:
        auth.authorize(p, "A", "C", "D")
    assert info.value.detail == "missing roles: C, D"
    assert info.value.extra == {"missing_roles": ["C", "D"]}
    with pytest.raises(Forbidden, match="missing role: C"):
        auth.authorize(p, "C")
    with pytest.raises(Forbidden, match="one of the roles: C, D"):
        auth.authorize(p, "C", "D", any_of=True)


# ------------------------------------------------------------ gateway events

GATEWAY_CLAIMS = {
    "sub": "gw-user",
    "iss": ISS,
    "aud": AUD,
    "exp": "1999999999",
    "roles": "[ADMIN_READ ADMIN_AUDIT]",
    "cognito:groups": "[OPS]",
    "scope": "orders:read",
}


def http_event(
    path: str, headers: dict[str, str] | None = None, claims: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as Lambda receives it."""
    now = time.time()
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api123",
        "domainName": "api123.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "api123",
        "http": {
            "method": "GET",
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9",
            "userAgent": "pytest",
        },
        "requestId": "req-" + str(int(now * 1000)),
        "routeKey": f"GET {path}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": ["orders:write"]}}
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": context["domainName"], "user-agent": "pytest", **(headers or {})},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def test_principal_from_event() -> None:
    with env(**_jwt_env()):
        p = auth.principal_from_event(http_event("/t/me", claims=GATEWAY_CLAIMS))
    assert p is not None
    assert p.source == "gateway"
    assert p.subject == "gw-user"
    assert p.roles == frozenset({"ADMIN_READ", "ADMIN_AUDIT", "OPS"})
    assert p.scopes == frozenset({"orders:read", "orders:write"})


def test_principal_from_event_without_authorizer() -> None:
    assert auth.principal_from_event(http_event("/t/me")) is None
    assert auth.principal_from_event({}) is None
    assert auth.principal_from_event({"requestContext": {"authorizer": {"lambda": {"x": 1}}}}) is None


def test_principal_from_event_without_sub() -> None:
    with pytest.raises(Unauthorized, match="missing claim: sub"):
        auth.principal_from_event(http_event("/t/me", claims={"roles": "[A]"}))


# -------------------------------------------------------------- FastAPI + Mangum


def _handler() -> Any:
    from opsdeck.api import create_app, lambda_handler

    router = APIRouter(prefix="/t")

    @router.get("/me")
    def me(request: Request, principal: auth.Principal = Depends(auth.current_principal)) -> dict[str, Any]:
        assert request.state.principal is principal
        return {"sub": principal.subject, "source": principal.source, "roles": sorted(principal.roles)}

    @router.get("/admin")
    def admin(principal: auth.Principal = Depends(auth.require_roles("ADMIN_READ"))) -> dict[str, str]:
        return {"sub": principal.subject}

    @router.get("/audit", dependencies=[Depends(auth.require_roles("ADMIN_AUDIT", "OPS", any_of=True))])
    def audit(request: Request) -> dict[str, str]:
        return {"sub": request.state.principal.subject}

    return lambda_handler(create_app(title="t", base_path="/t", routers=[router]))


@pytest.fixture
def call(jwks_only: JwksServer) -> Any:
    handler = _handler()

    def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        response = handler(event, LambdaContext())
        headers = {k.lower(): v for k, v in response["headers"].items()}
        return response["statusCode"], headers, json.loads(response["body"])

    return invoke


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_http_no_token_is_401_problem(call: Any) -> None:
    status, headers, body = call(http_event("/t/admin"))
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"].startswith("Bearer")
    assert body["type"] == PROBLEM + "unauthorized"
    assert body["detail"] == "missing bearer token"


def test_http_other_scheme_is_401(call: Any) -> None:
    status, _, body = call(http_event("/t/me", headers={"authorization": "Basic dXNlcjpwYXNz"}))
    assert (status, body["detail"]) == (401, "missing bearer token")


def test_http_invalid_token_is_401(call: Any) -> None:
    token = rs256(claims(aud="another-api", roles=["ADMIN_READ"]))
    status, headers, body = call(http_event("/t/admin", headers=_bearer(token)))
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert body["type"] == PROBLEM + "unauthorized"
    assert body["detail"] == "wrong audience"
    assert token not in json.dumps(body)


def test_http_valid_token_without_role_is_403(call: Any) -> None:
    status, headers, body = call(http_event("/t/admin", headers=_bearer(rs256(claims(roles=["VIEWER"])))))
    assert status == 403
    assert headers["content-type"] == "application/problem+json"
    assert "www-authenticate" not in headers
    assert body["type"] == PROBLEM + "forbidden"
    assert body["detail"] == "missing role: ADMIN_READ"


def test_http_valid_token_with_role_is_200(call: Any) -> None:
    status, _, body = call(http_event("/t/admin", headers=_bearer(es256(claims(roles="[ADMIN_READ]")))))
    assert (status, body) == (200, {"sub": "user-1"})


def test_http_dependencies_list_any_of(call: Any) -> None:
    ok = call(http_event("/t/audit", headers=_bearer(rs256(claims(roles=["OPS"])))))
    assert ok[:1] == (200,)
    assert ok[2] == {"sub": "user-1"}
    denied = call(http_event("/t/audit", headers=_bearer(rs256(claims(roles=["VIEWER"])))))
    assert denied[0] == 403
    assert denied[2]["type"] == PROBLEM + "forbidden"


def test_http_current_principal(call: Any) -> None:
    status, _, body = call(http_event("/t/me", headers=_bearer(rs256(claims(roles=["B", "A"])))))
    assert (status, body) == (200, {"sub": "user-1", "source": "bearer", "roles": ["A", "B"]})


def test_http_gateway_claims_need_no_header(call: Any, jwks_only: JwksServer) -> None:
    status, _, body = call(http_event("/t/admin", claims=GATEWAY_CLAIMS))
    assert (status, body) == (200, {"sub": "gw-user"})
    status, _, body = call(http_event("/t/me", claims=GATEWAY_CLAIMS))
    assert status == 200
    assert body["source"] == "gateway"
    assert jwks_only.hits == 0  # API Gateway verified the token; we did not fetch keys


def test_http_gateway_claims_without_role_is_403(call: Any) -> None:
    status, _, body = call(http_event("/t/admin", claims={"sub": "gw-user", "roles": "[VIEWER]"}))
    assert status == 403
    assert body["detail"] == "missing role: ADMIN_READ"


def test_openapi_documents_bearer_scheme_and_the_auth_errors(jwks_only: JwksServer) -> None:
    from opsdeck.api import create_app

    router = APIRouter(prefix="/t")

    @router.get("/me")
    def me(principal: auth.Principal = Depends(auth.current_principal)) -> dict[str, str]:
        return {"sub": principal.subject}

    @router.get("/admin")
    def admin(principal: auth.Principal = Depends(auth.require_roles("ADMIN_READ"))) -> dict[str, str]:
        return {"sub": principal.subject}

    spec = create_app(title="t", base_path="/t", routers=[router], gateway_routes={}).openapi()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": auth.bearer_scheme.model.description,
    }
    me_doc, admin_doc = spec["paths"]["/t/me"]["get"], spec["paths"]["/t/admin"]["get"]
    assert me_doc["security"] == admin_doc["security"] == [{"bearer": []}]
    # current_principal raises 401; require_roles adds 403 — both problem+json
    assert set(me_doc["responses"]) == {"200", "401", "500"}
    assert set(admin_doc["responses"]) == {"200", "401", "403", "500"}
    problem = admin_doc["responses"]["403"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert problem["examples"]["forbidden"]["value"]["type"] == "https://opsdeck.dev/problems/forbidden"


# ------------------------------------------------------------- verified tokens


def test_a_verified_token_is_remembered_until_it_expires(
    jwks_only: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    start_wall, start_mono = time.time(), time.monotonic()
    token = rs256(claims(exp=int(start_wall) + 5))
    assert auth.verify(token).subject == auth.verify(token).subject == "user-1"
    assert len(decoded) == 1  # the second call skipped the signature and claim checks
    # 40 s later: past exp + the 30 s leeway (though within VERIFIED_TTL_S): verified again, refused
    monkeypatch.setattr(auth.time, "monotonic", lambda: start_mono + 40)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime.at(start_wall + 40))
    with pytest.raises(Unauthorized, match="token expired"):
        auth.verify(token)
    assert len(decoded) == 2


class _FrozenDatetime:
    """Stands in for ``datetime`` inside PyJWT, whose clock is ``datetime.now(tz=utc)``."""

    @staticmethod
    def at(epoch: float) -> Any:
        from datetime import datetime

        class Frozen(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return datetime.fromtimestamp(epoch, tz)

        return Frozen


def test_a_remembered_token_is_verified_again_when_the_settings_change(jwks_only: JwksServer) -> None:
    token = rs256(claims())
    assert auth.verify(token).subject == "user-1"
    with env(JWT_AUDIENCE="another-api"):
        assert rejected(token) == "wrong audience"


def test_refused_tokens_are_not_remembered(jwks_only: JwksServer) -> None:
    forged = rs256(claims(), key=OTHER_RSA_KEY)
    assert rejected(forged) == rejected(forged) == "signature does not verify"
    assert forged not in auth._verified
