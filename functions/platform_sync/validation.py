"""Checks on a platform's settings that a schema cannot express.

* ``base_url`` through ``opsdeck.outbound.check_url`` (https, public address, every notation):
  422 ``outbound-refused``;
* ``auth_secret_ref``: the schema requires a ``platform-sync/`` segment; the worker reads a secret
  only under this deployment's prefix (``PLATFORM_SYNC_SECRET_PREFIX``, e.g.
  ``opsdeck-prod/platform-sync/``, ``secret_allowed``), which is also all its IAM policy allows,
  so a reference can never point the worker at another capability's credentials.
"""

from __future__ import annotations

import os
import re

from opsdeck.naming import secret_prefix_env
from opsdeck.outbound import check_url

SECRET_PREFIX = "platform-sync"  # noqa: S105 - a name prefix, not a secret
_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:(?P<name>.+)$")


def secret_prefix() -> str:
    """``<stack>/platform-sync/`` (the worker's ``PLATFORM_SYNC_SECRET_PREFIX``); ``platform-sync/``
    where nothing sets it (the local cloud's secrets carry no stack name)."""
    return os.environ.get(secret_prefix_env(SECRET_PREFIX)) or f"{SECRET_PREFIX}/"


def secret_name(ref: str) -> str:
    m = _ARN.match(ref)
    return m["name"] if m else ref


def secret_allowed(ref: str) -> bool:
    """Whether the worker may read ``ref``: under this deployment's prefix (its IAM policy's too)."""
    prefix = secret_prefix()
    name = secret_name(ref)
    return name.startswith(prefix) and len(name) > len(prefix) and ".." not in name


def check_platform(body) -> None:
    """The outbound check (the schema's pattern states the static part of it)."""
    check_url(body.base_url)
    if body.auth_secret_ref is not None and body.auth_header is None:
        body.auth_header = "authorization"
