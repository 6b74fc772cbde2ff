"""The deploy-time migration function.

CloudFormation calls it through a custom resource (``infra_cdk``) before the new function
versions take traffic: Create/Update run ``alembic upgrade heads``, Delete does nothing
(data outlives stacks). ``opsdeck invoke ops-migrate`` runs the same code locally.
A failed upgrade raises, so the deployment fails and rolls back.
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


def upgrade_and_record(*, trigger: str, started: datetime) -> list[str]:
    from sqlalchemy import text

    from opsdeck import db
    from opsdeck.migrations import upgrade

    heads = upgrade()
    with db.transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO ops.migration_runs (started_at, finished_at, heads, trigger) "
                "VALUES (:started, now(), :heads, :trigger)"
            ),
            {"started": started, "heads": ",".join(heads), "trigger": trigger},
        )
    return heads
