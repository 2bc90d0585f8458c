"""Traces: a span per completion with GenAI attributes, continuing the caller's
`traceparent`, sent as OTLP/HTTP JSON to a collector; the log line names the same trace.
And, on the same server, prompt and completion text in the log line once enabled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.observability.receiver import JsonReceiver
from tests.observability.test_live_stack import completion, request_log_line, wait_for

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Collector(JsonReceiver):
    """An OTLP/HTTP JSON endpoint: the spans and resources it was sent."""

    def bodies(self) -> list[dict[str, Any]]:
        return [rs for body in list(self.received) for rs in body["resourceSpans"]]

    def span(self, trace_id: str) -> dict[str, Any] | None:
        spans = [s for rs in self.bodies() for scope in rs["scopeSpans"] for s in scope["spans"]]
        return next((span for span in spans if span["traceId"] == trace_id), None)


def attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {item["key"]: next(iter(item["value"].values())) for item in span["attributes"]}


@pytest.fixture(scope="module")
def traced(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Collector]]:
    collector = Collector()
    running = start_server(
        [f"tiny={tiny_model}"],
        tmp_path_factory.mktemp("traced"),
        env={
            "DEMIGOD_OBSERVABILITY__OTLP_ENDPOINT": collector.url("/v1/traces"),
            "DEMIGOD_OBSERVABILITY__DEEP_PROBE_INTERVAL_SECONDS": "0",
            "DEMIGOD_OBSERVABILITY__LOG_CONTENT": "true",
        },
    )
    yield running, collector
    stop_server(running)
    collector.close()


def test_span_continues_the_callers_trace_with_genai_attributes(
    traced: tuple[Server, Collector],
) -> None:
    server, collector = traced
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    httpx.post(
        f"{server.url}/v1/completions",
        json={"model": "tiny", "prompt": "trace me", "max_tokens": 5, "ignore_eos": True},
        headers={"traceparent": traceparent, "X-Request-ID": "traced-1"},
        timeout=60,
    ).raise_for_status()
    span = wait_for("span exported", lambda: collector.span(CALLER_TRACE))
    assert span["parentSpanId"] == CALLER_SPAN
    assert span["name"] == "text_completion tiny" and span["kind"] == 2  # SERVER
    assert int(span["endTimeUnixNano"]) > int(span["startTimeUnixNano"])
    found = attributes(span)
    assert found["gen_ai.operation.name"] == "text_completion"
    assert found["gen_ai.request.model"] == found["gen_ai.response.model"] == "tiny"
    assert found["gen_ai.request.max_tokens"] == "5"
    assert found["gen_ai.usage.output_tokens"] == "5"
    assert int(found["gen_ai.usage.input_tokens"]) > 0
    assert found["http.response.status_code"] == "200"
    assert found["demigod.request_id"] == "traced-1"
    assert {"key": "service.name", "value": {"stringValue": "demigod"}} in (
        collector.bodies()[0]["resource"]["attributes"]
    )
    entry = request_log_line(server, "traced-1")
    assert (entry["trace_id"], entry["span_id"]) == (CALLER_TRACE, span["spanId"])


def test_a_request_without_traceparent_starts_a_trace_the_log_names(
    traced: tuple[Server, Collector],
) -> None:
    server, collector = traced
    completion(server, "traced-2", stream=True)
    entry = request_log_line(server, "traced-2")
    span = wait_for("span exported", lambda: collector.span(entry["trace_id"]))
    assert span["spanId"] == entry["span_id"] and "parentSpanId" not in span
    assert attributes(span)["demigod.stream"] is True


def test_without_a_collector_the_callers_trace_id_still_reaches_the_log(server: Server) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    httpx.post(
        f"{server.url}/v1/completions",
        json={"model": "tiny", "prompt": "no collector", "max_tokens": 2},
        headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01", "X-Request-ID": "untraced"},
        timeout=60,
    ).raise_for_status()
    assert request_log_line(server, "untraced")["trace_id"] == trace


def test_content_logging_puts_prompt_and_completion_in_the_log_line(
    traced: tuple[Server, Collector],
) -> None:
    server, _ = traced
    reply = completion(server, "content-1")
    entry = request_log_line(server, "content-1")
    assert entry["prompt"] == "observe me"
    assert entry["completion"] == reply.json()["choices"][0]["text"]
