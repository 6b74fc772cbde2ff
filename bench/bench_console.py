"""The ops console against the demo data (issue 15): first contentful paint and each view's data.

The whole catalog runs in a ``LocalCloud`` (HTTP on 127.0.0.1, virtual clock) seeded with every
capability's demo data (``seed_demo``; the backoffice stream is consumed, its malformed event
dead-lettered, so every view has something to show). Then:

* ``first_paint``: ``BENCH_CONSOLE_LOADS`` (5) fresh loads of ``/_console`` in headless Debian
  Chromium (``localcloud.browser``); first contentful paint from the Paint Timing API and the
  time until the first view's data is on the page (``data-refreshed``), median and max;
  target FCP ≤ 500 ms;
* ``view_data``: each view's API call (what the page polls) over a keep-alive HTTP connection
  with the page's token, ``BENCH_CONSOLE_REQUESTS`` (30) each, p50/p95; target ≤ 100 ms;
* with ``BENCH_CONSOLE_SCREENSHOTS=DIR``: one PNG per view into DIR (docs/console.md's pictures);
* ``replay_progress``: ``GET /ops/replays/{id}`` (what the page polls every 0.5 s while a replay
  runs) like a view's data, and what storing the progress costs a replay: ``BENCH_CONSOLE_REPLAYS``
  (3) rounds of a filtered replay of ``BENCH_CONSOLE_REPLAY_MESSAGES`` (200) DLQ messages, without
  and with the ``ops.replays`` recorder, interleaved.

Short on purpose (shared machine): well under a minute.
"""

from __future__ import annotations

import http.client
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.support import database, percentiles, quiet_stdout

VIEWS = {
    "application": "/ops/overview",
    "queues": "/ops/queues",
    "peek": "/ops/queues/backoffice-changes-dlq/messages?limit=20",
    "schedules": "/ops/schedules",
    "invocations": "/ops/invocations?limit=100&hide_console=true",
    "charts": "/ops/series?minutes=60",
}


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _wait(driver: Any, condition, timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(condition)


def _demo_cloud(url: str, root: str) -> Any:
    from localcloud import LocalCloud

    cloud = LocalCloud(root=root, database_url=url, virtual_clock=True, http=True)
    with quiet_stdout():
        cloud.start()
        cloud.seed_demo()
        cloud.run_until_idle(max_seconds=6 * 3600)
        for _ in range(6):  # a little traffic per minute for the charts
            cloud.request("GET", "/ops/health")
            cloud.request("GET", "/marketplace/orders")
            cloud.advance(60)
    return cloud


def first_paint(cloud: Any, driver: Any) -> dict[str, Any]:
    loads = _int_env("BENCH_CONSOLE_LOADS", 5)
    fcp, ready = [], []
    for _ in range(loads + 1):  # the first load warms the handler's imports
        driver.get("about:blank")
        driver.get(f"{cloud.base_url}/_console#application")
        _wait(driver, lambda d: d.find_element("css selector", "body").get_attribute("data-refreshed"))
        paint = driver.execute_script(
            "const e = performance.getEntriesByName('first-contentful-paint')[0];"
            "return e ? e.startTime : null"
        )
        done = driver.execute_script(
            "return Number(document.body.dataset.refreshed) - performance.timeOrigin"
        )
        fcp.append(paint)
        ready.append(done)
    fcp, ready = fcp[1:], ready[1:]
    return {
        "metric": "first_paint",
        "loads": loads,
        "fcp_median_ms": round(statistics.median(fcp), 1),
        "fcp_max_ms": round(max(fcp), 1),
        "first_view_data_median_ms": round(statistics.median(ready), 1),
        "target_fcp_ms": 500,
    }


def view_data(cloud: Any, token: str) -> Iterator[dict[str, Any]]:
    n = _int_env("BENCH_CONSOLE_REQUESTS", 30)
    parts = urlsplit(cloud.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"authorization": f"Bearer {token}"}
    for view, path in VIEWS.items():
        samples = []
        for i in range(n + 2):
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
            if i >= 2:
                samples.append(elapsed)
        ms = {k.replace("_us", "_ms"): round(v / 1000, 2) for k, v in percentiles(samples, (50, 95)).items()}
        yield {
            "metric": "view_data",
            "view": view,
            "path": path,
            "requests": n,
            "bytes": len(body),
            **ms,
            "target_ms": 100,
        }
    conn.close()


def replay_progress(cloud: Any, token: str) -> Iterator[dict[str, Any]]:
    import json
    import uuid

    from functions.ops import replays

    dlq = "backoffice-changes-dlq"
    replay_id = str(uuid.uuid4())
    status, _, body = cloud.request(
        "POST",
        f"/ops/queues/{dlq}/replay",
        headers={"authorization": f"Bearer {token}", "x-opsdeck-console": "1"},
        body={"dry_run": True, "replay_id": replay_id},
    )
    if status != 200:
        raise RuntimeError(f"replay: {status} {body[:300]!r}")
    audit_id = json.loads(body)["audit_id"]
    n = _int_env("BENCH_CONSOLE_REQUESTS", 30)
    parts = urlsplit(cloud.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = f"/ops/replays/{replay_id}"
    samples = []
    for i in range(n + 2):
        started = time.perf_counter()
        conn.request("GET", path, headers={"authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")
        if i >= 2:
            samples.append(time.perf_counter() - started)
    conn.close()
    ms = {k.replace("_us", "_ms"): round(v / 1000, 2) for k, v in percentiles(samples, (50, 95)).items()}
    yield {
        "metric": "view_data",
        "view": "replay progress",
        "path": "/ops/replays/{replay_id}",
        "requests": n,
        "bytes": len(body),
        **ms,
        "target_ms": 100,
    }

    # what the recorder costs a replay: the same replay without and with it, interleaved
    messages = _int_env("BENCH_CONSOLE_REPLAY_MESSAGES", 200)
    times: dict[str, list[float]] = {"without": [], "with": []}
    reports: list[int] = []
    for _ in range(_int_env("BENCH_CONSOLE_REPLAYS", 3)):
        for variant in ("without", "with"):
            for i in range(messages):
                cloud.send(dlq, {"bench": i})
            started = time.perf_counter()
            progress = None
            if variant == "with":  # as the POST does: the row, then its reports
                rid = str(uuid.uuid4())
                replays.start(rid, audit_id, dlq, {})
                record = replays.Recorder(rid)

                def progress(p: dict[str, Any], record=record) -> None:
                    reports.append(1)
                    record(p)

            result = cloud.replay(dlq, filter="bench >= `0`", progress=progress)
            times[variant].append(time.perf_counter() - started)
            if result["moved"] != messages:
                raise RuntimeError(f"replay moved {result['moved']} of {messages}")
    rounds = len(times["with"])
    yield {
        "metric": "replay_progress_cost",
        "messages": messages,
        "rounds": rounds,
        "reports_per_replay": len(reports) // rounds,
        "without_ms": round(statistics.median(times["without"]) * 1000, 1),
        "with_ms": round(statistics.median(times["with"]) * 1000, 1),
        "without_all_ms": [round(t * 1000, 1) for t in times["without"]],
        "with_all_ms": [round(t * 1000, 1) for t in times["with"]],
    }


def screenshots(cloud: Any, driver: Any, folder: Path) -> Iterator[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1280, 800)
    for view in ("application", "queues", "schedules", "invocations", "charts"):
        driver.get("about:blank")
        driver.get(f"{cloud.base_url}/_console#{view}")
        _wait(driver, lambda d: d.find_element("css selector", "body").get_attribute("data-refreshed"))
        if view == "queues":
            driver.find_element(
                "css selector", 'button[data-action="peek"][data-queue="backoffice-changes-dlq"]'
            ).click()
            _wait(driver, lambda d: d.find_elements("css selector", "#peek-list .message"))
            driver.find_element(
                "css selector", 'button[data-action="replay"][data-queue="backoffice-changes-dlq"]'
            ).click()
            driver.find_element("id", "replay-dry").click()
            driver.find_element("id", "replay-run").click()
            _wait(driver, lambda d: "would move" in d.find_element("id", "replay-result").text)
        if view == "invocations":
            _wait(driver, lambda d: len(d.find_elements("css selector", "#inv-function option")) > 1)
            driver.execute_script(
                "const s = document.getElementById('inv-function'); s.value = 'backoffice-consumer';"
                "s.dispatchEvent(new Event('change', {bubbles: true}))"
            )
            every = "#invocations-table tbody tr"
            _wait(
                driver,
                lambda d, every=every: (
                    {r.get_attribute("data-function") for r in d.find_elements("css selector", every)}
                    == {"backoffice-consumer"}
                ),
            )
            driver.execute_script(
                "const rows = document.querySelectorAll('#invocations-table tbody tr');"
                "rows[0].click(); window.scrollTo(0, 0)"
            )
            _wait(driver, lambda d: d.find_element("id", "inv-detail").is_displayed())
        time.sleep(0.3)
        path = folder / f"console-{view}.png"
        driver.save_screenshot(str(path))
        yield {"metric": "screenshot", "view": view, "file": str(path), "bytes": path.stat().st_size}


def run() -> Iterator[dict[str, Any]]:
    from localcloud import browser

    reason = browser.missing()
    if reason:
        yield {"metric": "skipped", "reason": reason}
        return
    root = tempfile.mkdtemp(prefix="opsdeck-bench-console-")
    profile = tempfile.mkdtemp(prefix="opsdeck-bench-chromium-")
    with database() as url:
        cloud = _demo_cloud(url, root)
        driver = browser.driver(profile)
        try:
            from opsdeck.auth import issue_dev_token

            yield first_paint(cloud, driver)
            yield from view_data(cloud, issue_dev_token("bench", ["ops-admin"]))
            folder = os.environ.get("BENCH_CONSOLE_SCREENSHOTS")
            if folder:
                with quiet_stdout():
                    shots = list(screenshots(cloud, driver, Path(folder)))
                yield from shots
            with quiet_stdout():
                measured = list(replay_progress(cloud, issue_dev_token("bench", ["ops-admin"])))
            yield from measured
        finally:
            driver.quit()
            cloud.stop()
            shutil.rmtree(profile, ignore_errors=True)
            shutil.rmtree(root, ignore_errors=True)
