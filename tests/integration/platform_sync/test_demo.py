"""``opsdeck local up --demo`` for platform_sync: the demo registers its platforms and the first
minute's jobs show the simulator's behaviours."""

from __future__ import annotations

from functions.platform_sync import demo


def test_demo_registers_platforms_and_jobs_run(local_cloud, capsys):
    demo.seed(local_cloud)
    assert (
        "platform_sync demo: platforms staywell, roomly, bookit, slowstay, closedinn"
        in capsys.readouterr().out
    )
    demo.seed(local_cloud)  # idempotent: the names are taken, nothing is registered twice
    from sqlalchemy import text

    from opsdeck import db

    with db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM platform_sync.platforms")).scalar() == 5
    local_cloud.advance(60)
    local_cloud.run_until_idle(max_seconds=120)
    with db.transaction() as conn:
        rows = conn.execute(
            text(
                "SELECT p.name, count(*) FROM platform_sync.jobs j JOIN platform_sync.platforms p "
                "ON p.id = j.platform_id GROUP BY p.name"
            )
        ).all()
    assert dict(rows) == {"staywell": 2, "roomly": 2, "bookit": 2, "slowstay": 2}
