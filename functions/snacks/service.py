"""The snacks use cases: each one transaction (or two, where a commit must outlive an error),
the domain rules, the tokens and the Redis counts. The HTTP handler calls these and only these.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opsdeck import auth, db
from opsdeck.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized

from . import counters, domain, passwords, repository, tokens

# ---------------------------------------------------------------------- accounts

SIGNIN_FAILED = "No active account found with the given credentials"


class EmailResigned(Conflict):
    slug, title = "email-resigned", "Email of a resigned account"


class EmailTaken(Conflict):
    slug, title = "email-taken", "Email already registered"


class LastAdmin(Conflict):
    slug, title = "last-admin", "Last remaining admin"


@dataclass(frozen=True)
class User:
    id: int
    uid: str
    role: str
    name: str
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def bootstrap_admins() -> frozenset[str]:
    raw = os.environ.get("SNACKS_BOOTSTRAP_ADMINS", "")
    return frozenset(e.strip().lower() for e in raw.split(",") if e.strip())


def sign_up(email: str, password: str, name: str) -> dict:
    role = "admin" if email.lower() in bootstrap_admins() else "member"
    hashed = passwords.hash_password(password)
    with db.transaction() as conn:
        row = repository.insert_user(conn, email, name.strip(" \t\r\n\f\v"), hashed, role)
        if row is None:
            existing = repository.user_by_email(conn, email)
            if existing is not None and existing["is_deleted"]:
                raise EmailResigned(
                    "this email belongs to an account that resigned; it cannot be used to sign up again"
                )
            raise EmailTaken("an account with this email already exists")
    return row


def _bucket(name: str, rate_env: str, burst_env: str, default_rate: float, default_burst: int):
    from opsdeck import cache
    from opsdeck.http import TokenBucket

    rate = float(os.environ.get(rate_env, default_rate))
    burst = int(os.environ.get(burst_env, default_burst))
    return TokenBucket(cache.client(), name, rate, burst)


def check_signin_rate(email: str, client_ip: str | None) -> None:
    """Per account (5 at once, then one a minute) and per address (30, then one every 2 s)."""
    account = hashlib.sha256(email.lower().encode()).hexdigest()[:32]
    buckets = [
        _bucket(
            f"snacks:signin:acct:{account}",
            "SNACKS_SIGNIN_ACCOUNT_RATE",
            "SNACKS_SIGNIN_ACCOUNT_BURST",
            1 / 60,
            5,
        )
    ]
    if client_ip:
        buckets.append(
            _bucket(
                f"snacks:signin:ip:{client_ip}", "SNACKS_SIGNIN_IP_RATE", "SNACKS_SIGNIN_IP_BURST", 0.5, 30
            )
        )
    for bucket in buckets:
        wait = bucket.try_acquire()
        if wait > 0:
            raise RateLimited("too many sign-in attempts; try again later", retry_after_s=wait)


def _pair(conn: Any, user_id: int, user_uid: str, role: str, generation: int, family: str | None) -> dict:
    now = int(time.time())
    jti = str(uuid.uuid4())
    exp = now + tokens.refresh_ttl_s()
    expires_at = dt.datetime.fromtimestamp(exp, dt.UTC)
    if family is None:
        family = repository.start_family(conn, user_id, jti, expires_at)
    return {
        "jti": jti,
        "expires_at": expires_at,
        "access": tokens.issue_access(user_uid, role, generation, now=now),
        "refresh": tokens.issue_refresh(user_uid, generation, family, jti, exp, now),
    }


def sign_in(email: str, password: str, client_ip: str | None) -> dict:
    check_signin_rate(email, client_ip)
    with db.transaction() as conn:
        user = repository.user_by_email(conn, email)
    live = user is not None and not user["is_deleted"]
    if not passwords.verify(user["password_hash"] if live else None, password):
        raise Unauthorized(SIGNIN_FAILED)
    assert user is not None
    with db.transaction() as conn:
        if passwords.needs_rehash(user["password_hash"]):
            repository.set_password_hash(conn, user["id"], passwords.hash_password(password))
        pair = _pair(conn, user["id"], user["uid"], user["role"], user["token_generation"], None)
    return {"access": pair["access"], "refresh": pair["refresh"]}


def refresh(token: str) -> dict:
    principal = auth.verify(token, tokens.provider("refresh"))
    claims = principal.claims
    jti, family, gen = claims.get("jti"), claims.get("fam"), claims.get("gen")
    if claims.get("token_type") != "refresh" or not isinstance(jti, str) or not isinstance(family, str):
        raise Unauthorized("not a refresh token")
    reused = False
    with db.transaction() as conn:
        row = repository.lock_refresh(conn, jti)
        if row is None or row["family"] != family:
            raise Unauthorized("unknown refresh token")
        if row["revoked_at"] is not None:
            raise Unauthorized("refresh token revoked")
        if row["is_deleted"] or row["token_generation"] != gen:
            raise Unauthorized("refresh token revoked")
        if row["used_at"] is not None:
            # reuse of a spent token: someone holds a copy; end the whole family (committed)
            repository.revoke_family(conn, family, "reuse")
            reused = True
        else:
            now = int(time.time())
            new_jti = str(uuid.uuid4())
            exp = now + tokens.refresh_ttl_s()
            repository.spend_refresh(conn, jti, family, new_jti, dt.datetime.fromtimestamp(exp, dt.UTC))
            access = tokens.issue_access(row["user_uid"], row["role"], row["token_generation"], now=now)
            new_refresh = tokens.issue_refresh(
                row["user_uid"], row["token_generation"], family, new_jti, exp, now
            )
    if reused:
        raise Unauthorized("refresh token reuse detected; every token of this sign-in is revoked")
    return {"access": access, "refresh": new_refresh}


def check_access(principal: auth.Principal) -> None:
    if principal.claims.get("token_type") != "access":
        raise Unauthorized("not an access token")


def current_user(conn: Any, principal: auth.Principal) -> User:
    """The caller's live account: resigned or an older token generation → 401."""
    check_access(principal)
    row = repository.user_by_uid(conn, principal.subject)
    if row is None or row["is_deleted"] or row["token_generation"] != principal.claims.get("gen"):
        raise Unauthorized("token revoked")
    return User(row["id"], row["uid"], row["role"], row["name"], row["email"])


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("missing role: admin", missing_roles=["admin"])


def resign(user: User) -> None:
    with db.transaction() as conn:
        locked = repository.lock_admins_and(conn, user.id)
        me = next(r for r in locked if r["id"] == user.id)
        if me["is_deleted"]:
            raise Unauthorized("token revoked")
        admins = [r for r in locked if r["role"] == "admin" and not r["is_deleted"]]
        if me["role"] == "admin" and len(admins) == 1:
            raise LastAdmin(
                "you are the last remaining admin and cannot resign; promote another member to admin first"
            )
        repository.resign(conn, user.id)


def promote(actor: User, target_uid: str) -> dict:
    require_admin(actor)
    with db.transaction() as conn:
        locked = repository.lock_admins_and_uid(conn, target_uid)
        me = next((r for r in locked if r["id"] == actor.id), None)
        if me is None or me["role"] != "admin":
            raise Forbidden("missing role: admin", missing_roles=["admin"])
        target = next((r for r in locked if r["uid"] == target_uid), None)
        if target is None:
            raise NotFound(f"no user {target_uid}")
        if target["is_deleted"]:
            raise Conflict("a resigned user cannot be promoted")
        return repository.promote(conn, target["id"])


# ------------------------------------------------------------------------ snacks


def create_snack(conn: Any, user: User, values: dict[str, Any]) -> dict:
    values = {
        **values,
        "name": domain.clean_name(values["name"]),
        "purchase_url": domain.check_web_url(values.get("purchase_url"), "purchase_url"),
        "image_url": domain.check_web_url(values.get("image_url"), "image_url"),
        "description": values.get("description") or "",
        "price": Decimal(str(values["price"])),
    }
    row = repository.insert_snack(conn, values, user.id)
    if row is None:
        existing = repository.snack_by_name(conn, values["name"])
        raise Conflict(
            f"a snack named {existing['name'] if existing else values['name']!r} is already registered",
            snack_uid=existing["uid"] if existing else None,
        )
    # the hash exists before anyone can react (the snack is not committed yet)
    counters.store([(row["id"], 0, 0)])
    return row


def with_counts(rows: Sequence[dict], mine: dict[int, str] | None = None) -> list[dict]:
    """Fresh counts from Redis; the statistics columns where Redis has none."""
    live = counters.counts([r["id"] for r in rows])
    out = []
    for r in rows:
        likes, hates = live.get(r["id"], (r["like_count"], r["hate_count"]))
        item = {**r, "like_count": likes, "hate_count": hates}
        if mine is not None:
            item["my_reaction"] = mine.get(r["id"])
        item.setdefault("my_reaction", None)
        out.append(item)
    return out


IMAGES = "snacks-images"


def image_upload(user: User, snack_uid: str, content_type: str, ext: str, max_bytes: int) -> dict:
    """A presigned POST for a new image object of the snack (its creator or an admin)."""
    from opsdeck import storage

    with db.transaction() as conn:
        snack = repository.lock_snack(conn, snack_uid)
        if snack is None:
            raise NotFound(f"no snack {snack_uid}")
        if snack["created_by"] != user.id and not user.is_admin:
            raise Forbidden("only the snack's creator or an admin changes its image")
        key = f"snacks/{snack_uid}/{uuid.uuid4().hex}.{ext}"
        grant = storage.presigned_upload(
            IMAGES, key, content_type=content_type, max_bytes=max_bytes, expires_s=300
        )
        repository.set_image_key(conn, snack["id"], key)
    return grant


def image_download(snack_uid: str) -> str:
    from opsdeck import storage

    with db.transaction() as conn:
        snack = repository.snack_by_uid(conn, snack_uid)
    if snack is None or not snack["image_key"]:
        raise NotFound(f"snack {snack_uid} has no uploaded image")
    return storage.presigned_download(IMAGES, snack["image_key"], expires_s=300)


# --------------------------------------------------------------------- reactions


class ReactedTwice(Conflict):
    slug, title = "reaction-exists", "Cannot react twice"


def react(principal: auth.Principal, snack_uid: str, kind: str | None) -> dict:
    """like / hate (``kind``) or cancel (``None``); the fresh counts.

    One call (``snacks.react``) checks the account, locks the snack ``FOR KEY SHARE`` and changes
    the row; the Redis delta is applied inside the transaction, while the lock is held (see
    ``counters``); if the commit then fails, the inverse delta is applied. The transaction is a
    ``driver_transaction`` (pg8000 without SQLAlchemy's execution layer: the toggle's hot path).
    """
    check_access(principal)
    applied: tuple[int, int, int] | None = None
    try:
        with db.driver_transaction() as conn:
            user_id, snack_id, outcome = repository.react(
                conn, principal.subject, principal.claims.get("gen"), snack_uid, kind
            )
            if user_id is None:
                raise Unauthorized("token revoked")
            if snack_id is None:
                raise NotFound(f"no snack {snack_uid}")
            if kind is None:
                if outcome is None:
                    raise NotFound("you have no reaction on this snack to cancel")
                delta = (-1, 0) if outcome == "like" else (0, -1)
            else:
                if outcome is None:
                    raise ReactedTwice(
                        f"cannot react twice: you already gave this snack a {kind}", reaction=kind
                    )
                plus = (1, 0) if kind == "like" else (0, 1)
                minus = (0, 0) if outcome else ((0, -1) if kind == "like" else (-1, 0))
                delta = (plus[0] + minus[0], plus[1] + minus[1])
            fresh = counters.apply(snack_id, *delta)
            if fresh is None:
                counters.mark_missing(snack_id)
                fresh = repository.count_reactions(conn, snack_id)
            else:
                applied = (snack_id, *delta)
    except BaseException:
        if applied is not None:
            counters.apply(applied[0], -applied[1], -applied[2])
        raise
    return {"snack_uid": snack_uid, "my_reaction": kind, "like_count": fresh[0], "hate_count": fresh[1]}


# ------------------------------------------------------------------------ orders


def _resolve_items(conn: Any, user: User, items: Sequence[dict]) -> list[tuple[int, int, Decimal, str, str]]:
    """Items → (snack id, quantity, unit price, currency, name); new snacks registered by name."""
    by_uid = {
        r["uid"]: r
        for r in repository.snacks_by_uid(conn, [i["snack_uid"] for i in items if i.get("snack_uid")])
    }
    out: list[tuple[int, int, Decimal, str, str]] = []
    for item in items:
        if item.get("snack_uid"):
            snack = by_uid.get(item["snack_uid"])
            if snack is None:
                raise NotFound(f"no snack {item['snack_uid']}")
        else:
            new = item["snack"]
            snack = repository.snack_by_name(conn, new["name"])
            if snack is None:
                if new.get("currency") is None or new.get("price") is None:
                    raise NotFound(
                        f"no snack named {new['name']!r} is registered; give its currency and price "
                        "to register it with the order"
                    )
                snack = create_snack(conn, user, new)
        out.append((snack["id"], item["quantity"], snack["price"], snack["currency"], snack["name"]))
    seen: dict[int, str] = {}
    for sid, *_rest, name in out:
        if sid in seen:
            raise domain.SnackListedTwice(f"{name!r} is listed twice in one order", snacks=[name])
        seen[sid] = name
    return out


def _write_items(conn: Any, order_id: int, items: list[tuple[int, int, Decimal, str, str]]) -> None:
    from sqlalchemy.exc import IntegrityError

    nested = conn.begin_nested()
    try:
        repository.insert_purchases(conn, order_id, [i[:4] for i in items])
    except IntegrityError as exc:
        nested.rollback()
        if "purchases_one_open_per_snack" not in str(exc.orig):
            raise
        names = repository.open_snacks(conn, [i[0] for i in items], order_id)
        raise domain.SnackAlreadyRequested(
            "already requested in an order that has not shipped yet: " + ", ".join(names), snacks=names
        ) from None
    nested.commit()


def create_order(user: User, items: Sequence[dict], note: str) -> dict:
    with db.transaction() as conn:
        resolved = _resolve_items(conn, user, items)
        order = repository.insert_order(conn, user.id, note)
        _write_items(conn, order["id"], resolved)
        row = repository.order_view(conn, order["uid"])
    statistics_changed(row)
    return row


def get_order(conn: Any, user: User, uid: str) -> dict:
    row = repository.order_view(conn, uid)
    if row is None or (not user.is_admin and row["user_id"] != user.id):
        raise NotFound(f"no order {uid}")
    return row


def edit_order(user: User, uid: str, items: Sequence[dict] | None, note: str | None) -> dict:
    with db.transaction() as conn:
        order = repository.lock_order(conn, uid)
        if order is None or (not user.is_admin and order["user_id"] != user.id):
            raise NotFound(f"no order {uid}")
        if order["status"] != "created":
            raise domain.OrderNotEditable(
                f"an order can be edited only while created; this one is {order['status']}",
                order_status=order["status"],
            )
        if items is not None:
            resolved = _resolve_items(conn, user, items)
            repository.delete_purchases(conn, order["id"])
            _write_items(conn, order["id"], resolved)
        repository.touch_order(conn, order["id"], note)
        row = repository.order_view(conn, uid)
    statistics_changed(row)
    return row


def transition(user: User, uid: str, target: str, estimated_arrival: dt.date | None) -> dict:
    """THE order status transition: lock, check the edge, the hate > like gate, write."""
    require_admin(user)
    with db.transaction() as conn:
        order = repository.lock_order(conn, uid)
        if order is None:
            raise NotFound(f"no order {uid}")
        domain.check_transition(order["status"], target, estimated_arrival)
        if (order["status"], target) in domain.GATED:
            disliked = repository.disliked_snacks(conn, order["id"])
            if disliked:
                raise domain.DislikedSnacks(
                    f"cannot move the order to {target}: more hates than likes for " + ", ".join(disliked),
                    snacks=disliked,
                )
        repository.write_status(conn, order, target, estimated_arrival, user.id)
        row = repository.order_view(conn, uid)
    statistics_changed(row)
    return row


# -------------------------------------------------------------------- statistics

#: a cached period's figures are trusted this long at most (they are exact while the
#: generations hold; the bound only matters when a writer could not reach Redis to bump)
STATS_FRESH_S = 300
#: periods spanning more months than this are not cached (one generation key per month)
STATS_CACHE_MAX_MONTHS = 13


def _month_key(year: int, month: int) -> str:
    return f"snacks:stats:gen:{year:04d}-{month:02d}"


def _months(start: dt.datetime, end: dt.datetime) -> list[str]:
    """Generation keys of the UTC months that ``[start, end)`` overlaps."""
    last = end.astimezone(dt.UTC) - dt.timedelta(microseconds=1)
    y, m = start.astimezone(dt.UTC).year, start.astimezone(dt.UTC).month
    keys = []
    while (y, m) <= (last.year, last.month) and len(keys) <= STATS_CACHE_MAX_MONTHS:
        keys.append(_month_key(y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return keys


def statistics(conn: Any, start: dt.datetime, end: dt.datetime, snack_limit: int) -> dict:
    """The period's figures (``repository.statistics``), cached in Redis per period under the
    generations of the months it overlaps: every committed order, purchase or status write
    bumps its order's month (``statistics_changed``), so an entry read before a write is never
    served after it. Redis unreachable: the statement runs (``opsdeck.cache``)."""
    from opsdeck import cache

    months = _months(start, end)
    if len(months) > STATS_CACHE_MAX_MONTHS:
        return repository.statistics(conn, start, end, snack_limit)
    key = f"snacks:stats:{start.isoformat()}/{end.isoformat()}/{snack_limit}"
    return cache.get_or_load(
        key,
        lambda: repository.statistics(conn, start, end, snack_limit),
        fresh_s=STATS_FRESH_S,
        generations=tuple(months),
    ).value


def statistics_changed(order: dict | None) -> None:
    """After a committed write to ``order`` (its purchases, status or note): its month's cached
    statistics are invalid everywhere. A failed bump is logged; entries then age out within
    ``STATS_FRESH_S``."""
    import redis

    from opsdeck import cache
    from opsdeck.observability import logger

    if not order:
        return
    created = str(order["created_at"])  # UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    try:
        cache.bump(_month_key(int(created[0:4]), int(created[5:7])))
    except redis.RedisError as exc:
        logger.warning("statistics cache not invalidated", extra={"error": type(exc).__name__})
