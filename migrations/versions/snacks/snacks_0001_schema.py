"""snacks: accounts, refresh-token families, snacks, reactions, orders with a guarded state machine.

* ``users``: email is the login id, unique case-insensitively over *all* rows (resigned ones
  too, so a resigned email can never sign up again); ``is_deleted`` marks a resignation (rows
  are never deleted); ``token_generation`` is in every token and bumped to end them all at once.
* ``refresh_families`` / ``refresh_tokens``: each sign-in starts a family; a refresh marks its
  token used and issues the next one in the family; presenting a used token revokes the family.
* ``snacks``: ``name_key`` (lower case, whitespace removed) is the snack's identity (unique);
  ``like_count`` / ``hate_count`` are the statistics columns the flush function writes from
  Redis; ``rank_ratio`` (like/hate, +inf without hates, 1 without reactions) orders the list.
* ``reactions``: one per (snack, user), the source of truth for the counts.
* ``orders`` / ``purchases``: ``purchases.order_status`` mirrors the order's status (trigger),
  and a partial unique index allows one *not yet shipped* (created/approved/ordered) purchase
  per snack — the duplicate-snack rule as a constraint.
* ``guard_order_status`` (trigger): a status changes only inside the transition function
  (which sets ``snacks.transition`` to the order's uid for its own statement), only along the
  legal edges, with an estimated arrival exactly on → ordered / → shipping. A direct
  ``UPDATE … SET status`` from anywhere else fails.

Revision ID: snacks_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "snacks_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("snacks",)
depends_on: str | Sequence[str] | None = None

STATUSES = "('created', 'approved', 'ordered', 'shipping', 'completed', 'canceled')"

UPGRADE = f"""
CREATE SCHEMA IF NOT EXISTS snacks;

CREATE TABLE snacks.users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid              uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    email_key        text GENERATED ALWAYS AS (lower(email)) STORED,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    password_hash    text NOT NULL,
    role             text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    is_deleted       boolean NOT NULL DEFAULT false,
    deleted_at       timestamptz,
    token_generation integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (is_deleted = (deleted_at IS NOT NULL))
);
CREATE UNIQUE INDEX users_email_key ON snacks.users (email_key);
CREATE INDEX users_admins ON snacks.users (id) WHERE role = 'admin' AND NOT is_deleted;

CREATE TABLE snacks.refresh_families (
    id             uuid PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES snacks.users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX refresh_families_live ON snacks.refresh_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE snacks.refresh_tokens (
    jti        uuid PRIMARY KEY,
    family_id  uuid NOT NULL REFERENCES snacks.refresh_families (id),
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_family ON snacks.refresh_tokens (family_id);

CREATE TABLE snacks.snacks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid          uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    name_key     text GENERATED ALWAYS AS (lower(regexp_replace(name, '\\s+', '', 'g'))) STORED,
    purchase_url text CHECK (purchase_url ~* '^https?://'),
    image_url    text CHECK (image_url ~* '^https?://'),
    image_key    text,
    description  text NOT NULL DEFAULT '',
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
    price        numeric(14, 2) NOT NULL CHECK (price >= 0),
    like_count   integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    hate_count   integer NOT NULL DEFAULT 0 CHECK (hate_count >= 0),
    rank_ratio   float8 GENERATED ALWAYS AS (
        CASE WHEN hate_count = 0 THEN CASE WHEN like_count > 0 THEN 'Infinity'::float8 ELSE 1 END
             ELSE like_count::float8 / hate_count END) STORED,
    counts_flushed_at timestamptz,
    created_by   bigint REFERENCES snacks.users (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX snacks_name_key ON snacks.snacks (name_key);
-- the list order as one ascending key, so that a keyset page is one index range scan
CREATE INDEX snacks_rank ON snacks.snacks ((-rank_ratio), (-like_count), id);

CREATE TABLE snacks.reactions (
    snack_id   bigint NOT NULL REFERENCES snacks.snacks (id),
    user_id    bigint NOT NULL REFERENCES snacks.users (id),
    kind       text NOT NULL CHECK (kind IN ('like', 'hate')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (snack_id, user_id)
);

CREATE TABLE snacks.orders (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid               uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    user_id           bigint NOT NULL REFERENCES snacks.users (id),
    status            text NOT NULL DEFAULT 'created' CHECK (status IN {STATUSES}),
    estimated_arrival date,
    note              text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    status_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_created ON snacks.orders (created_at, id) INCLUDE (status);
CREATE INDEX orders_user ON snacks.orders (user_id, created_at, id);

CREATE TABLE snacks.purchases (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES snacks.orders (id) ON DELETE CASCADE,
    snack_id     bigint NOT NULL REFERENCES snacks.snacks (id),
    quantity     integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price   numeric(14, 2) NOT NULL,
    currency     char(3) NOT NULL,
    -- copies of the order's created_at and status, kept by the order's triggers
    ordered_at   timestamptz NOT NULL,
    order_status text NOT NULL DEFAULT 'created' CHECK (order_status IN {STATUSES}),
    UNIQUE (order_id, snack_id)
);
-- the duplicate-snack rule: one not-yet-shipped purchase per snack, across all orders
CREATE UNIQUE INDEX purchases_one_open_per_snack ON snacks.purchases (snack_id)
    WHERE order_status IN ('created', 'approved', 'ordered');
-- statistics: one index range scan per period, no heap visits
CREATE INDEX purchases_period ON snacks.purchases (ordered_at)
    INCLUDE (order_status, snack_id, quantity, unit_price, currency, order_id);

CREATE TABLE snacks.order_status_log (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id          bigint NOT NULL REFERENCES snacks.orders (id) ON DELETE CASCADE,
    from_status       text NOT NULL,
    to_status         text NOT NULL,
    estimated_arrival date,
    changed_by        bigint REFERENCES snacks.users (id),
    changed_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_status_log_order ON snacks.order_status_log (order_id, id);

CREATE FUNCTION snacks.guard_order_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'created' OR NEW.estimated_arrival IS NOT NULL THEN
            RAISE EXCEPTION 'a new order starts as created, without an estimated arrival'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'order_status_transition';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
        IF NEW.estimated_arrival IS DISTINCT FROM OLD.estimated_arrival THEN
            RAISE EXCEPTION 'the estimated arrival changes only with a transition to ordered or shipping'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'order_status_transition';
        END IF;
        RETURN NEW;
    END IF;
    IF coalesce(current_setting('snacks.transition', true), '') <> OLD.uid::text THEN
        RAISE EXCEPTION 'order status changes only through the transition function'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_status_transition';
    END IF;
    IF (OLD.status, NEW.status) NOT IN (
        ('created', 'approved'), ('created', 'canceled'), ('approved', 'ordered'),
        ('approved', 'canceled'), ('ordered', 'shipping'), ('shipping', 'completed')) THEN
        RAISE EXCEPTION 'illegal order status transition % -> %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_status_transition';
    END IF;
    IF NEW.status IN ('ordered', 'shipping') THEN
        IF NEW.estimated_arrival IS NULL THEN
            RAISE EXCEPTION 'an estimated arrival is required on → %', NEW.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'order_status_transition';
        END IF;
    ELSIF NEW.estimated_arrival IS DISTINCT FROM OLD.estimated_arrival THEN
        RAISE EXCEPTION 'an estimated arrival is set only on → ordered and → shipping'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_status_transition';
    END IF;
    NEW.status_changed_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER orders_guard_status BEFORE INSERT OR UPDATE ON snacks.orders
    FOR EACH ROW EXECUTE FUNCTION snacks.guard_order_status();

CREATE FUNCTION snacks.mirror_order_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE snacks.purchases SET order_status = NEW.status WHERE order_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_mirror_status AFTER UPDATE OF status ON snacks.orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION snacks.mirror_order_status();

-- purchases copy their order's created_at and status, and change only while it is created
CREATE FUNCTION snacks.guard_purchase() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o snacks.orders%ROWTYPE;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.order_status IS DISTINCT FROM OLD.order_status
       AND NEW.quantity = OLD.quantity AND NEW.snack_id = OLD.snack_id THEN
        RETURN NEW;  -- the status mirror
    END IF;
    SELECT * INTO o FROM snacks.orders WHERE id = coalesce(NEW.order_id, OLD.order_id);
    IF o.status <> 'created' THEN
        RAISE EXCEPTION 'an order can be edited only while created (it is %)', o.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_edit_while_created';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    NEW.ordered_at := o.created_at;
    NEW.order_status := o.status;
    RETURN NEW;
END $$;

CREATE TRIGGER purchases_guard BEFORE INSERT OR UPDATE OR DELETE ON snacks.purchases
    FOR EACH ROW EXECUTE FUNCTION snacks.guard_purchase();
"""


def statements(script: str) -> list[str]:
    """``script`` split at top-level semicolons (not inside ``$$`` bodies): one statement per call."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for line in script.splitlines():
        current.append(line)
        quoted ^= line.count("$$") % 2 == 1
        if not quoted and line.rstrip().endswith(";") and not line.lstrip().startswith("--"):
            statement = "\n".join(current).strip().rstrip(";")
            if statement:
                out.append(statement)
            current = []
    return out


def upgrade() -> None:
    for statement in statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS snacks CASCADE")
