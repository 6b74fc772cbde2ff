"""The admin API authenticates in the function so that every denial is audited.

Bad tokens of every kind → 401 problem+json, a valid token without the role → 403; each one
leaves an audit record with the outcome, the reason, ip and user agent — and never the token.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.integration.backoffice.helpers import JWT, audit_rows, call, token

PROBLEM = "application/problem+json"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned() -> str:
    now = int(time.time())
    claims = {
        "iss": JWT["JWT_ISSUER"],
        "aud": JWT["JWT_AUDIENCE"],
        "sub": "mallory",
        "exp": now + 600,
        "roles": ["ADMIN_READ"],
    }
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def tampered() -> str:
    header, payload, signature = token("ADMIN_READ", subject="mallory").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["ADMIN_READ", "ADMIN_AUDIT"]
    return f"{header}.{b64(claims)}.{signature}"


def other_key() -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": JWT["JWT_ISSUER"], "aud": JWT["JWT_AUDIENCE"], "sub": "mallory", "exp": now + 600}
    return jwt.encode(claims, "another-secret-another-secret-another-secret", algorithm="HS256")


BAD_TOKENS = {
    "expired": (lambda: token("ADMIN_READ", exp=int(time.time()) - 3600), "token expired"),
    "wrong audience": (lambda: token("ADMIN_READ", aud="someone-else"), "wrong audience"),
    "wrong issuer": (lambda: token("ADMIN_READ", iss="https://evil.example"), "wrong issuer"),
    "alg none": (unsigned, "algorithm not allowed"),
    "tampered": (tampered, "signature does not verify"),
    "signed by another key": (other_key, "signature does not verify"),
    "not a jwt": (lambda: "not.a.jwt", "malformed token"),
}


@pytest.mark.parametrize("case", BAD_TOKENS, ids=str)
def test_bad_tokens_are_401_and_audited(db, jwt_env, case):
    make, reason = BAD_TOKENS[case]
    bearer = make()
    r = call("tx.json", bearer=bearer)
    assert r.status == 401 and r.headers["content-type"] == PROBLEM, r
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert bearer not in r.text
    [row] = audit_rows(db)
    assert (row["outcome"], row["status"], row["reason"]) == ("unauthenticated", 401, reason)
    assert row["actor"] is None  # claims of a token that does not verify are not trusted
    assert row["target_type"] == "tx" and row["target_id"] == "tx-0000000001"
    assert row["ip"] == "127.0.0.1" and row["user_agent"] == "opsdeck-sample/1.0"
    assert row["action"] == "GET /backoffice/admin/tx/{tx_id}"
    assert bearer not in json.dumps({k: str(v) for k, v in row.items()})


def test_no_token_is_401_and_audited(db, jwt_env):
    r = call("payment-order.json")
    assert r.status == 401 and r.headers["www-authenticate"] == "Bearer"
    [row] = audit_rows(db)
    assert (row["outcome"], row["target_type"], row["reason"]) == (
        "unauthenticated",
        "payment_order",
        "missing bearer token",
    )


@pytest.mark.parametrize(
    ("sample", "roles"),
    [("tx.json", ()), ("wallet-tx.json", ("ADMIN_AUDIT",)), ("audit.json", ("ADMIN_READ",))],
)
def test_missing_role_is_403_and_audited_with_the_actor(db, jwt_env, sample, roles):
    r = call(sample, bearer=token(*roles, subject="dave"))
    assert r.status == 403 and r.headers["content-type"] == PROBLEM, r
    [row] = audit_rows(db)
    assert (row["actor"], row["outcome"], row["status"], row["result_count"]) == ("dave", "forbidden", 403, 0)
    assert row["actor_roles"] == " ".join(roles)


def test_denials_come_before_input_validation(db, jwt_env):
    """A malformed id from an unauthenticated caller is a 401, not a 422 that reveals the rules."""
    r = call("tx.json", path_params={"tx_id": "-bad-"})
    assert r.status == 401
    assert audit_rows(db)[0]["target_id"] == "-bad-"


def test_control_characters_in_the_target_are_neutralised(db, jwt_env):
    r = call("tx.json", bearer=token("ADMIN_READ"), path_params={"tx_id": "a\x00b\nc"})
    assert r.status == 422
    assert audit_rows(db)[0]["target_id"] == "a?b?c"
