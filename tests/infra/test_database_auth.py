"""IAM authentication to RDS Proxy: each function may connect as exactly its capability's user.

* the proxy requires IAM for every user it knows (the master and one per runtime role), each
  with a secret of its own;
* every ``database`` function's ``rds-db:connect`` names only its user
  (``arn:aws:rds-db:<region>:<account>:dbuser:<proxy resource id>/<user>``): its capability's
  runtime role, the master user for the migrator alone; other functions have none;
* no function environment carries a password or a database secret.
"""

from __future__ import annotations

import json

from infra_cdk.data import DATABASE_NAME, MASTER_USER
from infra_cdk.stack import runtime_database_capabilities
from opsdeck.naming import database_role
from tests.infra.conftest import Synth
from tests.infra.test_iam import permissions, role_secret_attachments


def _user_of(resource: str) -> str:
    """The user of an ``rds-db:connect`` resource (``…:dbuser:<proxy id>/<user>`` in a Join)."""
    parsed = json.loads(resource)
    parts = parsed["Fn::Join"][1] if isinstance(parsed, dict) else [parsed]
    last = parts[-1]
    assert isinstance(last, str) and last.startswith("/"), resource
    assert any(isinstance(p, str) and ":dbuser:" in p for p in parts), resource
    return last[1:]


def test_the_proxy_requires_iam_for_the_master_and_every_runtime_role(synth: Synth):
    (proxy,) = synth.of_type("AWS::RDS::DBProxy").values()
    auth = proxy["Properties"]["Auth"]
    assert {a["IAMAuth"] for a in auth} == {"REQUIRED"}
    attachments = role_secret_attachments(synth)
    assert set(attachments) == set(runtime_database_capabilities(synth.functions))
    registered = {json.dumps(a["SecretArn"], sort_keys=True) for a in auth}
    for logical in attachments.values():
        assert json.dumps({"Ref": logical}, sort_keys=True) in registered
    for capability, logical in attachments.items():
        secret = synth.resources[synth.resources[logical]["Properties"]["SecretId"]["Ref"]]
        template = json.loads(secret["Properties"]["GenerateSecretString"]["SecretStringTemplate"])
        assert template["username"] == database_role(DATABASE_NAME, capability, "runtime")
    assert len(auth) == 1 + len(attachments)


def test_each_function_connects_as_exactly_its_capabilitys_user(synth: Synth):
    for f in synth.functions:
        granted = permissions(synth, f.name)
        if not f.database:
            assert "rds-db:connect" not in granted, f.name
            continue
        users = {_user_of(r) for r in granted["rds-db:connect"]}
        expected = MASTER_USER if f.trigger.kind == "deploy" else database_role(DATABASE_NAME, f.capability)
        assert users == {expected}, f.name
        env = synth.lambda_props(f.name)["Environment"]["Variables"]
        assert env["DATABASE_USER"] == expected and env["DATABASE_AUTH"] == "iam"


def test_no_function_holds_a_database_password(synth: Synth):
    master = [
        json.dumps({"Ref": k})
        for k, v in synth.of_type("AWS::SecretsManager::SecretTargetAttachment").items()
        if synth.resources[v["Properties"]["SecretId"]["Ref"]]["Properties"]["Name"]
        == synth.name("secret", "database")
    ]
    assert len(master) == 1
    for f in synth.functions:
        env = synth.lambda_props(f.name)["Environment"]["Variables"]
        assert not {"DATABASE_URL", "DATABASE_SECRET_ID", "DATABASE_PASSWORD"} & set(env), f.name
        assert "password" not in json.dumps(env).lower(), f.name
        readable = permissions(synth, f.name).get("secretsmanager:GetSecretValue", set())
        assert master[0] not in readable, f"{f.name} may read the master secret"
        if f.trigger.kind != "deploy":
            roles = {json.dumps({"Ref": k}) for k in role_secret_attachments(synth).values()}
            assert not readable & roles, f"{f.name} may read a database role's secret"
