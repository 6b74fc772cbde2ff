"""Running catalog functions in this process as Lambda would run them.

* **Environment per function.** Every function sees exactly the environment a deployment
  gives it (``Function.runtime_environment`` + wiring + the platform's connection settings,
  contract C), while all functions share one process. ``os.environ`` is replaced (once,
  idempotently) by a view that overlays the *current invocation's* variables, held in a
  ``ContextVar``: invocations on different threads see different environments with no lock
  and no save/restore of the process environment. The overlay follows the invocation into
  asyncio tasks and into Starlette/anyio worker threads (they copy the context). The
  platform variables (database, Redis, AWS endpoint, JWT) are the same for every function,
  so the layer's cached settings and clients stay valid across functions and are never
  reset between invocations.
* **Handlers** are imported lazily, once, under their function's environment.
* **Context**: a Lambda context with request id, ARN, memory and
  ``get_remaining_time_in_millis`` counting down from the catalog timeout.
* **Failures** never escape: an invocation ends as ``ok``, ``error`` (the handler raised;
  Lambda's ``errorMessage``/``errorType``/``stackTrace``) or ``timeout`` (it ran longer than
  the catalog timeout; in-process code cannot be killed, so this is detected afterwards).
* **Logs**: with ``capture_logs=True`` (or ``FunctionRuntime.keep_logs``, which the local cloud
  sets so the ops console can show every invocation's lines) the invocation's log records
  (Powertools' JSON lines and anything else logged) are collected too, for ``opsdeck invoke``,
  ``LogType=Tail`` and the console. The event is kept on the ``Invocation`` as well.

Known gaps (documented in docs/localcloud.md): module-level state is shared by the
functions of one process (a Lambda container would not share it), memory limits are not
enforced, and threads a handler starts itself do not inherit its environment overlay.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import importlib
import logging
import os
import threading
import time
import traceback
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud.events import ACCOUNT_ID, REGION

_overlay: contextvars.ContextVar[Mapping[str, str | None] | None] = contextvars.ContextVar(
    "opsdeck_function_environment", default=None
)
_capture: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "opsdeck_log_capture", default=None
)


# ------------------------------------------------------------------ environment


class FunctionEnviron(os._Environ):  # type: ignore[name-defined]
    """``os.environ`` whose reads see the current invocation's variables first.

    It shares the real environment's storage, so writes (``monkeypatch.setenv``, a handler
    setting a variable) behave exactly as before; only reads inside an invocation differ.
    A ``None`` in the overlay hides a variable.
    """

    def __init__(self, base: os._Environ) -> None:  # type: ignore[name-defined]
        super().__init__(base._data, base.encodekey, base.decodekey, base.encodevalue, base.decodevalue)

    def __getitem__(self, key: str) -> str:
        overlay = _overlay.get()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:
        overlay = _overlay.get()
        if overlay is None:
            yield from super().__iter__()
            return
        for key in super().__iter__():
            if key not in overlay:
                yield key
        yield from (k for k, v in overlay.items() if v is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self.items())


def install_environ() -> None:
    """Make ``os.environ`` overlay-aware (idempotent; harmless outside invocations)."""
    if not isinstance(os.environ, FunctionEnviron):
        os.environ = FunctionEnviron(os.environ)  # noqa: B003 - same storage, overlay-aware reads


@contextlib.contextmanager
def function_environment(env: Mapping[str, str | None]) -> Iterator[None]:
    """Run the body with ``env`` overlaid on ``os.environ`` (this context only)."""
    install_environ()
    token = _overlay.set(env)
    try:
        yield
    finally:
        _overlay.reset(token)


# ------------------------------------------------------------------------ logs


_captured: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()


class _CaptureHandler(logging.Handler):
    """Copies records into the current invocation's log sink, once per record (the first
    logger with handlers formats it: Powertools' JSON for its loggers)."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _capture.get()
        if sink is None or record in _captured:
            return
        _captured.add(record)  # not an attribute: formatters would print it as an extra field
        try:
            sink.append(self.format(record))
        except Exception:  # a log line must never fail an invocation
            sink.append(record.getMessage())


_PLAIN = logging.Formatter("[%(levelname)s]\t%(name)s\t%(message)s")


def attach_log_capture() -> None:
    """Collect log records of every logger that has its own handlers (Powertools) and of the root."""
    candidates = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.handlers:
            candidates.append(logger)
    for logger in candidates:
        if any(isinstance(h, _CaptureHandler) for h in logger.handlers):
            continue
        handler = _CaptureHandler()
        own = (
            None if logger is logging.getLogger() else next((h for h in logger.handlers if h.formatter), None)
        )
        handler.setFormatter(own.formatter if own else _PLAIN)
        logger.addHandler(handler)


# --------------------------------------------------------------------- context


class LambdaContext:
    """The ``context`` Lambda passes: ids, ARN, memory, remaining time from the catalog timeout."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: int, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d") + "/[$LATEST]" + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# ------------------------------------------------------------------ invocation


@dataclass
class Invocation:
    function: str
    trigger: str
    request_id: str
    start: float  # epoch seconds on the cloud's clock
    duration_ms: float = 0.0
    outcome: str = "ok"
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    stack: list[str] = field(default_factory=list)
    logs: list[str] | None = None
    exception: BaseException | None = None
    event: Any = None

    @property
    def failed(self) -> bool:
        return self.outcome in ("error", "timeout", "throttled")

    def lambda_error(self) -> dict[str, Any]:
        """The payload Lambda returns for a failed invocation."""
        return {
            "errorMessage": self.error or "",
            "errorType": self.error_type or "Error",
            "requestId": self.request_id,
            "stackTrace": self.stack,
        }


class InvocationError(Exception):
    """A function invocation failed; ``invocation`` has the details, ``payload`` Lambda's error."""

    def __init__(self, invocation: Invocation) -> None:
        super().__init__(f"{invocation.function}: {invocation.error}")
        self.invocation = invocation
        self.payload = invocation.lambda_error()


def _ensure_event_loop() -> None:
    """Mangum (HTTP handlers) runs the ASGI app on the thread's current event loop: make sure
    there is an open one (checked every time: ``asyncio.run`` elsewhere in the thread unsets it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            if not asyncio.get_event_loop_policy().get_event_loop().is_closed():
                return
        except RuntimeError:
            pass
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        if threading.current_thread() is not threading.main_thread():  # the main thread's stays usable
            with _loops_lock:
                _loops.append(loop)


_loops: list[asyncio.AbstractEventLoop] = []
_loops_lock = threading.Lock()


def close_event_loops() -> None:
    """Close the idle event loops created for handlers on worker threads (unclosed loops complain
    at exit); a thread that runs a handler again simply gets a new one."""
    with _loops_lock:
        keep = []
        for loop in _loops:
            if loop.is_running():
                keep.append(loop)
            elif not loop.is_closed():
                loop.close()
        _loops[:] = keep


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_offload_pool: concurrent.futures.ThreadPoolExecutor | None = None
_offload_lock = threading.Lock()


def _offload(call: Callable[[], Invocation]) -> Invocation:
    """Run ``call`` on a worker thread (we are inside an event loop, which Mangum cannot reuse)."""
    global _offload_pool
    with _offload_lock:
        if _offload_pool is None:
            _offload_pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="localcloud-invoke")
    context = contextvars.copy_context()
    return _offload_pool.submit(context.run, call).result()


class FunctionRuntime:
    """One catalog function: its environment overlay, its lazily imported handler."""

    def __init__(self, function: Any, env: Mapping[str, str | None], clock: Any) -> None:
        self.function = function
        self.env = dict(env)
        self.clock = clock
        self._handler: Callable[[Any, Any], Any] | None = None
        self._import_lock = threading.Lock()
        #: collect every invocation's log lines, not only when asked (the local cloud's console)
        self.keep_logs = False
        limit = function.reserved_concurrency
        self._slots = threading.BoundedSemaphore(limit) if limit else None

    def handler(self) -> Callable[[Any, Any], Any]:
        if self._handler is None:
            with self._import_lock, function_environment(self.env):
                if self._handler is None:
                    module = importlib.import_module(self.function.module)
                    handler = getattr(module, self.function.attribute, None)
                    if not callable(handler):
                        raise AttributeError(
                            f"{self.function.handler}: module {self.function.module} has no callable "
                            f"{self.function.attribute!r}"
                        )
                    self._handler = handler
                    attach_log_capture()
        return self._handler

    def invoke(
        self,
        event: Any,
        *,
        trigger: str,
        capture_logs: bool = False,
        throttle: bool = False,
        request_id: str | None = None,
    ) -> Invocation:
        """Run the handler once; never raises (the ``Invocation`` says what happened).

        ``throttle=True`` fails at once (outcome ``throttled``) when the function's reserved
        concurrency is exhausted, as Lambda does for synchronous callers; otherwise the call
        waits for a slot.
        """
        if _in_running_loop():
            return _offload(
                lambda: self.invoke(
                    event,
                    trigger=trigger,
                    capture_logs=capture_logs,
                    throttle=throttle,
                    request_id=request_id,
                )
            )
        invocation = Invocation(
            function=self.function.name,
            trigger=trigger,
            request_id=request_id or str(uuid.uuid4()),
            start=self.clock.time(),
            event=event,
        )
        if self._slots is not None and not self._slots.acquire(blocking=not throttle):
            invocation.outcome = "throttled"
            invocation.error_type = "TooManyRequestsException"
            invocation.error = "Rate Exceeded."
            return invocation
        sink: list[str] | None = [] if capture_logs or self.keep_logs else None
        token = _capture.set(sink)
        started = time.perf_counter()
        try:
            with function_environment(self.env):
                handler = self.handler()
                _ensure_event_loop()
                context = LambdaContext(
                    self.function.name,
                    self.function.memory_mb,
                    self.function.timeout_s,
                    invocation.request_id,
                )
                invocation.result = handler(event, context)
        except Exception as exc:
            invocation.outcome = "error"
            invocation.error_type = type(exc).__name__
            invocation.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            invocation.stack = traceback.format_list(traceback.extract_tb(exc.__traceback__))
            invocation.exception = exc
            logging.getLogger("localcloud").debug("invocation failed", exc_info=exc)
        finally:
            invocation.duration_ms = (time.perf_counter() - started) * 1000
            _capture.reset(token)
            if self._slots is not None:
                self._slots.release()
        if invocation.outcome == "ok" and invocation.duration_ms > self.function.timeout_s * 1000:
            invocation.outcome = "timeout"
            invocation.error_type = "Sandbox.Timedout"
            invocation.error = f"Task timed out after {self.function.timeout_s:.2f} seconds"
            invocation.result = None
        invocation.logs = sink
        return invocation
