"""OpenTelemetry traces: one span per completion, named and attributed after the GenAI
semantic conventions, continuing the caller's W3C `traceparent`.

Without `observability.otlp_endpoint` the tracer is the API's no-op: nothing is recorded or
sent, but a caller's trace id still reaches the log line. With it, spans go to an
OpenTelemetry Collector as OTLP/HTTP JSON (the collector's `/v1/traces`). JSON rather than
the official protobuf exporter because that exporter needs protobuf 5, and llama.cpp's
converter (the `build` extra) pins protobuf below 5; the JSON encoding is part of OTLP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from demigod import __version__

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
# How long finished spans wait to be sent together, and the collector's time to answer.
EXPORT_DELAY_MS = 1000
EXPORT_TIMEOUT_S = 10.0


def incoming_context(headers: Mapping[str, str]) -> Context:
    """The caller's trace context from a `traceparent` header (empty if none or invalid)."""
    return _PROPAGATOR.extract(dict(headers))


def trace_ids(span: Span) -> tuple[str | None, str | None]:
    """(trace id, span id) as lower-case hex, or (None, None) for no trace."""
    context = span.get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def wall_clock_ns(perf_counter_stamp: float) -> int:
    """Epoch nanoseconds of an earlier `time.perf_counter()` reading."""
    return time.time_ns() - int((time.perf_counter() - perf_counter_stamp) * 1e9)


class Tracing:
    """The tracer one app uses, and how to flush it at shutdown."""

    def __init__(self, otlp_endpoint: str | None) -> None:
        """A no-op tracer when `otlp_endpoint` is None, else one exporting there."""
        self._provider: TracerProvider | None = None
        if otlp_endpoint is None:
            self.tracer: Tracer = trace.NoOpTracer()
            return
        resource = Resource.create({"service.name": "demigod", "service.version": __version__})
        # A provider of our own, not the global one: two apps in a process stay apart.
        self._provider = TracerProvider(resource=resource)
        self._provider.add_span_processor(
            BatchSpanProcessor(
                OtlpJsonSpanExporter(otlp_endpoint), schedule_delay_millis=EXPORT_DELAY_MS
            )
        )
        self.tracer = self._provider.get_tracer("demigod", __version__)

    def start_completion(
        self,
        *,
        operation: str,
        model: str,
        started_ns: int,
        parent: Context,
        attributes: Mapping[str, Any],
    ) -> Span:
        """A SERVER span named `{operation} {model}` (GenAI conventions), started at
        `started_ns`, child of the caller's span when `parent` carries one."""
        return self.tracer.start_span(
            f"{operation} {model}",
            context=parent,
            kind=SpanKind.SERVER,
            start_time=started_ns,
            attributes=dict(attributes),
        )

    def shutdown(self) -> None:
        """Send the spans still waiting; no-op without an exporter."""
        if self._provider is not None:
            self._provider.shutdown()


def _value(value: Any) -> dict[str, Any]:
    # OTLP/JSON AnyValue; int64 travels as a string, as proto3 JSON maps it.
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_value(item) for item in value]}}
    return {"stringValue": str(value)}


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": key, "value": _value(value)} for key, value in (attributes or {}).items()]


class OtlpJsonSpanExporter(SpanExporter):
    """Sends finished spans to an OTLP/HTTP endpoint in the JSON encoding."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint
        self._client = httpx.Client(timeout=EXPORT_TIMEOUT_S)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            reply = self._client.post(self._endpoint, json=self.encode(spans))
            reply.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("trace export failed", extra={"error": str(exc), "spans": len(spans)})
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    @staticmethod
    def encode(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
        """The ExportTraceServiceRequest for `spans` (SDK ReadableSpans), as JSON."""
        encoded = []
        for span in spans:
            context = span.get_span_context()
            if context is None:
                continue
            entry: dict[str, Any] = {
                "traceId": f"{context.trace_id:032x}",
                "spanId": f"{context.span_id:016x}",
                "name": span.name,
                # OTLP's SpanKind numbering is the API's plus one (0 is UNSPECIFIED).
                "kind": span.kind.value + 1,
                "startTimeUnixNano": str(span.start_time),
                "endTimeUnixNano": str(span.end_time),
                "attributes": _attributes(span.attributes),
                "status": {"code": span.status.status_code.value},
            }
            if span.parent is not None:
                entry["parentSpanId"] = f"{span.parent.span_id:016x}"
            encoded.append(entry)
        resource = spans[0].resource.attributes if spans else {}
        return {
            "resourceSpans": [
                {
                    "resource": {"attributes": _attributes(resource)},
                    "scopeSpans": [{"scope": {"name": "demigod"}, "spans": encoded}],
                }
            ]
        }

    def shutdown(self) -> None:
        self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
