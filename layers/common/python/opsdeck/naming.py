"""How catalog names become environment variables: one rule, used by the catalog
(which sets them, through CDK and the local cloud) and by the layer (which reads them)."""

from __future__ import annotations


def _env(name: str) -> str:
    return name.upper().replace("-", "_").replace("/", "_").replace(".", "_")


def queue_url_env(queue: str) -> str:
    """``backoffice-changes`` → ``BACKOFFICE_CHANGES_QUEUE_URL``."""
    return _env(queue) + "_QUEUE_URL"


def secret_id_env(secret: str) -> str:
    """``marketplace-spapi`` → ``MARKETPLACE_SPAPI_SECRET_ID``."""
    return _env(secret) + "_SECRET_ID"


def schedule_rule_env(schedule: str) -> str:
    """``marketplace-orders-sync`` → ``MARKETPLACE_ORDERS_SYNC_RULE_NAME``."""
    return _env(schedule) + "_RULE_NAME"


def function_name_env(function: str) -> str:
    """``marketplace-sync`` → ``MARKETPLACE_SYNC_FUNCTION_NAME`` (for functions that invoke others)."""
    return _env(function) + "_FUNCTION_NAME"


def secret_prefix_env(prefix: str) -> str:
    """``platform-sync`` → ``PLATFORM_SYNC_SECRET_PREFIX`` (secrets named ``<stack>/<prefix>/…``)."""
    return _env(prefix) + "_SECRET_PREFIX"


def bucket_name_env(bucket: str) -> str:
    """``snacks-images`` → ``SNACKS_IMAGES_BUCKET_NAME``."""
    return _env(bucket) + "_BUCKET_NAME"


#: suffixes of a capability's two PostgreSQL roles
ROLE_KINDS = {"owner": "owner", "runtime": "app"}


def database_role(database: str, capability: str, kind: str = "runtime") -> str:
    """The PostgreSQL role of ``capability`` in ``database``: ``<database>_<capability>_app`` (runtime)
    or ``<database>_<capability>_owner``.

    Roles are cluster-wide but privileges are per database, so the name starts with the
    database's: several stacks or test databases on one server never share (or race to create)
    a role, and each database's roles are recognisable. ``opsdeck`` → ``opsdeck_marketplace_app``.
    """
    name = f"{database}_{capability}_{ROLE_KINDS[kind]}".lower()
    if len(name) > 63:
        raise ValueError(f"role name {name!r} exceeds PostgreSQL's 63 characters (shorter database name?)")
    return name
