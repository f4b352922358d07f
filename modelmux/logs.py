"""Logging: ``pretty`` for people, ``json`` (one object a line) for machines.

Two writers share stderr and the format: loguru for diagnostics (start-up, warnings,
tracebacks, uvicorn's and aiohttp's messages), and ``RequestLog`` below for the request
log line, one per request (modelmux/middleware.py), written straight to the stream: it
is on every request's path, and a loguru record costs several times the line itself.

Every line carries the request id of the request being served (a context
variable set by the middleware). Secrets never reach a line: configuration is
logged redacted, request bodies are not logged unless ``log_bodies = true``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

request_id_var: ContextVar[str] = ContextVar("modelmux_request_id", default="-")
#: What ``scrub`` replaces, longest first; rebuilt (never changed in place) as secrets come and go,
#: so a line being scrubbed in another thread never sees it change size.
_secrets: tuple[str, ...] = ()
_for_life: set[str] = set()  # add_secrets: for the rest of the process (a CLI command)
_held: dict[str, int] = {}  # hold_secrets: while a running app holds them (its lifespan)
_secrets_lock = threading.Lock()

PRETTY = "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> <cyan>{extra[request_id]}</cyan> {message}"
#: Fields a pretty request line leaves out: its message says them ("POST /v1/... -> 200 in 3.1 ms").
SAID_BY_MESSAGE = frozenset({"method", "status", "latency_ms"})
#: The fields a pretty line does not repeat as key=value (the request id has its own column).
_SAID = SAID_BY_MESSAGE | {"request_id"}
_SAID_WITH_ENDPOINT = _SAID | {"endpoint"}


def _kept(values: Iterable[str]) -> list[str]:
    return [v for v in values if v and len(v) >= 4]


def _rebuild_secrets() -> None:
    global _secrets
    _secrets = tuple(sorted(_for_life.union(_held), key=len, reverse=True))


def add_secrets(values: list[str]) -> None:
    """Values that must never appear in a log line (API keys, tokens), for the rest of the process."""
    with _secrets_lock:
        _for_life.update(_kept(values))
        _rebuild_secrets()


def hold_secrets(values: Iterable[str]) -> Callable[[], None]:
    """``values`` scrubbed until the returned function lets them go (once; calling it again does
    nothing). An app holds its configuration's secrets until it has shut down, so they do not
    outlive it in a process that runs one configuration after another (the test suite), where a
    text that is a secret only elsewhere would be hidden as ``***``."""
    kept = _kept(values)
    with _secrets_lock:
        for value in kept:
            _held[value] = _held.get(value, 0) + 1
        _rebuild_secrets()

    def release() -> None:
        with _secrets_lock:
            for value in kept:
                left = _held[value] - 1
                if left:
                    _held[value] = left
                else:
                    del _held[value]
            kept.clear()
            _rebuild_secrets()

    return release


def scrub(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def scrub_bytes(data: bytes) -> bytes:
    """``scrub`` for a body (e.g. an upstream's error answer): the same bytes when no secret is in it."""
    if not _secrets:
        return data
    text = data.decode("utf-8", "replace")
    cleaned = scrub(text)
    return data if cleaned == text else cleaned.encode()


#: At most this much of a body reaches a log line (``log_bodies = true``).
BODY_LOG_LIMIT = 16 * 1024


def redact_body(raw: bytes | str) -> str:
    """A body for a log line: secret-named fields as ``***``, known secrets scrubbed, bounded."""
    from modelmux.config import redact

    try:
        text = orjson.dumps(redact(orjson.loads(raw))).decode()
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = scrub(text)
    if len(text) > BODY_LOG_LIMIT:
        text = text[:BODY_LOG_LIMIT] + f"... ({len(text) - BODY_LOG_LIMIT} more characters)"
    return text


#: The standard levels' numbers (loguru's).
LEVEL_NUMBERS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}

# Loguru's default colours for the pretty format, so that both writers look alike on a terminal.
_RESET, _DIM, _GREEN, _CYAN = "\x1b[0m", "\x1b[2m", "\x1b[32m", "\x1b[36m"
_LEVEL_COLOURS = {
    "TRACE": "\x1b[36m\x1b[1m",
    "DEBUG": "\x1b[34m\x1b[1m",
    "INFO": "\x1b[1m",
    "SUCCESS": "\x1b[32m\x1b[1m",
    "WARNING": "\x1b[33m\x1b[1m",
    "ERROR": "\x1b[31m\x1b[1m",
    "CRITICAL": "\x1b[41m\x1b[1m",
}


def colour_wanted(stream: TextIO) -> bool:
    """Colours for a pretty log on ``stream``: on a terminal, unless ``NO_COLOR`` is set;
    ``FORCE_COLOR`` turns them on anywhere (both writers take this one answer)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stream-like object
        return False


def _json_line(time: datetime, level: str, message: str, fields: dict[str, Any], exception: str | None = None) -> str:
    """One JSON log line: what both writers write with ``log_format = "json"``."""
    out: dict[str, Any] = {"time": time.isoformat(), "level": level, "message": message}
    out.update(fields)
    if exception is not None:
        out["exception"] = exception
    return orjson.dumps(out, default=str).decode() + "\n"


class _Clock:
    """Now as ``HH:MM:SS.mmm``, local time (loguru's pretty format). The ``HH:MM:SS.`` part is
    made once a second and the milliseconds looked up: formatting four numbers with ``:02d``
    on every line cost about 7,000 instructions, a sixth of the line (docs/performance.md)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        t = time.time()
        second = int(t)
        if second != self._second:
            lt = time.localtime(second)
            self._prefix = f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}."
            self._second = second
        return self._prefix + _MILLISECONDS[int((t - second) * 1000)]


_MILLISECONDS = [f"{ms:03d}" for ms in range(1000)]
_clock = _Clock()
#: Level names padded as ``{level: <7}`` would (made once, not per line).
_PADDED = {name: f"{name: <7}" for name in LEVEL_NUMBERS}


@dataclass(frozen=True, slots=True)
class RequestLog:
    """The request log line's writer: one ``write`` per request, straight to stderr.

    It takes the format and level of ``[server]`` (``setup_logging``); without set-up it
    writes ``info`` and above, pretty and without colours (an application embedding the app).
    """

    level_no: int = LEVEL_NUMBERS["INFO"]
    json: bool = False
    colour: bool = False
    #: With several workers, the writing worker's pid (its ``/health`` ``worker_pid``); else None.
    worker_pid: int | None = None

    def enabled(self, level: str) -> bool:
        return LEVEL_NUMBERS.get(level, 0) >= self.level_no

    def write(self, level: str, message: str, fields: dict[str, Any]) -> None:
        """``message`` and ``fields`` (taken over: it is not copied) as one line on stderr."""
        fields.setdefault("request_id", request_id_var.get())
        if self.worker_pid is not None:
            fields["worker_pid"] = self.worker_pid
        if _secrets:
            message = _scrub_line(message, fields)
        # sys.stderr looked up on each line: it follows a redirect (pytest's capture, a supervisor's).
        if self.json:
            sys.stderr.write(_json_line(datetime.now().astimezone(), level, message, fields))
            return
        endpoint = fields.get("endpoint")
        # One set lookup a field: those the line says elsewhere are left out (the route template
        # too when the message's path is it: said once).
        unsaid = _SAID_WITH_ENDPOINT if endpoint is not None and f" {endpoint} " in message else _SAID
        kv = " ".join([f"{k}={v}" for k, v in fields.items() if k not in unsaid])
        clock = _clock.now()
        rid = fields["request_id"]
        padded = _PADDED.get(level) or f"{level: <7}"
        if self.colour:
            sys.stderr.write(
                f"{_GREEN}{clock}{_RESET} {_LEVEL_COLOURS.get(level, '')}{padded}{_RESET} {_CYAN}{rid}{_RESET} "
                f"{message}{f' {_DIM}{kv}{_RESET}' if kv else ''}\n"
            )
        else:
            sys.stderr.write(f"{clock} {padded} {rid} {message}{' ' + kv if kv else ''}\n")


_request_log = RequestLog()


def level_enabled(level: str) -> bool:
    """Whether a request line of ``level`` is written: lets the middleware skip building one nobody reads."""
    return _request_log.enabled(level)


def log_line(level: str, message: str, fields: dict[str, Any]) -> None:
    """The request's log line (``RequestLog.write``); ``fields`` is taken over, not copied."""
    _request_log.write(level, message, fields)


def _scrub_line(message: str, extra: dict[str, Any]) -> str:
    """``message`` scrubbed, and ``extra``'s text fields in place. One look over all the text at
    once: a line without a secret (nearly every line) is not scrubbed piece by piece."""
    texts = [message]
    texts += [value for value in extra.values() if isinstance(value, str)]
    joined = "\n".join(texts)
    for secret in _secrets:
        if secret in joined:
            break
    else:
        return message
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = scrub(value)
    return scrub(message)


def _patch(record: Record) -> None:
    extra = record["extra"]
    extra.setdefault("request_id", request_id_var.get())
    if _request_log.worker_pid is not None:
        extra["worker_pid"] = _request_log.worker_pid
    if _secrets:
        record["message"] = _scrub_line(record["message"], extra)


def _pretty_format(record: Record) -> str:
    # Structured fields (a diagnostic's bound ones) follow the message as key=value.
    fields = " ".join([f"{k}={v}" for k, v in record["extra"].items() if k != "request_id" and k != "_kv"])
    record["extra"]["_kv"] = fields
    return PRETTY + (" <dim>{extra[_kv]}</dim>" if fields else "") + "\n{exception}"


def _stderr_sink(message: Message) -> None:
    sys.stderr.write(message)


def _json_sink(message: Message) -> None:
    record = message.record
    fields = {k: v for k, v in record["extra"].items() if k != "_kv"}
    exception = scrub(str(record["exception"].value)) if record["exception"] is not None else None
    sys.stderr.write(_json_line(record["time"], record["level"].name, record["message"], fields, exception))


class _InterceptHandler(logging.Handler):
    """Route stdlib logging (uvicorn, aiohttp) through loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


#: The standard-library loggers ``setup_logging`` changes besides the root.
_STD_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
#: The loguru sink ``setup_logging`` added (it removes every other one), None before it ran.
_sink: int | None = None
#: ``setup_logging``'s arguments while its set-up is in force.
_setup: tuple[str, str, int] | None = None


@dataclass
class LogSetup:
    """The logging set-up at one moment (``snapshot_logging``), to put back with ``restore``:
    tests, and an application that runs the gateway for a while inside its own process."""

    setup: tuple[str, str, int] | None
    request_log: RequestLog
    root_level: int
    std_loggers: dict[str, tuple[list[logging.Handler], bool]] = field(default_factory=dict)

    def restore(self) -> None:
        """Undo the ``setup_logging`` calls made since the snapshot. Other handlers of the standard
        library's root logger (an application's, pytest's) are left as they are."""
        global _request_log, _setup, _sink
        root = logging.getLogger()
        root.handlers[:] = [h for h in root.handlers if not isinstance(h, _InterceptHandler)]
        if self.setup is not None:
            setup_logging(*self.setup)
        elif _sink is not None:
            # Before any set-up loguru had its default sink (stderr, every level); an application's
            # own sinks were removed by setup_logging and cannot come back.
            with contextlib.suppress(ValueError):  # someone removed it already
                logger.remove(_sink)
            _sink = None
            logger.add(_stderr_sink)
            _setup = None
        _request_log = self.request_log
        root.setLevel(self.root_level)
        for name, (handlers, propagate) in self.std_loggers.items():
            std = logging.getLogger(name)
            std.handlers[:] = handlers
            std.propagate = propagate


def snapshot_logging() -> LogSetup:
    std = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate) for name in _STD_LOGGERS}
    return LogSetup(_setup, _request_log, logging.getLogger().level, std)


def setup_logging(level: str = "info", fmt: str = "pretty", workers: int = 1) -> LogSetup:
    """Log at ``level`` and above in ``fmt`` (``pretty`` or ``json``) on stderr; ``workers`` > 1:
    this process is one of several workers, and its lines carry its pid. Returns the set-up it
    replaced (``restore()`` puts it back)."""
    global _request_log, _setup, _sink
    before = snapshot_logging()
    logger.remove()
    logger.configure(patcher=_patch)
    colour = fmt != "json" and colour_wanted(sys.stderr)
    _request_log = RequestLog(
        LEVEL_NUMBERS.get(level.upper(), 0), fmt == "json", colour, os.getpid() if workers > 1 else None
    )
    if fmt == "json":
        # The sink makes its own line from the record: "{message}" spares loguru formatting a default
        # line (with its timestamp) that nobody reads.
        _sink = logger.add(_json_sink, level=level.upper(), format="{message}", backtrace=False, diagnose=False)
    else:
        _sink = logger.add(
            _stderr_sink, level=level.upper(), format=_pretty_format, colorize=colour, backtrace=False, diagnose=False
        )
    _setup = (level, fmt, workers)
    # The stdlib level matters: uvicorn wraps the app in its (slow) message logger when
    # its logger is enabled for TRACE, so never leave the root at 0.
    std_level = logging.getLevelName(level.upper()) if level != "trace" else 5
    root = logging.getLogger()
    # Other handlers stay (``serve`` has none; pytest's capture has its own): restore() can leave them.
    root.handlers[:] = [*(h for h in root.handlers if not isinstance(h, _InterceptHandler)), _InterceptHandler()]
    root.setLevel(std_level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = [_InterceptHandler()]
        logging.getLogger(name).propagate = False
    # Access lines come from our middleware (one per request, with its id); silence uvicorn's.
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    return before
