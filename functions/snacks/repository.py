"""SQL of the snacks capability (schema ``snacks``); loaded lazily by the handlers.

Every rule that concurrency could break is held by the database or a row lock:
* email uniqueness over resigned accounts too (unique index on ``lower(email)``);
* the admin set is locked (``FOR UPDATE``, in id order) before a resignation or promotion;
* a refresh token's family and row are locked before it is spent;
* snack identity: unique index on the normalised name;
* one not-yet-shipped purchase per snack: partial unique index;
* order status: ``transition`` (the one UPDATE of ``status``) locks the order row, and the
  trigger refuses anything else;
* reactions: one row per (snack, user) via the primary key and ``ON CONFLICT``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from opsdeck.db import Driver


def utc(column: str) -> str:
    """A timestamptz as UTC ISO 8601 text, rendered by the server (the driver parses no timestamps)."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


USER_COLUMNS = "id, uid::text AS uid, email, name, role, is_deleted, token_generation, created_at"

# ---------------------------------------------------------------------- accounts


def insert_user(conn: Connection, email: str, name: str, password_hash: str, role: str) -> dict | None:
    row = (
        conn.execute(
            text(
                f"""INSERT INTO snacks.users (email, name, password_hash, role)
                VALUES (:email, :name, :hash, :role)
                ON CONFLICT (email_key) DO NOTHING RETURNING {USER_COLUMNS}"""
            ),
            {"email": email, "name": name, "hash": password_hash, "role": role},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def user_by_email(conn: Connection, email: str) -> dict | None:
    row = (
        conn.execute(
            text(f"SELECT {USER_COLUMNS}, password_hash FROM snacks.users WHERE email_key = lower(:email)"),
            {"email": email},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def user_by_uid(conn: Connection, uid: str) -> dict | None:
    row = (
        conn.execute(
            text(f"SELECT {USER_COLUMNS} FROM snacks.users WHERE uid = CAST(:uid AS uuid)"), {"uid": uid}
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(
        text("UPDATE snacks.users SET password_hash = :h WHERE id = :id"), {"h": password_hash, "id": user_id}
    )


def list_users(conn: Connection, limit: int, after_id: int | None) -> list[dict]:
    rows = conn.execute(
        text(
            f"""SELECT {USER_COLUMNS} FROM snacks.users WHERE id > :after
                ORDER BY id LIMIT :limit"""
        ),
        {"after": after_id or 0, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def lock_admins_and(conn: Connection, user_id: int) -> list[dict]:
    """Lock every active admin and ``user_id`` (id order: no deadlock between two of these)."""
    rows = conn.execute(
        text(
            """SELECT id, role, is_deleted FROM snacks.users
               WHERE (role = 'admin' AND NOT is_deleted) OR id = :id ORDER BY id FOR UPDATE"""
        ),
        {"id": user_id},
    ).mappings()
    return [dict(r) for r in rows]


def lock_admins_and_uid(conn: Connection, uid: str) -> list[dict]:
    rows = conn.execute(
        text(
            """SELECT id, uid::text AS uid, role, is_deleted FROM snacks.users
               WHERE (role = 'admin' AND NOT is_deleted) OR uid = CAST(:uid AS uuid) ORDER BY id FOR UPDATE"""
        ),
        {"uid": uid},
    ).mappings()
    return [dict(r) for r in rows]


def promote(conn: Connection, user_id: int) -> dict:
    row = (
        conn.execute(
            text(f"UPDATE snacks.users SET role = 'admin' WHERE id = :id RETURNING {USER_COLUMNS}"),
            {"id": user_id},
        )
        .mappings()
        .one()
    )
    return dict(row)


def resign(conn: Connection, user_id: int) -> None:
    """Soft delete; every token of the user ends (generation bump, families revoked)."""
    conn.execute(
        text(
            """UPDATE snacks.users SET is_deleted = true, deleted_at = now(),
                      token_generation = token_generation + 1
               WHERE id = :id"""
        ),
        {"id": user_id},
    )
    conn.execute(
        text(
            """UPDATE snacks.refresh_families SET revoked_at = now(), revoked_reason = 'resigned'
               WHERE user_id = :id AND revoked_at IS NULL"""
        ),
        {"id": user_id},
    )


def start_family(conn: Connection, user_id: int, jti: str, expires_at: dt.datetime) -> str:
    family = str(uuid.uuid4())
    conn.execute(
        text(
            """WITH f AS (INSERT INTO snacks.refresh_families (id, user_id)
                          VALUES (CAST(:fam AS uuid), :user) RETURNING id)
               INSERT INTO snacks.refresh_tokens (jti, family_id, expires_at)
               SELECT CAST(:jti AS uuid), f.id, :exp FROM f"""
        ),
        {"fam": family, "user": user_id, "jti": jti, "exp": expires_at},
    )
    return family


def lock_refresh(conn: Connection, jti: str) -> dict | None:
    """The refresh token with its family and user, family and token rows locked."""
    row = (
        conn.execute(
            text(
                """SELECT t.jti::text AS jti, t.used_at, t.expires_at, f.id::text AS family,
                      f.revoked_at, u.id AS user_id, u.uid::text AS user_uid, u.role, u.is_deleted,
                      u.token_generation
               FROM snacks.refresh_tokens t
               JOIN snacks.refresh_families f ON f.id = t.family_id
               JOIN snacks.users u ON u.id = f.user_id
               WHERE t.jti = CAST(:jti AS uuid)
               FOR UPDATE OF f, t"""
            ),
            {"jti": jti},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def spend_refresh(conn: Connection, jti: str, family: str, new_jti: str, expires_at: dt.datetime) -> None:
    conn.execute(
        text(
            """WITH used AS (UPDATE snacks.refresh_tokens SET used_at = now()
                             WHERE jti = CAST(:jti AS uuid) RETURNING family_id)
               INSERT INTO snacks.refresh_tokens (jti, family_id, expires_at)
               SELECT CAST(:new AS uuid), family_id, :exp FROM used"""
        ),
        {"jti": jti, "new": new_jti, "exp": expires_at},
    )
    del family


def revoke_family(conn: Connection, family: str, reason: str) -> None:
    conn.execute(
        text(
            """UPDATE snacks.refresh_families SET revoked_at = now(), revoked_reason = :reason
               WHERE id = CAST(:fam AS uuid) AND revoked_at IS NULL"""
        ),
        {"fam": family, "reason": reason},
    )


# ------------------------------------------------------------------------ snacks

SNACK_COLUMNS = (
    "s.id, s.uid::text AS uid, s.name, s.purchase_url, s.image_url, s.image_key, s.description, "
    "s.currency, s.price, s.like_count, s.hate_count, s.created_by, "
    "to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at"
)


def insert_snack(conn: Connection, values: dict[str, Any], created_by: int) -> dict | None:
    row = (
        conn.execute(
            text(
                f"""INSERT INTO snacks.snacks AS s
                    (name, purchase_url, image_url, description, currency, price, created_by)
                VALUES (:name, :purchase_url, :image_url, :description, :currency, :price, :by)
                ON CONFLICT (name_key) DO NOTHING RETURNING {SNACK_COLUMNS}"""
            ),
            {**values, "by": created_by},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def snack_by_name(conn: Connection, name: str) -> dict | None:
    row = (
        conn.execute(
            text(
                f"""SELECT {SNACK_COLUMNS} FROM snacks.snacks s
                WHERE s.name_key = lower(regexp_replace(:name, '\\s+', '', 'g'))"""
            ),
            {"name": name},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def snack_by_uid(conn: Connection, uid: str) -> dict | None:
    row = (
        conn.execute(
            text(f"SELECT {SNACK_COLUMNS} FROM snacks.snacks s WHERE s.uid = CAST(:uid AS uuid)"),
            {"uid": uid},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def snacks_by_uid(conn: Connection, uids: Sequence[str]) -> list[dict]:
    rows = conn.execute(
        text(f"SELECT {SNACK_COLUMNS} FROM snacks.snacks s WHERE s.uid = ANY(CAST(:uids AS uuid[]))"),
        {"uids": list(uids)},
    ).mappings()
    return [dict(r) for r in rows]


# The account check (live, same token generation), folded into the list statement.
_ME = """me AS (SELECT id FROM snacks.users
               WHERE uid = CAST(:user_uid AS uuid) AND NOT is_deleted AND token_generation = :gen)"""


def snack_page(
    conn: Connection, user_uid: str, gen: Any, limit: int, after: tuple[float, int, int] | None
) -> tuple[int | None, list[dict]]:
    """(the caller's id, or None when the account is not live; the page): snacks in list order
    (ratio, likes, age) with the caller's reaction — one statement: the account check, one range
    scan of ``snacks_rank``, a primary-key probe of ``reactions`` per row, the page as one JSON
    value (the driver decodes one column, not fifteen per row)."""
    keyset = ""
    params: dict[str, Any] = {"limit": limit, "user_uid": user_uid, "gen": gen}
    if after is not None:
        keyset = "AND (-s.rank_ratio, -s.like_count, s.id) > (:r, :l, :id)"
        params.update(r=after[0], l=after[1], id=after[2])
    row = conn.execute(
        text(
            f"""WITH {_ME},
                page AS (
                    SELECT s.id, s.uid::text AS uid, s.name, s.purchase_url, s.image_url, s.image_key,
                           s.description, s.currency, s.price::text AS price, s.like_count, s.hate_count,
                           {utc("s.created_at")} AS created_at, (-s.rank_ratio)::text AS neg_ratio,
                           r.kind AS my_reaction
                    FROM snacks.snacks s
                    LEFT JOIN snacks.reactions r ON r.snack_id = s.id AND r.user_id = (SELECT id FROM me)
                    WHERE EXISTS (SELECT 1 FROM me) {keyset}
                    ORDER BY -s.rank_ratio, -s.like_count, s.id LIMIT :limit)
                SELECT (SELECT id FROM me),
                       (SELECT json_agg(page ORDER BY neg_ratio::float8, -like_count, id) FROM page)"""
        ),
        params,
    ).one()
    return row[0], row[1] or []


def lock_snack(conn: Connection, uid: str) -> dict | None:
    row = (
        conn.execute(
            text("SELECT id, created_by FROM snacks.snacks WHERE uid = CAST(:uid AS uuid) FOR UPDATE"),
            {"uid": uid},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def set_image_key(conn: Connection, snack_id: int, image_key: str) -> None:
    conn.execute(
        text("UPDATE snacks.snacks SET image_key = :k WHERE id = :id"), {"k": image_key, "id": snack_id}
    )


# --------------------------------------------------------------------- reactions

# One call decides who, which snack, and what changed: ``snacks.react`` (PL/pgSQL, migration
# snacks_0003) checks the account (live, same token generation), locks the snack ``FOR KEY SHARE``
# until the transaction ends and inserts, switches or deletes the reaction. Its statements are
# planned once per session; the same statement sent as SQL was parsed and planned on every request
# (more than half of its server time).

# A reaction commits durably, like everything else: an acknowledged reaction is never lost.
# (``synchronous_commit = off`` would take ~3.8 ms off the toggle's p95 on the reference VM, at
# the price of losing the last acknowledged reactions if PostgreSQL crashes; BENCHMARKS.md.)

#: sent through ``opsdeck.db.driver_transaction`` (pg8000's ``%s`` placeholders)
REACT = (
    "SELECT * FROM snacks.react(CAST(%s AS uuid), CAST(%s AS integer), CAST(%s AS uuid), CAST(%s AS text))"
)
COUNT = """SELECT count(*) FILTER (WHERE kind = 'like'), count(*) FILTER (WHERE kind = 'hate')
           FROM snacks.reactions WHERE snack_id = %s"""

#: ``snacks.react``'s outcome when setting a kind → ``react``'s (True inserted, False switched)
_SET_OUTCOME = {"inserted": True, "switched": False, None: None}


def react(driver: Driver, user_uid: str, gen: Any, snack_uid: str, kind: str | None) -> tuple:
    """(user id or None when the account is not live, snack id or None, outcome): outcome is
    True inserted / False switched / None the same as before — or, to cancel (``kind=None``),
    the kind removed / None when there was none."""
    user_id, snack_id, outcome = driver.one(REACT, (user_uid, gen, snack_uid, kind))
    return user_id, snack_id, outcome if kind is None else _SET_OUTCOME[outcome]


def count_reactions(driver: Driver, snack_id: int) -> tuple[int, int]:
    likes, hates = driver.one(COUNT, (snack_id,))
    return int(likes), int(hates)


def my_reactions(conn: Connection, user_id: int, snack_ids: Sequence[int]) -> dict[int, str]:
    if not snack_ids:
        return {}
    rows = conn.execute(
        text("SELECT snack_id, kind FROM snacks.reactions WHERE user_id = :u AND snack_id = ANY(:ids)"),
        {"u": user_id, "ids": list(snack_ids)},
    )
    return {r[0]: r[1] for r in rows}


def lock_and_count(conn: Connection, snack_ids: Sequence[int] | None) -> list[tuple[int, int, int]]:
    """Lock snacks ``FOR UPDATE`` (all when ``None``) and count their reactions exactly."""
    where = "" if snack_ids is None else "WHERE s.id = ANY(:ids)"
    conn.execute(
        text(f"SELECT s.id FROM snacks.snacks s {where} ORDER BY s.id FOR UPDATE"),
        {"ids": list(snack_ids or [])},
    )
    rows = conn.execute(
        text(
            f"""SELECT s.id,
                       count(r.kind) FILTER (WHERE r.kind = 'like') AS likes,
                       count(r.kind) FILTER (WHERE r.kind = 'hate') AS hates
                FROM snacks.snacks s LEFT JOIN snacks.reactions r ON r.snack_id = s.id
                {where} GROUP BY s.id ORDER BY s.id"""
        ),
        {"ids": list(snack_ids or [])},
    )
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]


def write_counts(conn: Connection, values: Sequence[tuple[int, int, int]]) -> int:
    """Statistics columns from ``(id, likes, hates)``: one set-based UPDATE."""
    if not values:
        return 0
    result = conn.execute(
        text(
            """UPDATE snacks.snacks s SET like_count = v.l, hate_count = v.h, counts_flushed_at = now()
               FROM unnest(CAST(:ids AS bigint[]), CAST(:ls AS int[]), CAST(:hs AS int[])) AS v(id, l, h)
               WHERE s.id = v.id AND (s.like_count, s.hate_count) IS DISTINCT FROM (v.l, v.h)"""
        ),
        {"ids": [v[0] for v in values], "ls": [v[1] for v in values], "hs": [v[2] for v in values]},
    )
    return result.rowcount


def existing_snack_ids(conn: Connection, snack_ids: Sequence[int]) -> list[int]:
    rows = conn.execute(text("SELECT id FROM snacks.snacks WHERE id = ANY(:ids)"), {"ids": list(snack_ids)})
    return [r[0] for r in rows]


# ------------------------------------------------------------------------ orders


ORDER_VIEW = f"""
    SELECT o.id, o.uid::text AS uid, o.status, o.estimated_arrival::text AS estimated_arrival, o.note,
           {utc("o.created_at")} AS created_at, {utc("o.updated_at")} AS updated_at,
           {utc("o.status_changed_at")} AS status_changed_at,
           u.uid::text AS user_uid, u.name AS user_name, o.user_id,
           coalesce((SELECT json_agg(json_build_object(
                        'snack_uid', s.uid, 'name', s.name, 'quantity', p.quantity,
                        'unit_price', p.unit_price::text, 'currency', p.currency,
                        'purchase_url', s.purchase_url, 'image_url', s.image_url,
                        'description', s.description) ORDER BY p.id)
                     FROM snacks.purchases p JOIN snacks.snacks s ON s.id = p.snack_id
                     WHERE p.order_id = o.id), '[]'::json) AS items
    FROM snacks.orders o JOIN snacks.users u ON u.id = o.user_id
"""


def insert_order(conn: Connection, user_id: int, note: str) -> dict:
    row = (
        conn.execute(
            text(
                "INSERT INTO snacks.orders (user_id, note) VALUES (:u, :note) RETURNING id, uid::text AS uid"
            ),
            {"u": user_id, "note": note},
        )
        .mappings()
        .one()
    )
    return dict(row)


def insert_purchases(conn: Connection, order_id: int, items: Sequence[tuple[int, int, Decimal, str]]) -> None:
    """``(snack id, quantity, unit price, currency)`` rows in one statement (the trigger adds
    the order's created_at and status)."""
    conn.execute(
        text(
            """INSERT INTO snacks.purchases (order_id, snack_id, quantity, unit_price, currency, ordered_at)
               SELECT :o, v.s, v.q, v.p, v.c, now()
               FROM unnest(CAST(:s AS bigint[]), CAST(:q AS int[]), CAST(:p AS numeric[]),
                           CAST(:c AS text[])) AS v(s, q, p, c)"""
        ),
        {
            "o": order_id,
            "s": [i[0] for i in items],
            "q": [i[1] for i in items],
            "p": [i[2] for i in items],
            "c": [i[3] for i in items],
        },
    )


def delete_purchases(conn: Connection, order_id: int) -> None:
    conn.execute(text("DELETE FROM snacks.purchases WHERE order_id = :o"), {"o": order_id})


def open_snacks(conn: Connection, snack_ids: Sequence[int], except_order: int | None) -> list[str]:
    """Names of those snacks already in a not-yet-shipped order (other than ``except_order``)."""
    rows = conn.execute(
        text(
            """SELECT DISTINCT s.name FROM snacks.purchases p JOIN snacks.snacks s ON s.id = p.snack_id
               WHERE p.snack_id = ANY(:ids) AND p.order_status IN ('created', 'approved', 'ordered')
                 AND p.order_id <> :except ORDER BY s.name"""
        ),
        {"ids": list(snack_ids), "except": except_order or 0},
    )
    return [r[0] for r in rows]


def lock_order(conn: Connection, uid: str) -> dict | None:
    row = (
        conn.execute(
            text(
                """SELECT id, uid::text AS uid, user_id, status, estimated_arrival FROM snacks.orders
               WHERE uid = CAST(:uid AS uuid) FOR UPDATE"""
            ),
            {"uid": uid},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def disliked_snacks(conn: Connection, order_id: int) -> list[str]:
    """Snacks of the order with more hates than likes, from the reaction table (now)."""
    rows = conn.execute(
        text(
            """SELECT s.name FROM snacks.purchases p JOIN snacks.snacks s ON s.id = p.snack_id
               CROSS JOIN LATERAL (
                   SELECT count(*) FILTER (WHERE r.kind = 'like') AS likes,
                          count(*) FILTER (WHERE r.kind = 'hate') AS hates
                   FROM snacks.reactions r WHERE r.snack_id = p.snack_id) c
               WHERE p.order_id = :o AND c.hates > c.likes ORDER BY s.name"""
        ),
        {"o": order_id},
    )
    return [r[0] for r in rows]


def write_status(
    conn: Connection, order: dict, target: str, estimated_arrival: dt.date | None, actor_id: int
) -> None:
    """THE only statement that changes an order's status (called by ``service.transition``)."""
    conn.execute(text("SELECT set_config('snacks.transition', :uid, true)"), {"uid": order["uid"]})
    conn.execute(
        text(
            """UPDATE snacks.orders SET status = :to, updated_at = now(),
                      estimated_arrival = CASE WHEN :to IN ('ordered', 'shipping') THEN :eta
                                               ELSE estimated_arrival END
               WHERE id = :id"""
        ),
        {"to": target, "eta": estimated_arrival, "id": order["id"]},
    )
    conn.execute(text("SELECT set_config('snacks.transition', '', true)"))
    conn.execute(
        text(
            """INSERT INTO snacks.order_status_log
                   (order_id, from_status, to_status, estimated_arrival, changed_by)
               VALUES (:id, :from, :to, :eta, :by)"""
        ),
        {"id": order["id"], "from": order["status"], "to": target, "eta": estimated_arrival, "by": actor_id},
    )


def touch_order(conn: Connection, order_id: int, note: str | None) -> None:
    conn.execute(
        text("UPDATE snacks.orders SET updated_at = now(), note = coalesce(:note, note) WHERE id = :id"),
        {"id": order_id, "note": note},
    )


def order_view(conn: Connection, uid: str) -> dict | None:
    row = (
        conn.execute(text(ORDER_VIEW + " WHERE o.uid = CAST(:uid AS uuid)"), {"uid": uid}).mappings().first()
    )
    return dict(row) if row else None


def order_page(
    conn: Connection,
    *,
    user_id: int | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    status: str | None,
    limit: int,
    after: tuple[str, int] | None,
) -> list[dict]:
    """Orders newest first (keyset on created_at, id), optionally one user's / a period / a status;
    the page comes back as one JSON value (the driver decodes one column, not twelve per row)."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if user_id is not None:
        where.append("o.user_id = :user")
        params["user"] = user_id
    if start is not None:
        where.append("o.created_at >= :start AND o.created_at < :end")
        params.update(start=start, end=end)
    if status is not None:
        where.append("o.status = :status")
        params["status"] = status
    if after is not None:
        where.append("(o.created_at, o.id) < (CAST(:at AS timestamptz), :id)")
        params.update(at=after[0], id=after[1])
    page = (
        ORDER_VIEW + " WHERE " + " AND ".join(where) + " ORDER BY o.created_at DESC, o.id DESC LIMIT :limit"
    )
    # created_at is fixed-width UTC text: its text order is its time order
    rows = conn.execute(
        text(f"SELECT json_agg(p ORDER BY p.created_at DESC, p.id DESC) FROM ({page}) p"), params
    ).scalar()
    return rows or []


# -------------------------------------------------------------------- statistics

# One index-only range scan of ``purchases_period_counted`` (the period's purchases that count,
# i.e. not canceled, with integer ``line_cents``), grouped once by (snack, currency); the
# currency totals (two or three groups) and the top snacks (one top-N heapsort, names by
# primary key for those rows only) come from those groups. Integer sums instead of
# ``numeric`` row arithmetic took the statement from ~19 to ~12 ms (median, 12,000 purchases
# in ~7,000 groups; BENCHMARKS.md).
STATS = text(
    """
    WITH g AS (
        SELECT snack_id, currency, sum(quantity) AS qty, sum(line_cents) AS cents, count(*) AS n
        FROM snacks.purchases
        WHERE ordered_at >= :start AND ordered_at < :end AND order_status <> 'canceled'
        GROUP BY snack_id, currency
    ), by_status AS (
        SELECT coalesce(json_object_agg(status, n), '{}'::json) AS v
        FROM (SELECT status, count(*) AS n FROM snacks.orders
              WHERE created_at >= :start AND created_at < :end GROUP BY status) t
    ), money AS (
        SELECT coalesce(json_object_agg(currency, json_build_object(
                   'amount', (cents / 100.0)::numeric(24, 2)::text, 'snack_quantity', qty)), '{}'::json) AS v,
               coalesce(sum(qty), 0) AS qty
        FROM (SELECT currency, sum(cents) AS cents, sum(qty) AS qty FROM g GROUP BY currency) t
    ), top AS (
        SELECT coalesce(json_agg(json_build_object(
                   'snack_uid', t.uid, 'name', t.name, 'quantity', t.qty, 'orders', t.n,
                   'currency', t.currency) ORDER BY t.qty DESC, t.name), '[]'::json) AS v
        FROM (SELECT g.*, (SELECT s.uid FROM snacks.snacks s WHERE s.id = g.snack_id) AS uid,
                     (SELECT s.name FROM snacks.snacks s WHERE s.id = g.snack_id) AS name
              FROM (SELECT snack_id, currency, qty, n FROM g
                    ORDER BY qty DESC, snack_id LIMIT :snack_limit) g) t
    )
    SELECT by_status.v AS by_status, money.v AS by_currency, money.qty AS snack_quantity, top.v AS snacks
    FROM by_status, money, top
    """
)


def statistics(conn: Connection, start: dt.datetime, end: dt.datetime, snack_limit: int) -> dict:
    row = conn.execute(STATS, {"start": start, "end": end, "snack_limit": snack_limit}).mappings().one()
    return dict(row)
