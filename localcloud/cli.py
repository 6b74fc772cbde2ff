"""``opsdeck local up|fire|log|env``, ``opsdeck invoke``, ``opsdeck events new``, ``opsdeck queues …``.

Commands that act on a running local cloud find it through ``<root>/local.json`` (written by
``opsdeck local up``): ``invoke`` calls Lambda's ``Invoke`` API on its AWS endpoint (as
``aws lambda invoke`` would), ``local fire`` and ``queues peek`` use its small control API,
``queues`` talk SQS to its endpoint. Without a running cloud, ``invoke`` and ``local fire``
start a one-shot in-process cloud on the virtual clock (nothing else fires meanwhile).
``queues --aws`` talks to real AWS with your credentials instead (queue names get ``--prefix``,
i.e. the stack name and a dash: ``opsdeck-prod-``), the same code paths as locally.
Every expected failure is one line (``opsdeck: error: …``), exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opsdeck_cli.main import CommandError

DEFAULT_ROOT = ".opsdeck"
EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def register(sub: argparse._SubParsersAction) -> None:
    root_help = f"state directory of the local cloud (default: {DEFAULT_ROOT})"

    local = sub.add_parser("local", help="the whole application on this machine (no Docker, no AWS account)")
    lsub = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = lsub.add_parser(
        "up", help="start the local cloud (HTTP API, AWS endpoint, schedules, queues) until Ctrl-C"
    )
    up.add_argument(
        "--demo", action="store_true", help="seed every capability's demo data and fire each schedule once"
    )
    up.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    up.add_argument("--aws-port", type=int, default=4566, help="AWS endpoint port (default 4566)")
    up.add_argument(
        "--function", action="append", metavar="NAME", help="emulate only these functions (repeatable)"
    )
    up.add_argument("--quiet", action="store_true", help="do not print one line per invocation")
    up.add_argument(
        "--metrics", action="store_true", help="print the functions' EMF metrics (CloudWatch's input) too"
    )
    up.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    up.set_defaults(run=local_up)

    fire = lsub.add_parser("fire", help="fire a schedule now (Schedule.name, function name or rule name)")
    fire.add_argument("schedule")
    fire.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    fire.set_defaults(run=local_fire)

    log = lsub.add_parser("log", help="show the invocation journal")
    log.add_argument("-f", "--follow", action="store_true", help="keep printing new invocations")
    log.add_argument("-n", "--lines", type=int, default=20, help="how many past invocations (default 20)")
    log.add_argument("--json", action="store_true", help="raw JSON lines")
    log.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    log.set_defaults(run=local_log)

    env = lsub.add_parser("env", help='print the running cloud\'s environment: eval "$(opsdeck local env)"')
    env.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    env.set_defaults(run=local_env)

    invoke = sub.add_parser(
        "invoke", help="invoke one function with a sample event, print its result and logs"
    )
    invoke.add_argument("function")
    invoke.add_argument(
        "--event",
        metavar="FILE",
        help="event file, - for stdin, or a sample name in events/<function>/ (default: the first)",
    )
    invoke.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    invoke.set_defaults(run=invoke_function)

    events = sub.add_parser("events", help="sample events").add_subparsers(
        dest="events_command", required=True
    )
    new = events.add_parser("new", help="a fresh event (http, schedule, sqs) shaped for a function's wiring")
    new.add_argument("kind", choices=("http", "schedule", "sqs"))
    new.add_argument("--function", required=True, metavar="NAME")
    new.add_argument("--route", help='HTTP: route key, e.g. "GET /ops/health" (default: the first route)')
    new.add_argument("--path", help="HTTP: the request path (default: the route with sample parameters)")
    new.add_argument("--query", default="", help="HTTP: raw query string")
    new.add_argument(
        "--header", action="append", default=[], metavar="NAME:VALUE", help="HTTP: a header (repeatable)"
    )
    new.add_argument("--body", help="HTTP/SQS: body (JSON or text; @file reads a file)")
    new.add_argument("--count", type=int, default=1, help="SQS: number of records (default 1)")
    new.add_argument("-o", "--output", help="write to this file instead of stdout")
    new.set_defaults(run=events_new)

    queues = sub.add_parser("queues", help="catalog queues and DLQs: list, peek, send, replay")
    qsub = queues.add_subparsers(dest="queues_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--aws", action="store_true", help="use AWS (your credentials) instead of the local cloud"
    )
    common.add_argument(
        "--prefix",
        default=os.environ.get("OPSDECK_RESOURCE_PREFIX", ""),
        help="with --aws: queue name prefix, the stack name and a dash (e.g. opsdeck-prod-; "
        "default $OPSDECK_RESOURCE_PREFIX)",
    )
    common.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    qsub.add_parser("list", parents=[common], help="queues with depth and DLQ depth").set_defaults(
        run=queues_list
    )
    peek = qsub.add_parser("peek", parents=[common], help="show messages (locally without touching them)")
    peek.add_argument("queue")
    peek.add_argument("--limit", type=int, default=10)
    peek.set_defaults(run=queues_peek)
    send = qsub.add_parser("send", parents=[common], help="send a message (BODY, --file or - for stdin)")
    send.add_argument("queue")
    send.add_argument("body", nargs="?")
    send.add_argument("--file", help="read the body from a file")
    send.add_argument("--group", help="MessageGroupId (FIFO queues)")
    send.add_argument("--dedup", help="MessageDeduplicationId (FIFO queues)")
    send.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE", help="message attribute")
    send.set_defaults(run=queues_send)
    replay = qsub.add_parser("replay", parents=[common], help="move DLQ messages back to their queue")
    replay.add_argument("dlq")
    replay.add_argument("--to", help="destination queue (default: the queue each message came from)")
    replay.add_argument("--filter", help="JMESPath on the JSON body; only matching messages move")
    replay.add_argument("--limit", type=int, help="move at most N messages")
    replay.add_argument("--dry-run", action="store_true", help="count what would move, move nothing")
    replay.add_argument("--rate", help="at most N messages per second (N or N/s)")
    replay.add_argument("--progress", action="store_true", help="print progress lines on stderr as it goes")
    replay.set_defaults(run=queues_replay)


# ------------------------------------------------------------------ helpers


def _catalog() -> dict[str, Any]:
    from functions.catalog import by_name

    return by_name()


def _function(name: str) -> Any:
    functions = _catalog()
    if name in functions:
        return functions[name]
    close = difflib.get_close_matches(name, functions, n=1)
    hint = f"; did you mean {close[0]}?" if close else " (see opsdeck functions)"
    raise CommandError(f"unknown function {name!r}{hint}")


def _running(root: str) -> dict[str, Any] | None:
    from localcloud.services import read_state

    return read_state(Path(root))


def _control(state: dict[str, Any], method: str, path: str) -> tuple[int, Any]:
    url = state["http"] + path  # the running cloud's loopback server
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=930) as response:  # noqa: S310 - our loopback server
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except urllib.error.URLError as exc:
        raise CommandError(f"the local cloud at {state['http']} does not answer: {exc.reason}") from None


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Function logs go to stderr while the result goes to stdout."""
    swapped = []
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
                swapped.append(handler)
    try:
        yield
    finally:
        for handler in swapped:
            handler.setStream(sys.stdout)


@contextlib.contextmanager
def _one_shot_cloud(root: str, function: Any | None = None) -> Iterator[Any]:
    """An in-process cloud on the virtual clock, for one invocation when none is running."""
    from localcloud import LocalCloud

    with _logs_to_stderr(), LocalCloud(root=root, virtual_clock=True, deploy=False) as cloud:
        yield cloud
        pending = sum(sum(cloud.depth(q)) for q in cloud.queue_names())
        if pending:
            print(
                f"note: {pending} message(s) were left in local queues "
                "(run `opsdeck local up` to see them consumed)",
                file=sys.stderr,
            )


# -------------------------------------------------------------------- local


def local_up(args: argparse.Namespace) -> int:
    import signal

    from localcloud import LocalCloud
    from localcloud.services import clear_state, write_state

    root = Path(args.root)
    running = _running(args.root)
    if running:
        raise CommandError(f"a local cloud is already running (pid {running['pid']}, {running.get('http')})")
    began = time.perf_counter()
    if not args.metrics:  # one journal line per invocation says what happened; EMF is for CloudWatch
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    cloud = LocalCloud(
        root=root,
        http=True,
        http_port=args.port,
        aws_port=args.aws_port,
        functions=args.function,
        console=None if args.quiet else lambda line: print(line, flush=True),
    )

    def terminate(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)  # also when started in the background by a script
    try:
        cloud.start()
        write_state(root, cloud.running_state())
        print(_banner(cloud, time.perf_counter() - began), flush=True)
        if args.demo:
            for line in cloud.seed_demo():
                print(f"  {line}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        cloud.stop()
        clear_state(root)
    return 0


def _banner(cloud: Any, seconds: float) -> str:
    env = cloud.env
    kinds: dict[str, int] = {}
    for f in cloud.functions:
        kinds[f.trigger.kind] = kinds.get(f.trigger.kind, 0) + 1
    database = env.get("DATABASE_URL", "none (no function declares database=True)")
    if cloud._pg is not None:
        database = f"{cloud._pg.url}  (embedded, data in {cloud.root / 'pg'})"
    redis = env.get("REDIS_URL", "")
    if redis.startswith("fakeredis"):
        redis += "  (in-process)"
    lines = [
        f"opsdeck local cloud is up in {seconds:.2f} s",
        f"  HTTP API     {cloud.base_url}      try: curl {cloud.base_url}/ops/health",
        f"  Console      {cloud.base_url}/_console      (the ops console; docs/console.md)",
        f"  AWS APIs     {cloud.aws_url}      try: AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x "
        f"aws --region us-east-1 --endpoint-url {cloud.aws_url} sqs list-queues",
        f"  PostgreSQL   {database}",
        f"  Redis        {redis}",
        "  Token        opsdeck token --role ADMIN_READ      (the local dev issuer; any shell)",
        f"  Journal      {cloud.journal_file}      (opsdeck local log -f)",
        "  Functions    " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
    ]
    if cloud.simulator_urls:
        lines.append("  Simulators   " + ", ".join(cloud.simulator_urls.values()))
    lines += [f"  note: {note}" for note in cloud.notes]
    return "\n".join(lines)


def local_fire(args: argparse.Namespace) -> int:
    state = _running(args.root)
    if state:
        status, body = _control(state, "POST", f"/_localcloud/fire/{args.schedule}")
        if status == 404:
            raise CommandError(body.get("message", f"unknown schedule {args.schedule!r}"))
        if "error" in body:
            print(_dump(body["error"]))
            raise CommandError(f"{args.schedule} failed: {body['error'].get('errorMessage')}")
        print(_dump(body["result"]))
        return 0
    from localcloud import InvocationError, LocalCloudError

    with _one_shot_cloud(args.root) as cloud:
        try:
            result = cloud.fire(args.schedule)
        except InvocationError as exc:
            print(_dump(exc.payload))
            raise CommandError(f"{args.schedule} failed: {exc.invocation.error}") from None
        except LocalCloudError as exc:
            raise CommandError(exc.detail) from None
    print(_dump(result))
    return 0


def local_log(args: argparse.Namespace) -> int:
    from localcloud import journal

    path = Path(args.root) / "journal.jsonl"
    if not path.exists() and not args.follow:
        raise CommandError(f"no journal at {path} yet (start the local cloud with opsdeck local up)")
    for entry in journal.read(path, last=args.lines):
        print(json.dumps(entry) if args.json else journal.format_entry(entry))
    if args.follow:
        with contextlib.suppress(KeyboardInterrupt):
            for entry in journal.follow(path):
                print(json.dumps(entry) if args.json else journal.format_entry(entry), flush=True)
    return 0


def local_env(args: argparse.Namespace) -> int:
    import shlex

    state = _running(args.root)
    if not state:
        raise CommandError(f"no local cloud is running in {args.root} (start one with opsdeck local up)")
    for key, value in sorted(state["env"].items()):
        if key == "REDIS_URL" and value.startswith("fakeredis"):
            print(
                "# REDIS_URL: the local cloud's Redis is in-process (fakeredis); set REDIS_URL to share one"
            )
            continue
        if key in ("no_proxy", "MOTO_ACCOUNT_ID"):
            continue
        print(f"export {key}={shlex.quote(value)}")
    return 0


# ------------------------------------------------------------------- invoke


def _read_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{where} is not valid JSON: {exc}") from None


def _load_event(function: Any, given: str | None) -> tuple[Any, str]:
    if given == "-":
        return _read_json(sys.stdin.read(), "the event on stdin"), "stdin"
    samples = sorted((EVENTS_DIR / function.name).glob("*.json"))
    if given is None:
        if not samples:
            raise CommandError(
                f"no sample event in events/{function.name}/; pass --event FILE "
                f"or create one with: opsdeck events new {_events_kind(function)} --function {function.name}"
            )
        path = samples[0]
    else:
        path = Path(given)
        if not path.exists():
            by_name = EVENTS_DIR / function.name / (given if given.endswith(".json") else given + ".json")
            if by_name.exists():
                path = by_name
            else:
                raise CommandError(f"event file {given} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read event file {path}: {exc.strerror}") from None
    return _read_json(text, f"event file {path}"), str(path)


def _events_kind(function: Any) -> str:
    return {"queue": "sqs"}.get(function.trigger.kind, function.trigger.kind)


def invoke_function(args: argparse.Namespace) -> int:
    from localcloud.events import event_problems

    function = _function(args.function)
    event, source = _load_event(function, args.event)
    problems = event_problems(function, event)
    if problems:
        raise CommandError(f"{source} does not fit {function.name} ({function.trigger.kind}): {problems[0]}")
    state = _running(args.root)
    if state:
        return _invoke_remote(state, function, event)
    from localcloud import InvocationError

    with _one_shot_cloud(args.root) as cloud:
        try:
            result = cloud.invoke(function.name, event)
        except InvocationError as exc:
            print(_dump(exc.payload))
            raise CommandError(f"{function.name} failed: {exc.invocation.error}") from None
    print(_dump(result))
    return 0


def _invoke_remote(state: dict[str, Any], function: Any, event: Any) -> int:
    import base64

    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.session.Session().client(
        "lambda",
        endpoint_url=state["aws"],
        region_name="us-east-1",
        aws_access_key_id=state["env"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=state["env"]["AWS_SECRET_ACCESS_KEY"],
        config=Config(read_timeout=function.timeout_s + 30, retries={"max_attempts": 0}),
    )
    try:
        response = client.invoke(
            FunctionName=function.name, Payload=json.dumps(event).encode(), LogType="Tail"
        )
    except ClientError as exc:
        raise CommandError(f"{function.name}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise CommandError(f"the local cloud's AWS endpoint does not answer: {exc}") from None
    if response.get("LogResult"):
        sys.stderr.write(base64.b64decode(response["LogResult"]).decode(errors="replace"))
    payload = json.loads(response["Payload"].read() or b"null")
    print(_dump(payload))
    if response.get("FunctionError"):
        raise CommandError(f"{function.name} failed: {payload.get('errorMessage')}")
    return 0


# ------------------------------------------------------------------- events


def _body(text: str | None) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():
            raise CommandError(f"body file {path} does not exist")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return text


def events_new(args: argparse.Namespace) -> int:
    import re
    from datetime import UTC, datetime

    from localcloud import events

    function = _function(args.function)
    wanted = {"sqs": "queue"}.get(args.kind, args.kind)
    if function.trigger.kind != wanted:
        raise CommandError(f"{function.name} is triggered by {_events_kind(function)}, not {args.kind}")
    now = datetime.now(UTC)
    if args.kind == "http":
        routes = {r.key: r for r in function.trigger.routes}
        key = args.route or next(iter(routes))
        if key not in routes:
            raise CommandError(f"{function.name} has no route {key!r} (routes: {', '.join(routes)})")
        route = routes[key]
        path = args.path or re.sub(
            r"\{([a-z_]+)(\+?)\}",
            lambda m: f"sample-{m.group(1)}" + ("/more" if m.group(2) else ""),
            route.path,
        )
        method = route.method if route.method != "ANY" else "GET"
        matched = events.match_route([key], method, path)
        if matched is None:
            raise CommandError(f"path {path} does not match route {key}")
        headers = []
        for header in args.header:
            name, sep, value = header.partition(":")
            if not sep:
                raise CommandError(f"header {header!r} is not NAME:VALUE")
            headers.append((name.strip(), value.strip()))
        claims = None
        if route.authorizer == "jwt":
            claims = {
                "iss": "opsdeck-local",
                "aud": "opsdeck",
                "sub": "dev-user",
                "iat": int(now.timestamp()),
                "exp": int(now.timestamp()) + 3600,
            }
        event = events.http_event(
            method,
            path,
            query=args.query,
            headers=headers,
            body=_body(args.body),
            route_key=key,
            path_parameters=matched[1] or None,
            jwt_claims=claims,
            when=now,
        )
    elif args.kind == "schedule":
        trigger = function.trigger
        event = events.schedule_event(
            f"opsdeck-local-{trigger.name or function.name}", when=now, detail=trigger.input
        )
    else:
        trigger = function.trigger
        body = _body(args.body)
        event = events.sqs_event(
            events.sqs_record(
                {} if body is None else body,
                queue_name=trigger.queue_name,
                group_id="sample-group" if trigger.fifo else None,
                sent_ms=int(now.timestamp() * 1000),
            )
            for _ in range(max(1, args.count))
        )
    problems = events.event_problems(function, event)
    if problems:  # a bug here, not the user's
        raise CommandError(f"generated event does not fit {function.name}: {problems[0]}")
    text = _dump(event) + "\n"
    if args.output and args.output != "-":
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# ------------------------------------------------------------------- queues


class _Queues:
    """SQS of the running local cloud (or AWS with ``--aws``), catalog names resolved."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.aws = args.aws
        self.prefix = args.prefix if args.aws else ""
        self.state = None if args.aws else _running(args.root)
        if not self.aws and not self.state:
            raise CommandError(
                f"no local cloud is running in {args.root} (start one with opsdeck local up), "
                "or pass --aws to use AWS"
            )
        self.names: dict[str, str] = {}  # logical name → SQS queue name
        if self.state:
            self.names = dict(self.state.get("queues", {}))
        else:
            from functions.catalog import FUNCTIONS

            for f in FUNCTIONS:
                if f.trigger.kind == "queue":
                    t = f.trigger
                    self.names[t.name], self.names[t.name + "-dlq"] = t.queue_name, t.dlq_name
        self.dlqs = {name for name in self.names if name.endswith("-dlq")}
        if self.state:
            from opsdeck import aws

            os.environ.update(
                {
                    "AWS_ENDPOINT_URL": self.state["aws"],
                    "AWS_ACCESS_KEY_ID": self.state["env"]["AWS_ACCESS_KEY_ID"],
                    "AWS_SECRET_ACCESS_KEY": self.state["env"]["AWS_SECRET_ACCESS_KEY"],
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
            )
            os.environ.pop("AWS_SESSION_TOKEN", None)
            os.environ.pop("AWS_PROFILE", None)
            aws.reset()
        from opsdeck import aws

        self.sqs = aws.client("sqs")

    def physical(self, name: str) -> str:
        if name in self.names:
            return self.names[name]
        if name in self.names.values() or self.aws:
            return name
        raise CommandError(
            f"unknown queue {name!r} (catalog queues: {', '.join(sorted(self.names)) or 'none'})"
        )

    def url(self, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        if name.startswith(("https://", "http://")):
            return name
        physical = self.physical(name)
        prefix = self.prefix if not physical.startswith(self.prefix) else ""
        try:
            return self.sqs.get_queue_url(QueueName=prefix + physical)["QueueUrl"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
                raise CommandError(f"queue {prefix + physical!r} does not exist") from None
            raise CommandError(f"SQS refused GetQueueUrl for {name!r}: {code}") from None
        except BotoCoreError as exc:
            raise CommandError(f"SQS is unreachable: {exc}") from None

    def depth(self, url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def queues_list(args: argparse.Namespace) -> int:
    q = _Queues(args)
    sources = [n for n in q.names if n not in q.dlqs]
    if not sources:
        print("the catalog declares no queues")
        return 0
    width = max(len(n) for n in sources)
    print(f"{'QUEUE':<{width}}  {'VISIBLE':>7}  {'IN FLIGHT':>9}  {'DLQ':>5}")
    for name in sorted(sources):
        visible, inflight = q.depth(q.url(name))
        dlq_visible, _ = q.depth(q.url(name + "-dlq"))
        print(f"{name:<{width}}  {visible:>7}  {inflight:>9}  {dlq_visible:>5}")
    return 0


def queues_peek(args: argparse.Namespace) -> int:
    q = _Queues(args)
    if q.state:
        physical = q.physical(args.queue)
        status, body = _control(q.state, "GET", f"/_localcloud/queues/{physical}/peek?limit={args.limit}")
        if status != 200:
            raise CommandError(body.get("message", f"cannot peek {args.queue}"))
        messages = body["messages"]
    else:
        url = q.url(args.queue)
        print(
            "note: SQS has no peek; receiving with VisibilityTimeout=0 raises receive counts", file=sys.stderr
        )
        messages = q.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, args.limit),
            VisibilityTimeout=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
    for message in messages[: args.limit]:
        body_text = message.get("Body", "")
        with contextlib.suppress(ValueError):
            body_text = json.dumps(json.loads(body_text), ensure_ascii=False)
        state = f" [{message['State']}]" if "State" in message else ""
        count = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
        print(f"{message['MessageId']}{state} receives={count}  {body_text}")
    if not messages:
        print(f"{args.queue} is empty")
    return 0


def queues_send(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    q = _Queues(args)
    if args.file:
        try:
            body = Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    elif args.body in (None, "-"):
        body = sys.stdin.read()
    else:
        body = args.body
    params: dict[str, Any] = {"QueueUrl": q.url(args.queue), "MessageBody": body}
    attributes = {}
    for attr in args.attr:
        name, sep, value = attr.partition("=")
        if not sep:
            raise CommandError(f"attribute {attr!r} is not NAME=VALUE")
        attributes[name] = {"DataType": "String", "StringValue": value}
    if attributes:
        params["MessageAttributes"] = attributes
    if args.group:
        params["MessageGroupId"] = args.group
    if args.dedup:
        params["MessageDeduplicationId"] = args.dedup
    try:
        response = q.sqs.send_message(**params)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CommandError(f"SQS refused the message: {error.get('Message') or error.get('Code')}") from None
    print(response["MessageId"])
    return 0


def _print_progress(dlq: str):
    """The replay's progress callback (``opsdeck.replay``): one line on stderr per report."""

    def show(p: dict[str, Any]) -> None:
        if p["done"]:
            return
        print(
            f"{dlq}: examined {p['examined']}/{p['total']}, matched {p['matched']}, moved {p['moved']}"
            + (f", failed {p['failed']}" if p["failed"] else ""),
            file=sys.stderr,
            flush=True,
        )

    return show


def queues_replay(args: argparse.Namespace) -> int:
    from localcloud.replay import replay

    q = _Queues(args)
    if args.dlq in q.names and args.dlq not in q.dlqs and args.dlq + "-dlq" in q.dlqs:
        raise CommandError(f"{args.dlq!r} is not a dead-letter queue (its DLQ is {args.dlq}-dlq)")
    result = replay(
        q.sqs,
        q.url(args.dlq),
        to=q.url(args.to) if args.to else None,
        filter=args.filter,
        limit=args.limit,
        dry_run=args.dry_run,
        rate=args.rate,
        progress=_print_progress(args.dlq) if args.progress else None,
    )
    verb = "would move" if args.dry_run else "moved"
    moved = result["matched"] if args.dry_run else result["moved"]
    print(f"{args.dlq}: matched {result['matched']}, {verb} {moved} ({result['method']})")
    return 0
