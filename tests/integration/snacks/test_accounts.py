"""Accounts through the handler: sign-up, sign-in, refresh rotation and reuse, resignation,
roles, the last admin, the sign-in rate limit, the JWKS."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.support import env

PROBLEM = "https://opsdeck.dev/problems/"


def test_sign_up_and_sign_in_return_a_token_pair_verifiable_with_the_jwks(client):
    r = client.sign_up("Mina@Example.com", name="Mina")
    assert r.status == 201
    assert r.json()["role"] == "member" and r.json()["email"] == "Mina@Example.com"
    assert "password" not in r.text and "argon2" not in r.text
    pair = client.sign_in("mina@example.com").json()  # the login id is case-insensitive
    assert set(pair) == {"access", "refresh"}
    keys = client.call("GET", "/snacks/.well-known/jwks.json").json()["keys"]
    header = jwt.get_unverified_header(pair["access"])
    assert header["alg"] == "ES256" and header["kid"] in {k["kid"] for k in keys}
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    assert "d" not in jwk  # public part only
    claims = jwt.decode(pair["access"], jwt.PyJWK(jwk).key, algorithms=["ES256"], audience="snacks")
    assert claims["iss"] == "opsdeck-snacks" and claims["exp"] - claims["iat"] == 300
    me = client.call("GET", "/snacks/users/me/", pair["access"])
    assert me.status == 200 and me.json()["name"] == "Mina"


def test_only_email_password_and_name_are_taken(client):
    r = client.call(
        "POST",
        "/snacks/auth/signup/",
        body={"email": "a@example.com", "password": "password-123", "name": "A", "role": "admin"},
    )
    assert r.status == 422


def test_unknown_email_and_wrong_password_answer_alike(client):
    client.sign_up("mina@example.com")
    wrong = client.sign_in("mina@example.com", "not-the-password")
    unknown = client.sign_in("nobody@example.com", "not-the-password")
    assert wrong.status == unknown.status == 401
    strip = lambda b: {k: v for k, v in b.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json()) == strip(unknown.json())
    assert wrong.json()["detail"] == "No active account found with the given credentials"


def test_unknown_email_is_checked_against_a_dummy_hash(client, monkeypatch):
    from functions.snacks import passwords

    seen = []
    real = passwords.hasher().verify
    monkeypatch.setattr(type(passwords.hasher()), "verify", lambda self, h, p: seen.append(h) or real(h, p))
    client.sign_in("nobody@example.com", "whatever-password")
    assert len(seen) == 1 and seen[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_expired_access_token_is_refused(client):
    from functions.snacks import tokens

    client.sign_up("mina@example.com")
    uid = client.call("GET", "/snacks/users/me/", client.sign_in("mina@example.com").json()["access"]).json()[
        "uid"
    ]
    old = tokens.issue_access(uid, "member", 0, now=time.time() - 301)
    r = client.call("GET", "/snacks/users/me/", old)
    assert r.status == 401 and r.json()["detail"] == "token expired"


def test_refresh_rotates_and_reuse_revokes_the_family(client):
    client.sign_up("mina@example.com")
    first = client.sign_in("mina@example.com").json()
    other_session = client.sign_in("mina@example.com").json()
    second = client.call("POST", "/snacks/auth/token/refresh/", body={"refresh": first["refresh"]})
    assert second.status == 200
    second = second.json()
    assert second["refresh"] != first["refresh"]
    assert client.call("GET", "/snacks/users/me/", second["access"]).status == 200
    # the spent token again: reuse → 401 and the whole family (incl. the new token) is revoked
    reuse = client.call("POST", "/snacks/auth/token/refresh/", body={"refresh": first["refresh"]})
    assert reuse.status == 401 and "reuse" in reuse.json()["detail"]
    again = client.call("POST", "/snacks/auth/token/refresh/", body={"refresh": second["refresh"]})
    assert again.status == 401 and again.json()["detail"] == "refresh token revoked"
    # another sign-in (another family) is untouched
    assert (
        client.call("POST", "/snacks/auth/token/refresh/", body={"refresh": other_session["refresh"]}).status
        == 200
    )


def test_access_token_is_no_refresh_token_and_vice_versa(client):
    client.sign_up("mina@example.com")
    pair = client.sign_in("mina@example.com").json()
    assert client.call("POST", "/snacks/auth/token/refresh/", body={"refresh": pair["access"]}).status == 401
    assert client.call("GET", "/snacks/users/me/", pair["refresh"]).status == 401


def test_rotated_key_still_verifies_old_tokens_and_signs_with_the_new_one(client, signing_secret):
    import json

    import boto3

    from functions.snacks import tokens

    client.sign_up("mina@example.com")
    old = client.sign_in("mina@example.com").json()
    current = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=signing_secret)["SecretString"]
    )
    current["keys"].append(tokens.new_key_entry("test-2"))
    current["active_kid"] = "test-2"
    boto3.client("secretsmanager").put_secret_value(SecretId=signing_secret, SecretString=json.dumps(current))
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    new = client.sign_in("mina@example.com").json()
    assert jwt.get_unverified_header(new["access"])["kid"] == "test-2"
    assert client.call("GET", "/snacks/users/me/", old["access"]).status == 200
    kids = {k["kid"] for k in client.call("GET", "/snacks/.well-known/jwks.json").json()["keys"]}
    assert kids == {"test-1", "test-2"}


def test_resignation_ends_every_token_and_the_email_cannot_sign_up_again(client):
    client.admin()
    client.sign_up("mina@example.com")
    a = client.sign_in("mina@example.com").json()
    b = client.sign_in("mina@example.com").json()
    assert client.call("DELETE", "/snacks/users/me/", a["access"]).status == 204
    assert client.call("GET", "/snacks/users/me/", b["access"]).json()["detail"] == "token revoked"
    assert client.call("POST", "/snacks/auth/token/refresh/", body={"refresh": b["refresh"]}).status == 401
    assert client.sign_in("mina@example.com").status == 401
    again = client.sign_up("MINA@example.com")
    assert again.status == 409
    assert again.json()["type"] == PROBLEM + "email-resigned"
    assert "resigned" in again.json()["detail"] and "cannot" in again.json()["detail"]


def test_email_taken(client):
    client.sign_up("mina@example.com")
    r = client.sign_up("mina@EXAMPLE.com")
    assert r.status == 409 and r.json()["type"] == PROBLEM + "email-taken"


def test_admins_list_and_promote_members_and_the_last_admin_cannot_resign(client):
    admin = client.admin()
    member = client.member("mina@example.com")
    assert client.call("GET", "/snacks/users/", member).status == 403
    users = client.call("GET", "/snacks/users/", admin).json()["items"]
    assert [u["role"] for u in users] == ["admin", "member"]
    last = client.call("DELETE", "/snacks/users/me/", admin)
    assert last.status == 409 and last.json()["type"] == PROBLEM + "last-admin"
    assert "last remaining admin" in last.json()["detail"]
    mina = users[1]["uid"]
    assert client.call("POST", f"/snacks/users/{mina}/promote/", member).status == 403
    promoted = client.call("POST", f"/snacks/users/{mina}/promote/", admin)
    assert promoted.status == 200 and promoted.json()["role"] == "admin"
    # the role is read per request: mina's existing token acts as admin now
    assert client.call("GET", "/snacks/users/", member).status == 200
    assert client.call("DELETE", "/snacks/users/me/", admin).status == 204
    last = client.call("DELETE", "/snacks/users/me/", member)
    assert last.status == 409


def test_sign_in_is_rate_limited_per_account_and_per_address(client):
    client.sign_up("mina@example.com")
    with env(SNACKS_SIGNIN_ACCOUNT_BURST="3", SNACKS_SIGNIN_IP_BURST="1000"):
        codes = [
            client.sign_in("mina@example.com", "wrong-password", ip=f"10.0.1.{i}").status for i in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        limited = client.sign_in("mina@example.com", ip="10.0.2.1")  # even the right password
        assert limited.status == 429 and int(limited.headers["retry-after"]) >= 1
    with env(SNACKS_SIGNIN_ACCOUNT_BURST="1000", SNACKS_SIGNIN_IP_BURST="2"):
        codes = [
            client.sign_in(f"user{i}@example.com", "wrong-password", ip="10.9.9.9").status for i in range(3)
        ]
        assert codes == [401, 401, 429]


@pytest.mark.parametrize("path", ["/snacks/users/me", "/snacks/users/me/"])
def test_trailing_slash_is_optional(client, path):
    assert client.call("GET", path).status == 401


def test_bootstrap_admin_emails_sign_up_as_admins(client):
    with env(SNACKS_BOOTSTRAP_ADMINS="boss@example.com, other@example.com"):
        assert client.sign_up("Boss@example.com").json()["role"] == "admin"
        assert client.sign_up("mina@example.com").json()["role"] == "member"
