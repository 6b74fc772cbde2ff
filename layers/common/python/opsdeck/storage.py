"""Objects in the catalog's buckets: writes, and presigned URLs handed to clients.

A function reaches a bucket it declares in ``Function.buckets``; ``bucket_name(logical)``
reads ``<NAME>_BUCKET_NAME`` (set by CDK and the local cloud). Clients never get credentials,
only presigned URLs, short-lived and narrow:

* ``presigned_upload`` — a presigned POST (browser form or ``curl -F``) whose policy fixes the
  key, the ``Content-Type`` and a byte range, so S3 itself refuses another type or a larger
  body; the caller chooses the key (never the client).
* ``presigned_download`` — a GET URL, optionally with ``Content-Disposition: attachment`` so a
  browser saves the file under ``filename``.

On AWS the URL is signed with the function role's temporary credentials: it stops working when
those expire, even before ``expires_s`` (Lambda's credentials last hours, the URLs minutes).
Signing is local computation (no request to S3); boto3 loads on first use.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote

from .errors import ConfigError
from .naming import bucket_name_env

MAX_EXPIRES_S = 7 * 24 * 3600  # SigV4's limit


def bucket_name(bucket: str) -> str:
    """Physical name of catalog bucket ``bucket`` (``ConfigError`` naming the variable if unset)."""
    name = os.environ.get(bucket_name_env(bucket))
    if not name:
        raise ConfigError(f"bucket {bucket!r}: {bucket_name_env(bucket)} is not set")
    return name


def _s3() -> Any:
    from .aws import client

    return client("s3")


def _expires(expires_s: int) -> int:
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise ValueError(f"expires_s must be within 1..{MAX_EXPIRES_S}")
    return expires_s


def put_object(bucket: str, key: str, body: bytes, *, content_type: str) -> None:
    """Write ``body`` under ``key`` in catalog bucket ``bucket``."""
    _s3().put_object(Bucket=bucket_name(bucket), Key=key, Body=body, ContentType=content_type)


def presigned_upload(
    bucket: str, key: str, *, content_type: str, max_bytes: int, expires_s: int = 300
) -> dict[str, Any]:
    """A presigned POST for one object: ``{"url", "fields", "key", "expires_at"}``.

    The client posts ``fields`` plus a ``file`` part to ``url`` as ``multipart/form-data``;
    S3 refuses any other key, content type, or a body outside 1..``max_bytes``.
    """
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    post = _s3().generate_presigned_post(
        Bucket=bucket_name(bucket),
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=_expires(expires_s),
    )
    return {
        "url": post["url"],
        "fields": post["fields"],
        "key": key,
        "expires_at": int(time.time()) + expires_s,
    }


def presigned_download(bucket: str, key: str, *, expires_s: int = 300, filename: str | None = None) -> str:
    """A presigned GET URL for ``key``; with ``filename`` browsers save it as an attachment."""
    params: dict[str, Any] = {"Bucket": bucket_name(bucket), "Key": key}
    if filename:
        # RFC 6266 / 5987: an ASCII fallback and the exact UTF-8 name
        ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
        params["ResponseContentDisposition"] = (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
        )
    return _s3().generate_presigned_url("get_object", Params=params, ExpiresIn=_expires(expires_s))
