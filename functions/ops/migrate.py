"""The deploy-time migration function.

CloudFormation calls it through a custom resource (``infra_cdk``) before the new function
versions take traffic: Create/Update run ``alembic upgrade heads``, Delete does nothing
(data outlives stacks). ``opsdeck invoke ops-migrate`` runs the same code locally.
A failed upgrade raises, so the deployment fails and rolls back. It is the only function that
connects as the master user; it creates the capability roles and sets each runtime role's
password from the role's secret (``DATABASE_ROLE_SECRET_IDS``), which RDS Proxy logs in with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opsdeck.observability import entry, logger

PHYSICAL_ID = "opsdeck-migrations"


@entry("deploy")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_type = event.get("RequestType", "Update")
    if request_type == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"unknown RequestType {request_type!r}")
    started = datetime.now(UTC)
    heads = upgrade_and_record(trigger="deploy" if "StackId" in event else "invoke", started=started)
    logger.info("migrated", extra={"heads": heads})
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Heads": ",".join(heads)}}


def role_passwords() -> dict[str, str]:
    """capability → its runtime role's password, from the secrets RDS Proxy also reads
    (``DATABASE_ROLE_SECRET_IDS``, a JSON object capability → secret id; absent locally)."""
    import json
    import os

    from opsdeck.errors import ConfigError
    from opsdeck.settings import secret

    raw = os.environ.get("DATABASE_ROLE_SECRET_IDS") or "{}"
    try:
        ids = json.loads(raw)
    except ValueError:
        raise ConfigError("DATABASE_ROLE_SECRET_IDS must be a JSON object capability → secret id") from None
    passwords = {}
    for capability, secret_id in dict(ids).items():
        value = secret(secret_id)
        if "password" not in value:
            raise ConfigError(f"secret {secret_id!r} lacks the password field")
        passwords[capability] = value["password"]
    return passwords


def upgrade_and_record(*, trigger: str, started: datetime) -> list[str]:
    from sqlalchemy import text

    from opsdeck import db
    from opsdeck.migrations import upgrade

    heads = upgrade(passwords=role_passwords())
    with db.transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO ops.migration_runs (started_at, finished_at, heads, trigger) "
                "VALUES (:started, now(), :heads, :trigger)"
            ),
            {"started": started, "heads": ",".join(heads), "trigger": trigger},
        )
    return heads
