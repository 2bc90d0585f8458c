"""Probes and Prometheus metrics, read as an operator's tools would."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server


def scrape(server: Server) -> dict[str, float]:
    """{'name{label="v",...}': value} for every demigod sample."""
    samples: dict[str, float] = {}
    text = httpx.get(f"{server.url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_probes(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == ["tiny"]
    deep = httpx.get(f"{server.url}/healthz/deep", timeout=30)
    assert deep.status_code == 200, deep.text
    assert deep.json()["models"] == {"tiny": "ok"}


def test_requests_and_tokens_are_counted(server: Server) -> None:
    key = 'demigod_requests_total{model="tiny",status="200",tenant="anonymous",version="local"}'
    out_key = 'demigod_tokens_total{model="tiny",tenant="anonymous",type="output"}'
    before = scrape(server)
    body = {"model": "tiny", "prompt": "count me", "max_tokens": 5, "ignore_eos": True}
    assert httpx.post(f"{server.url}/v1/completions", json=body).status_code == 200
    bad = httpx.post(f"{server.url}/v1/completions", json={**body, "model": "nope"})
    assert bad.status_code == 404
    after = scrape(server)
    assert after[key] - before.get(key, 0) == 1
    assert after[out_key] - before.get(out_key, 0) == 5
    missing = 'demigod_requests_total{model="none",status="404",tenant="anonymous",version="none"}'
    assert after[missing] - before.get(missing, 0) == 1
    duration = 'demigod_request_duration_seconds_count{model="tiny",tenant="anonymous"}'
    assert after[duration] - before.get(duration, 0) == 1
    assert 'demigod_queue_depth{model="tiny",replica="127.0.0.1:' in "".join(after)


def test_request_id_is_echoed(server: Server) -> None:
    reply = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "abc123"})
    assert reply.headers["x-request-id"] == "abc123"


def test_queue_wait_and_batch_size_are_exported(server: Server) -> None:
    def counters() -> dict[str, float]:
        samples = scrape(server)
        return {
            name: samples.get(f'demigod_{name}_total{{model="tiny"}}', 0.0)
            for name in (
                "queue_admitted",
                "queue_wait_seconds",
                "decode_steps",
                "decode_step_sequences",
            )
        }

    before = counters()
    body = {"model": "tiny", "prompt": "batch me", "max_tokens": 6, "ignore_eos": True}
    for _ in range(3):
        assert httpx.post(f"{server.url}/v1/completions", json=body).status_code == 200
    after = counters()
    assert after["queue_admitted"] - before["queue_admitted"] == 3
    assert after["queue_wait_seconds"] >= before["queue_wait_seconds"]
    steps = after["decode_steps"] - before["decode_steps"]
    assert steps >= 3 * 6  # at least one step per generated token
    assert after["decode_step_sequences"] - before["decode_step_sequences"] >= steps
