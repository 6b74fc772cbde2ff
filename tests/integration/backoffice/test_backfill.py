"""Backfill: ``opsdeck backoffice backfill FILE`` locally and via the function, the function itself."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from functions.backoffice import backfill
from functions.backoffice.simulator import OltpSimulator, deliver
from opsdeck_cli.main import main
from tests.integration.backoffice.helpers import consume, records
from tests.support import LambdaContext, load_event


def counts(conn) -> tuple[int, int, int]:
    return conn.execute(
        text(
            "SELECT (SELECT count(*) FROM bo.ledger_entries WHERE deleted_at IS NULL), "
            "(SELECT count(*) FROM bo.payment_orders), "
            "(SELECT count(*) FROM bo.payment_ledger_pairs WHERE pairing_status = 'COMPLETE')"
        )
    ).one()


def test_cli_backfill_is_harmless_to_rerun(db, tmp_path, capsys):
    snapshot = tmp_path / "snapshot.jsonl"
    assert (
        main(["backoffice", "generate", "--orders", "60", "--seed", "5", "--snapshot", "-o", str(snapshot)])
        == 0
    )
    lines = snapshot.read_text().splitlines()
    sim = OltpSimulator(seed=5)
    sim.run(60)
    assert len(lines) == len(sim.rows)

    assert main(["backoffice", "backfill", str(snapshot), "--chunk-size", "50"]) == 0
    first = capsys.readouterr().out
    assert f"{len(lines)} changes, {len(lines)} written, 0 skipped" in first
    live_legs = sum(1 for (table, _) in sim.rows if table == "ledger_entries")
    loaded = counts(db)
    assert loaded[:2] == (live_legs, 60)
    assert loaded[2] > 0

    assert main(["backoffice", "backfill", str(snapshot)]) == 0
    assert f"0 written, {len(lines)} skipped" in capsys.readouterr().out
    assert counts(db) == loaded


def test_backfill_then_stream_converges(db, tmp_path):
    """A snapshot taken mid-stream, then the whole stream replayed: the live rows win where newer."""
    sim = OltpSimulator(seed=8)
    early = sim.run(30)
    snapshot = tmp_path / "mid.jsonl"
    snapshot.write_text("".join(json.dumps(c) + "\n" for c in sim.snapshot()))
    late = sim.run(10)
    assert main(["backoffice", "backfill", str(snapshot)]) == 0
    stream = deliver(early + late, duplicate_rate=0.2, reorder_window=30)
    assert consume(records(stream)) == []
    rows = dict(
        db.execute(text("SELECT tx_id, status FROM bo.ledger_entries WHERE deleted_at IS NULL")).all()
    )
    assert rows == {key: row["status"] for (table, key), row in sim.rows.items() if table == "ledger_entries"}


def test_invalid_lines_are_listed_by_number(db, tmp_path, capsys):
    good = OltpSimulator(seed=1).run(1)[0]
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + "{broken\n" + json.dumps({**good, "op": "x"}) + "\n")
    assert main(["backoffice", "backfill", str(path)]) == 1
    captured = capsys.readouterr()
    assert "line 3: invalid body" in captured.err
    assert "line 4: invalid payment_orders: Input tag 'x' found using 'op'" in captured.err
    assert "3 changes, 1 written, 0 skipped (duplicate or older), 2 invalid" in captured.out


def test_missing_file_is_one_line(capsys):
    assert main(["backoffice", "backfill", "/nonexistent.jsonl"]) == 2
    assert capsys.readouterr().err.strip() == "opsdeck: error: /nonexistent.jsonl: no such file"


def test_backfill_function_with_the_sample_event(db, capsys):
    result = backfill.handler(load_event("backoffice-backfill/snapshot-chunk.json"), LambdaContext())
    assert result["received"] == result["written"] == 3
    assert result["invalid"] == [] and result["pairs_completed"] == 1
    again = backfill.handler(load_event("backoffice-backfill/snapshot-chunk.json"), LambdaContext())
    assert (again["written"], again["skipped"]) == (0, 3)


@pytest.mark.parametrize("event", [{}, {"changes": "x"}, {"changes": [], "offset": -1}])
def test_backfill_function_refuses_a_bad_event(event):
    from opsdeck.errors import InvalidInput

    with pytest.raises(InvalidInput):
        backfill.handler(event, LambdaContext())


def test_cli_backfill_through_the_function_sends_numbered_chunks(aws, tmp_path, capsys):
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from opsdeck import aws as opsdeck_aws

    sim = OltpSimulator(seed=2)
    sim.run(5)
    lines = [json.dumps(c) for c in sim.snapshot()]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")

    client = opsdeck_aws.client("lambda")
    stub = Stubber(client)
    chunk = 4
    for offset in range(0, len(lines), chunk):
        sent = lines[offset : offset + chunk]
        answer = json.dumps(
            {"received": len(sent), "written": len(sent), "skipped": 0, "invalid": []}
        ).encode()
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(answer), len(answer))},
            {
                "FunctionName": "opsdeck-dev-backoffice-backfill",
                "InvocationType": "RequestResponse",
                "Payload": json.dumps({"changes": sent, "offset": offset}).encode(),
            },
        )
    with stub:
        code = main(
            [
                "backoffice",
                "backfill",
                str(path),
                "--function",
                "opsdeck-dev-backoffice-backfill",
                "--chunk-size",
                "4",
            ]
        )
    stub.assert_no_pending_responses()
    assert code == 0
    assert f"→ function opsdeck-dev-backoffice-backfill: {len(lines)} changes" in capsys.readouterr().out


def test_cli_reports_a_function_error_in_one_line(aws, tmp_path, capsys):
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from opsdeck import aws as opsdeck_aws

    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(OltpSimulator(seed=1).run(1)[0]) + "\n")
    client = opsdeck_aws.client("lambda")
    answer = json.dumps(
        {"errorMessage": "database unavailable: timeout", "errorType": "Unavailable"}
    ).encode()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": StreamingBody(io.BytesIO(answer), len(answer)),
            },
        )
        assert main(["backoffice", "backfill", str(path), "--function", "bf"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "opsdeck: error: bf failed at line 1: database unavailable: timeout"
    )
