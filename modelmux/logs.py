"""Logging with loguru: ``pretty`` for people, ``json`` (one object a line) for machines.

Every line carries the request id of the request being served (a context
variable set by the middleware). Secrets never reach a line: configuration is
logged redacted, request bodies are not logged unless ``log_bodies = true``.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

request_id_var: ContextVar[str] = ContextVar("modelmux_request_id", default="-")
_secrets: set[str] = set()

PRETTY = "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> <cyan>{extra[request_id]}</cyan> {message}"


def add_secrets(values: list[str]) -> None:
    """Values that must never appear in a log line (API keys, tokens)."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def scrub(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


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


#: The standard levels' numbers (loguru's), for ``level_enabled``.
LEVEL_NUMBERS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def level_enabled(level: str) -> bool:
    """Whether some sink takes lines of ``level``: lets a hot path skip building a line nobody writes.

    Loguru has no public way to ask; its core keeps the lowest level of its sinks (``min_level``,
    updated by ``logger.add``/``remove``). Without it (another loguru version) every line is built,
    as before."""
    min_level = getattr(getattr(logger, "_core", None), "min_level", 0)
    return LEVEL_NUMBERS.get(level, 0) >= min_level


@dataclass(frozen=True, slots=True)
class _Direct:
    """``setup_logging``'s sink, when a line can be written to it exactly as loguru would."""

    handler_id: int
    level_no: int
    #: The pretty sink's stream (bound when it was added); None: the JSON sink (``sys.stderr`` at call time).
    stream: TextIO | None


_direct: _Direct | None = None


def _only_sink(handler_id: int) -> bool:
    handlers = getattr(getattr(logger, "_core", None), "handlers", None)
    return isinstance(handlers, dict) and len(handlers) == 1 and handler_id in handlers


def log_line(level: str, message: str, fields: dict[str, Any]) -> None:
    """One structured line (the request log line): ``logger.bind(**fields).log(level, message)``.

    Loguru builds a full record for every line (caller frame, thread, process, two clocks,
    a copy for the formatter): about 50 µs, a tenth of a proxied request's CPU. While the
    only sink is the one ``setup_logging`` added, and it is not colourising, the same line
    (same fields, order, format, scrubbing) is written here directly. Any other sink (a
    test's, an embedding application's) gets every line through loguru as before.
    ``fields`` becomes the line's extra fields (it is not copied).
    """
    direct = _direct
    if direct is None or LEVEL_NUMBERS.get(level, 0) < direct.level_no or not _only_sink(direct.handler_id):
        logger.opt(depth=1).bind(**fields).log(level, message)  # the caller's function and line, as before
        return
    fields.setdefault("request_id", request_id_var.get())
    if _secrets:
        message = _scrub_line(message, fields)
    if direct.stream is None:
        _write_json(datetime.now().astimezone(), level, message, fields)
        return
    now = datetime.now()
    kv = " ".join([f"{k}={v}" for k, v in fields.items() if k != "request_id"])
    direct.stream.write(
        f"{now.hour:02d}:{now.minute:02d}:{now.second:02d}.{now.microsecond // 1000:03d} {level: <7} "
        f"{fields['request_id']} {message}{' ' + kv if kv else ''}\n"
    )


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
    if _secrets:
        record["message"] = _scrub_line(record["message"], extra)


def _pretty_format(record: Record) -> str:
    # Structured fields (the request line's) follow the message as key=value.
    fields = " ".join([f"{k}={v}" for k, v in record["extra"].items() if k != "request_id" and k != "_kv"])
    record["extra"]["_kv"] = fields
    return PRETTY + (" <dim>{extra[_kv]}</dim>" if fields else "") + "\n{exception}"


def _write_json(time: datetime, level: str, message: str, fields: dict[str, Any], exception: str | None = None) -> None:
    """One JSON line on stderr: what the JSON sink writes, whether loguru or ``log_line`` made the line."""
    out: dict[str, Any] = {"time": time.isoformat(), "level": level, "message": message}
    out.update(fields)
    if exception is not None:
        out["exception"] = exception
    sys.stderr.write(orjson.dumps(out, default=str).decode() + "\n")


def _json_sink(message: Message) -> None:
    record = message.record
    fields = {k: v for k, v in record["extra"].items() if k != "_kv"}
    exception = scrub(str(record["exception"].value)) if record["exception"] is not None else None
    _write_json(record["time"], record["level"].name, record["message"], fields, exception)


class _InterceptHandler(logging.Handler):
    """Route stdlib logging (uvicorn, aiohttp) through loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _colorize(stream: TextIO) -> bool:
    """Loguru's own choice for a stream sink (terminal, CI, IDE), so that both writers agree."""
    try:
        from loguru._colorama import should_colorize
    except ImportError:  # another loguru version: its default is "a terminal"
        return stream.isatty()
    return bool(should_colorize(stream))  # type: ignore[no-untyped-call]


def setup_logging(level: str = "info", fmt: str = "pretty") -> None:
    global _direct
    logger.remove()
    logger.configure(patcher=_patch)
    level_no = LEVEL_NUMBERS.get(level.upper(), 0)
    if fmt == "json":
        # The sink makes its own line from the record: "{message}" spares loguru formatting a default
        # line (with its timestamp) that nobody reads.
        sink = logger.add(_json_sink, level=level.upper(), format="{message}", backtrace=False, diagnose=False)
        _direct = _Direct(sink, level_no, None)
    else:
        stream = sys.stderr
        colorize = _colorize(stream)
        sink = logger.add(
            stream, level=level.upper(), format=_pretty_format, colorize=colorize, backtrace=False, diagnose=False
        )
        # Colours only on a terminal, where nobody serves thousands of requests a second: loguru writes those.
        _direct = None if colorize else _Direct(sink, level_no, stream)
    # The stdlib level matters: uvicorn wraps the app in its (slow) message logger when
    # its logger is enabled for TRACE, so never leave the root at 0.
    std_level = logging.getLevelName(level.upper()) if level != "trace" else 5
    logging.basicConfig(handlers=[_InterceptHandler()], level=std_level, force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = [_InterceptHandler()]
        logging.getLogger(name).propagate = False
    # Access lines come from our middleware (one per request, with its id); silence uvicorn's.
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
