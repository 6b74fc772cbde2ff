"""Migrations run on every deploy that changes them, before the other functions update."""

from __future__ import annotations

from infra_cdk import bundling
from tests.infra.conftest import Synth


def test_custom_resource_runs_the_deploy_function_through_a_provider(synth: Synth):
    (migration,) = synth.of_type("Custom::OpsdeckMigrations").values()
    props = migration["Properties"]
    assert props["MigrationsHash"] == bundling.migrations_hash()
    (proxy_id,) = synth.of_type("AWS::RDS::DBProxy")
    assert props["Database"] == {"Fn::GetAtt": [proxy_id, "Endpoint"]}
    provider_id = props["ServiceToken"]["Fn::GetAtt"][0]
    provider = synth.resources[provider_id]["Properties"]
    assert provider["Environment"]["Variables"]["USER_ON_EVENT_FUNCTION_ARN"] == {
        "Fn::GetAtt": [synth.lambda_id("ops-migrate"), "Arn"]
    }
    # the first deploy migrates only once the proxy can reach the database
    depends = set(migration["DependsOn"])
    (target_group,) = synth.of_type("AWS::RDS::DBProxyTargetGroup")
    assert target_group in depends


def test_migrations_hash_follows_the_migration_scripts(tmp_path, monkeypatch):
    (tmp_path / "migrations" / "versions").mkdir(parents=True)
    (tmp_path / "migrations" / "env.py").write_text("# env\n")
    monkeypatch.setattr(bundling, "ROOT", tmp_path)
    before = bundling.migrations_hash()
    assert bundling.migrations_hash() == before
    (tmp_path / "migrations" / "versions" / "0002_more.py").write_text("revision = 'x'\n")
    assert bundling.migrations_hash() != before


def test_migration_function_code_contains_the_alembic_scripts(real: Synth):
    asset = real.stack.code_asset.path
    assert (asset / "migrations" / "env.py").is_file()
    assert sorted(p.name for p in (asset / "migrations" / "versions").rglob("*.py")) == sorted(
        p.name for p in (bundling.ROOT / "migrations" / "versions").rglob("*.py")
    )
