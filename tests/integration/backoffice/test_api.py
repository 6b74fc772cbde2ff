"""backoffice-api through Mangum with the sample events: lookups, pagination, problems, audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from functions.backoffice import consumer
from tests.integration.backoffice.helpers import audit_rows, call, consume, records, token, with_query
from tests.support import LambdaContext, env, load_event

PROBLEM = "application/problem+json"


@pytest.fixture
def synced(db, jwt_env):
    """The sample consumer batch applied: one settled payment (order + two legs)."""
    consumer.handler(load_event("backoffice-consumer/batch-with-poison.json"), LambdaContext())
    return db


def sample_ids() -> tuple[str, str, str]:
    tx = load_event("backoffice-api/tx.json")["pathParameters"]["tx_id"]
    order = load_event("backoffice-api/payment-order.json")["pathParameters"]["order_id"]
    wallet = load_event("backoffice-api/wallet-tx.json")["pathParameters"]["wallet_id"]
    return tx, order, wallet


def read() -> str:
    return token("ADMIN_READ")


def is_utc(value: str | None) -> bool:
    return value is None or (value.endswith("Z") and datetime.fromisoformat(value).tzinfo is not None)


# ---------------------------------------------------------------- GET /admin/tx


def test_tx_shows_entry_pair_and_order(synced):
    tx_id, order_id, _ = sample_ids()
    r = call("tx.json", bearer=read())
    assert r.status == 200, r
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["tx_id"] == tx_id
    assert body["entry"]["type"] == "PAYMENT" and body["entry"]["status"] == "SETTLED"
    assert isinstance(body["entry"]["amount"], int)
    assert body["pairing_status"] == "COMPLETE"
    assert body["paired_entry"]["type"] == "RECEIVE"
    assert body["paired_tx_id"] == body["paired_entry"]["tx_id"] != tx_id
    assert body["payment_order"]["order_id"] == order_id
    assert body["payer_wallet_id"] == body["entry"]["wallet_id"]
    assert body["receiver_wallet_id"] == body["paired_entry"]["wallet_id"]
    assert body["entry"]["related_type"] == "PAYMENT_ORDER"
    # status groups are UNKNOWN until the mapping is configured (seed 3.5)
    assert body["entry"]["status_group"] == body["payment_order"]["status_group"] == "UNKNOWN"
    assert body["data_lag_sec"] > 0 and is_utc(body["as_of"])
    for ts in ("created_at", "updated_at", "synced_at"):
        assert is_utc(body["entry"][ts])


def test_status_group_mapping_is_configurable(synced):
    groups = {"SUCCESS": ["SETTLED"], "FAIL": ["FAILED"], "IN_PROGRESS": ["CREATED", "PENDING"]}
    with env(BACKOFFICE_STATUS_GROUPS=json.dumps(groups)):
        body = call("tx.json", bearer=read()).json()
    assert body["entry"]["status_group"] == "SUCCESS"
    assert body["payment_order"]["status_group"] == "SUCCESS"


def test_a_broken_status_mapping_is_a_503_naming_it_and_audited(synced):
    with env(BACKOFFICE_STATUS_GROUPS='{"WIN": ["SETTLED"]}'):
        r = call("tx.json", bearer=read())
    assert r.status == 503 and r.headers["content-type"] == PROBLEM
    assert "BACKOFFICE_STATUS_GROUPS" in r.json()["detail"]
    assert audit_rows(synced)[-1]["outcome"] == "error"


def test_incomplete_pair_still_answers(synced):
    leg = {
        "op": "c",
        "after": {
            "tx_id": "lonely-1",
            "wallet_id": "w-9",
            "type": "RECEIVE",
            "amount": 5,
            "currency": "KRW",
            "status": "PENDING",
            "related_id": "po-unknown",
            "created_at": "2026-01-01T00:00:00Z",
        },
        "source": {"table": "ledger_entries", "ts_ms": 1_767_225_600_000, "lsn": 1},
    }
    assert consume(records([leg])) == []
    body = call("tx.json", bearer=read(), path_params={"tx_id": "lonely-1"}).json()
    assert body["pairing_status"] == "INCOMPLETE"
    assert body["paired_entry"] is None and body["payment_order"] is None
    assert body["entry"]["related_type"] == "UNKNOWN"  # no related_type and the order is not known
    assert body["payer_wallet_id"] is None and body["receiver_wallet_id"] == "w-9"


def test_unknown_tx_is_a_404_problem(synced):
    r = call("tx.json", bearer=read(), path_params={"tx_id": "tx-nope"})
    assert r.status == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "https://opsdeck.dev/problems/not-found"
    assert audit_rows(synced, target_id="tx-nope")[0]["outcome"] == "not_found"


def test_a_deleted_tx_is_a_404_that_says_so(synced):
    tx_id, _, _ = sample_ids()
    delete = {
        "op": "d",
        "before": {"tx_id": tx_id},
        "source": {"table": "ledger_entries", "ts_ms": 1_767_225_700_000},
    }
    assert consume(records([delete])) == []
    r = call("tx.json", bearer=read())
    assert r.status == 404 and r.json()["deleted_at"].endswith("Z")


@pytest.mark.parametrize("bad", ["-starts-with-dash", "x" * 65, "semi;colon", "sp%20ace"])
def test_malformed_ids_are_422(synced, bad):
    r = call("tx.json", bearer=read(), path_params={"tx_id": bad})
    assert r.status == 422 and r.headers["content-type"] == PROBLEM, r
    assert audit_rows(synced)[-1]["outcome"] == "invalid"


# ------------------------------------------------------ GET /admin/payment-orders


def test_payment_order_with_entries_and_pairing(synced):
    _, order_id, _ = sample_ids()
    r = call("payment-order.json", bearer=read())
    assert r.status == 200, r
    body = r.json()
    assert body["payment_order"]["status"] == "SETTLED"
    assert sorted(e["type"] for e in body["entries"]) == ["PAYMENT", "RECEIVE"]
    assert body["pairing_status"] == "COMPLETE"
    assert {body["payment_tx_id"], body["receive_tx_id"]} == {e["tx_id"] for e in body["entries"]}
    assert is_utc(body["pair_completed_at"])
    assert audit_rows(synced, target_id=order_id)[0]["result_count"] == 3


def test_payment_order_without_legs_yet(synced):
    order = {
        "op": "c",
        "after": {
            "order_id": "po-new",
            "status": "CREATED",
            "amount": 10,
            "currency": "usd",
            "created_at": 1767225600,
        },
        "source": {"table": "payment_orders", "ts_ms": 1_767_225_600_000, "lsn": 5},
    }
    assert consume(records([order])) == []
    body = call("payment-order.json", bearer=read(), path_params={"order_id": "po-new"}).json()
    assert body["entries"] == [] and body["pairing_status"] == "UNKNOWN"
    assert body["payment_order"]["currency"] == "USD"
    assert body["payment_order"]["created_at"] == "2026-01-01T00:00:00.000000Z"


def test_unknown_payment_order_is_404(synced):
    assert call("payment-order.json", bearer=read(), path_params={"order_id": "po-x"}).status == 404


# -------------------------------------------------------- GET /admin/wallets/…/tx


def wallet_entries(n: int, wallet: str = "w-pages") -> list[dict]:
    base = datetime(2026, 2, 1, tzinfo=UTC)
    return [
        {
            "op": "r",
            "after": {
                "tx_id": f"wt-{i:03d}",
                "wallet_id": wallet,
                "type": "PAYMENT",
                "amount": i,
                "currency": "KRW",
                "status": "SETTLED",
                # pairs of entries share a timestamp: the tx_id breaks the tie
                "created_at": (base + timedelta(seconds=i // 2)).isoformat(),
            },
            "source": {"table": "ledger_entries", "ts_ms": 1_767_225_600_000, "lsn": i},
        }
        for i in range(n)
    ]


def test_wallet_pages_are_newest_first_and_complete(synced):
    assert consume(records(wallet_entries(45))) == []
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "20", **({"cursor": cursor} if cursor else {})}
        r = call(with_query("wallet-tx.json", query), bearer=read(), path_params={"wallet_id": "w-pages"})
        assert r.status == 200, r
        body = r.json()
        pages += 1
        seen += [item["tx_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"wt-{i:03d}" for i in reversed(range(45))]
    assert [row["result_count"] for row in audit_rows(synced, target_id="w-pages")] == [20, 20, 5]


def test_wallet_sample(synced):
    r = call("wallet-tx.json", bearer=read())
    assert r.status == 200 and len(r.json()["items"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "%%%"},
        {"cursor": "bm90LWpzb24"},
        {"cursor": "WyJhIiwxXQ"},
    ],  # the last: a valid audit cursor, not a wallet one
)
def test_wallet_bad_limit_or_cursor_is_422(synced, query):
    r = call(with_query("wallet-tx.json", query), bearer=read())
    assert r.status == 422 and r.headers["content-type"] == PROBLEM, r


def test_unknown_wallet_is_404(synced):
    assert call("wallet-tx.json", bearer=read(), path_params={"wallet_id": "w-none"}).status == 404


# ------------------------------------------------------------- GET /admin/audit


def test_audit_log_needs_admin_audit_and_filters(synced):
    call("tx.json", bearer=token("ADMIN_READ", subject="bob"))
    call("tx.json", bearer=token("ADMIN_READ", subject="carol"), path_params={"tx_id": "missing"})
    call("tx.json")  # no token
    assert call("audit.json", bearer=read()).status == 403

    auditor = token("ADMIN_AUDIT", subject="auditor")
    r = call(with_query("audit.json", {"actor": "bob"}), bearer=auditor)
    assert r.status == 200, r
    items = r.json()["items"]
    assert [(i["actor"], i["target_type"], i["outcome"], i["status"]) for i in items] == [
        ("bob", "tx", "ok", 200)
    ]
    assert items[0]["actor_roles"] == ["ADMIN_READ"] and items[0]["result_count"] == 1
    assert items[0]["ip"] == "127.0.0.1" and items[0]["user_agent"] == "opsdeck-sample/1.0"
    assert is_utc(items[0]["at"])

    by_outcome = call(with_query("audit.json", {"outcome": "unauthenticated"}), bearer=auditor).json()[
        "items"
    ]
    assert [i["actor"] for i in by_outcome] == [None]
    by_target = call(with_query("audit.json", {"target_type": "tx", "target_id": "missing"}), bearer=auditor)
    assert [i["outcome"] for i in by_target.json()["items"]] == ["not_found"]

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert call(with_query("audit.json", {"since": future}), bearer=auditor).json()["items"] == []
    assert call(with_query("audit.json", {"since": "yesterday"}), bearer=auditor).status == 422
    assert call(with_query("audit.json", {"outcome": "maybe"}), bearer=auditor).status == 422


def test_audit_log_pages(synced):
    for _ in range(5):
        call("tx.json", bearer=read())
    auditor = token("ADMIN_AUDIT")
    first = call(with_query("audit.json", {"limit": "3"}), bearer=auditor).json()
    second = call(
        with_query("audit.json", {"limit": "3", "cursor": first["next_cursor"]}), bearer=auditor
    ).json()
    ids = [i["id"] for i in first["items"] + second["items"]]
    # the five lookups, newest first (an audit request's own row is written after its read)
    assert ids == list(range(ids[0], ids[0] - 5, -1))
    assert second["next_cursor"] is None


def test_audit_sample(synced):
    r = call("audit.json", bearer=token("ADMIN_AUDIT"))
    assert r.status == 200
    assert all(i["target_type"] == "tx" for i in r.json()["items"])


# ---------------------------------------------------------------- docs, nothing leaks


def test_docs_and_openapi_are_served(jwt_env):
    assert call("docs.json").status == 200
    spec = call("openapi.json").json()
    assert "/backoffice/admin/tx/{tx_id}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/backoffice/admin/tx/{tx_id}"]["get"]["security"] == [{"bearer": []}]


def test_every_admin_request_is_audited_and_no_token_is_stored(synced):
    bearer = read()
    before = len(audit_rows(synced))
    for sample in ("tx.json", "payment-order.json", "wallet-tx.json"):
        call(sample, bearer=bearer)
    call("audit.json", bearer=bearer)
    call("tx.json", bearer="garbage")
    rows = audit_rows(synced)
    assert len(rows) == before + 5
    dump = json.dumps([{k: str(v) for k, v in r.items()} for r in rows])
    assert bearer not in dump and "garbage" not in dump
    columns = synced.execute(text("SELECT * FROM bo.admin_audit LIMIT 0")).keys()
    assert not {"token", "authorization", "claims"} & set(columns)
