"""The local HTTP port: the API, the upstream simulators and a small control API.

One uvicorn server (in a thread) serves an ASGI app that dispatches by path:

* ``/_sim/<capability>/…`` → that capability's simulator (``functions/<cap>/simulator.py:
  create_app()``, contract B), mounted with Starlette so the simulator sees ``root_path``;
  simulators' lifespans run with the server;
* ``/_localcloud/…`` → the control API the CLI uses against a running ``opsdeck local up``
  (``GET state``, ``POST fire/<schedule>``, ``GET queues/<queue>/peek``);
* ``/_console`` → the ops console page (``functions/ops/static/index.html``) with a token from
  the local dev issuer (role ``ops-admin``, 12 h) in a ``<meta>`` tag, served only to a
  loopback ``Host`` (a DNS-rebinding page cannot read it); its script, style and every ``/ops/…``
  call go through the gateway to the real ``ops-api`` handler, as on AWS;
* everything else → ``Gateway.handle`` on a worker thread (the Lambda handlers are
  synchronous), i.e. API Gateway in front of the catalog's HTTP functions.

The socket is bound before the server starts, so the port (and a clear "port in use"
error) is known at once, and ``port=0`` works for tests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud.errors import LocalCloudError


def _control_app(cloud: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(cloud.describe))

    async def fire(request: Request) -> JSONResponse:
        name = request.path_params["name"]

        def run() -> tuple[int, dict[str, Any]]:
            from localcloud.runtime import InvocationError

            try:
                return 200, {"result": cloud.fire(name)}
            except InvocationError as exc:
                return 200, {"error": exc.payload}
            except LocalCloudError as exc:
                return 404, {"message": exc.detail}

        status, body = await run_in_threadpool(run)
        return JSONResponse(json.loads(json.dumps(body, default=str)), status_code=status)

    async def peek(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        limit = int(request.query_params.get("limit", "10"))
        try:
            messages = await run_in_threadpool(cloud.peek, name, limit)
        except LocalCloudError as exc:
            return JSONResponse({"message": exc.detail}, status_code=404)
        return JSONResponse({"messages": messages})

    return [
        Route("/_localcloud/state", state),
        Route("/_localcloud/fire/{name}", fire, methods=["POST"]),
        Route("/_localcloud/queues/{name}/peek", peek),
    ]


class FrontDoor:
    """The ASGI app of the local port."""

    def __init__(self, gateway: Any, simulators: Mapping[str, Any], cloud: Any) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Mount

        self.gateway = gateway
        sims = dict(simulators)

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            async with contextlib.AsyncExitStack() as stack:
                for sim in sims.values():
                    router = getattr(sim, "router", None)
                    context = getattr(router, "lifespan_context", None)
                    if context is not None:
                        await stack.enter_async_context(context(sim))
                yield

        routes = [Mount(f"/_sim/{cap}", app=sim) for cap, sim in sims.items()]
        self.local = Starlette(routes=[*routes, *_control_app(cloud)], lifespan=lifespan)

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self.local(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith(("/_sim/", "/_localcloud/")):
            await self.local(scope, receive, send)
            return
        if path in ("/_console", "/_console/"):
            await self._console(scope, send)
            return
        await self._api(scope, receive, send)

    async def _console(self, scope: dict[str, Any], send: Callable) -> None:
        status, headers, body = console_page(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _api(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        from starlette.concurrency import run_in_threadpool

        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        client = scope.get("client") or ("127.0.0.1", 0)
        response = await run_in_threadpool(
            self.gateway.handle,
            scope["method"],
            scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or scope["path"],
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=b"".join(chunks),
            source_ip=client[0],
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
CONSOLE_SUBJECT = "local-console"
CONSOLE_TOKEN_TTL_S = 12 * 3600


def console_page(host: str) -> tuple[int, dict[str, str], bytes]:
    """The console page for the local cloud: the shipped HTML plus a local dev-issuer token."""
    from functions.ops.console import SECURITY_HEADERS, asset
    from opsdeck.auth import issue_dev_token

    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    headers = {**SECURITY_HEADERS, "content-type": "text/html; charset=utf-8"}
    if hostname not in LOOPBACK_HOSTS:
        body = b"the local console answers only to 127.0.0.1 / localhost\n"
        return 403, {**headers, "content-type": "text/plain; charset=utf-8"}, body
    token = issue_dev_token(CONSOLE_SUBJECT, ["ops-admin"], ttl_s=CONSOLE_TOKEN_TTL_S)
    meta = f'<meta name="opsdeck-token" content="{token}">\n</head>'.encode()
    return 200, headers, asset("index.html").replace(b"</head>", meta, 1)


class HttpServer:
    """uvicorn on a pre-bound socket, in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only for
        # sockets whose proto says TCP; without it Nagle + delayed ACKs add ~40 ms per response.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise LocalCloudError(f"cannot listen on {host}:{port} for HTTP: {exc.strerror}") from None
        self.host, self.port = host, self.sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_keep_alive=30,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.sock]}, name="localcloud-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LocalCloudError("the local HTTP server did not start (see the log above)")
            time.sleep(0.002)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


# ------------------------------------------------------------------ simulators


@dataclass
class Served:
    """A simulator served on its own port: its URL, the simulator behind it (if any), the server."""

    url: str
    simulator: Any
    server: Any
    thread: threading.Thread


@contextlib.contextmanager
def serve_simulator(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 10.0
) -> Iterator[Served]:
    """Run a capability simulator's ``app`` with uvicorn in a daemon thread (tests, benches, the
    ``opsdeck <capability> simulator`` commands); stops on exit, even with requests still hanging."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://{host}:{bound}", getattr(app.state, "simulator", None), server, thread)
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout_s)


def serve_simulator_until_interrupted(
    app: Any, port: int, title: str, environment: Callable[[str], Mapping[str, str]]
) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until Ctrl-C, printing ``environment(url)``, which
    points the functions at it; ``OSError``/``RuntimeError`` when it cannot listen."""
    with serve_simulator(app, port=port) as served:
        print(f"{title} at {served.url} (Ctrl-C stops it); point the functions at it with:")
        for key, value in environment(served.url).items():
            print(f"export {key}='{value}'")
        with contextlib.suppress(KeyboardInterrupt):
            while served.thread.is_alive():
                time.sleep(0.5)
