"""OpenTelemetry traces: optional (``pip install modelmux[otel]``), off unless ``[tracing] enabled = true``.

One SERVER span per request (continuing the client's W3C ``traceparent`` when it
sent one) and one CLIENT span per upstream HTTP call, i.e. per upstream attempt,
whose context goes upstream in ``traceparent``/``tracestate``. The upstream spans
come from an aiohttp ``TraceConfig`` on the pooled client, so providers need no
code for it. ``opentelemetry`` is imported only when tracing is on.

Exporting: if the application already installed a tracer provider (tests, an
``opentelemetry-instrument`` launcher), spans go there; else an SDK provider is
made with the OTLP/HTTP exporter, configured by the standard ``OTEL_EXPORTER_OTLP_*``
environment variables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from loguru import logger

from modelmux import __version__

if TYPE_CHECKING:
    import aiohttp

    from modelmux.config import TracingSettings
    from modelmux.context import RequestContext

_tracer: Any = None
_configured = False


def setup(settings: TracingSettings) -> Any:
    """The tracer when tracing is enabled and installed, else None (idempotent)."""
    global _tracer, _configured
    if not settings.enabled:
        return None
    if _configured:
        return _tracer
    _configured = True
    try:
        from opentelemetry import trace
    except ImportError:
        logger.error("tracing.enabled is true but OpenTelemetry is not installed: pip install 'modelmux[otel]'")
        return None
    if type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider" and not _install_sdk_provider(
        settings.service_name
    ):
        return None
    _tracer = trace.get_tracer("modelmux", __version__)
    return _tracer


def _install_sdk_provider(service_name: str) -> bool:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.error("tracing.enabled is true but the OpenTelemetry SDK is missing: pip install 'modelmux[otel]'")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    except ImportError:
        logger.warning("no OTLP exporter installed (pip install 'modelmux[otel]'): spans are not exported")
    trace.set_tracer_provider(provider)
    return True


@contextlib.contextmanager
def request_span(tracer: Any, method: str, headers: dict[bytes, bytes]) -> Iterator[Any]:
    """The SERVER span of one request, current while it is served."""
    from opentelemetry import context, propagate, trace

    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
    parent = propagate.extract(carrier)
    span = tracer.start_span(
        method, context=parent, kind=trace.SpanKind.SERVER, attributes={"http.request.method": method}
    )
    token = context.attach(trace.set_span_in_context(span, parent))
    try:
        yield span
    finally:
        context.detach(token)
        span.end()


def finish_request_span(span: Any, method: str, status: int, ctx: RequestContext) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{method} {ctx.endpoint}")
    span.set_attribute("http.route", ctx.endpoint)
    span.set_attribute("http.response.status_code", status)
    for key in ("model", "provider", "deployment", "cache", "retries", "request_id"):
        value = getattr(ctx, key)
        if value is not None:
            span.set_attribute(f"modelmux.{key}", value)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, str(ctx.error or status)))


def client_trace_config(tracer: Any) -> aiohttp.TraceConfig:
    """Spans around every upstream HTTP call of the pooled client, with W3C context injected."""
    import aiohttp
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Status, StatusCode

    async def on_start(_: Any, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        url = params.url
        span = tracer.start_span(
            f"{params.method} {url.host}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "http.request.method": params.method,
                # Without the query: some upstreams take keys there.
                "url.full": str(url.with_query(None)),
                "server.address": url.host or "",
                "server.port": url.port or 0,
            },
        )
        ctx.span = span
        propagate.inject(params.headers, context=trace.set_span_in_context(span))

    async def on_end(_: Any, ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        span = getattr(ctx, "span", None)
        if span is None:
            return
        status = params.response.status
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_status(Status(StatusCode.ERROR, f"upstream status {status}"))
        span.end()

    async def on_error(_: Any, ctx: Any, params: aiohttp.TraceRequestExceptionParams) -> None:
        span = getattr(ctx, "span", None)
        if span is None:
            return
        span.record_exception(params.exception)
        span.set_status(Status(StatusCode.ERROR, type(params.exception).__name__))
        span.end()

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_error)
    return config
