"""Report exports (CSV and JSON) in the ``product-monitor-exports`` bucket, handed out as
presigned download URLs (``opsdeck.storage``).

The object key is ``reports/{asin}/v{version}.{format}``: a version's export is written once
per request (the same bytes every time: versions are immutable) and the bucket's lifecycle
deletes exports after 30 days. CSV cells that a spreadsheet would run as a formula
(``= + - @``, tab, CR) are prefixed with ``'`` (CSV injection).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from opsdeck import storage

BUCKET = "product-monitor-exports"
COLUMNS = ("role", "asin", "title", "price", "rating", "reviews_count", "bsr", "in_stock")
URL_TTL_S = 300


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(rec: dict[str, Any]) -> bytes:
    report = rec["report"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    own = report.get("own") or {}
    writer.writerow([_cell(v) for v in ("own", report["asin"], "", *(own.get(c) for c in COLUMNS[3:]))])
    for row in report.get("rows") or []:
        writer.writerow([_cell(v) for v in ("competitor", *(row.get(c) for c in COLUMNS[1:]))])
    return out.getvalue().encode("utf-8")


def render_json(rec: dict[str, Any]) -> bytes:
    body = {k: rec.get(k) for k in ("asin", "version", "generator", "generated_at", "report", "items")}
    return json.dumps(body, default=str, indent=2).encode("utf-8")


def export(rec: dict[str, Any], fmt: str) -> dict[str, Any]:
    key = f"reports/{rec['asin']}/v{rec['version']}.{fmt}"
    body, ctype = (render_csv(rec), "text/csv") if fmt == "csv" else (render_json(rec), "application/json")
    storage.put_object(BUCKET, key, body, content_type=ctype)
    filename = f"{rec['asin']}-report-v{rec['version']}.{fmt}"
    url = storage.presigned_download(BUCKET, key, expires_s=URL_TTL_S, filename=filename)
    return {
        "asin": rec["asin"],
        "version": rec["version"],
        "format": fmt,
        "key": key,
        "bytes": len(body),
        "url": url,
        "expires_in_s": URL_TTL_S,
    }
