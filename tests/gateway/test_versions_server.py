"""Versions and rules on a real server: two versions of one name split 50/50 by session,
each conversation on one version, the version in the route header and the canary gauge."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demigod.observability.scrape import Snapshot
from tests.conftest import Server, start_server, stop_server


@pytest.fixture(scope="module")
def versioned(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = f"""
models:
  - {{name: tiny, path: {tiny_model}, version: v1}}
  - {{name: tiny, path: {tiny_model}, version: v2}}
  - {{name: helper, path: {tiny_model}, categories: [code]}}
routing:
  rules:
    - {{tenant: acme, model: tiny}}
    - {{category: chat, max_prompt_tokens: 5, model: helper}}
canary:
  weights: {{tiny: 50}}
"""
    running = start_server([], tmp_path_factory.mktemp("versions"), config=config)
    yield running
    stop_server(running)


def version_of(reply: httpx.Response) -> str:
    assert reply.status_code == 200, reply.text
    found = re.search(r"version=([^;]+);", reply.headers["x-demigod-route"])
    assert found is not None
    return found.group(1)


def test_each_session_keeps_one_version_and_both_serve(versioned: Server) -> None:
    body = {"model": "tiny", "prompt": "hello", "max_tokens": 1}
    seen: dict[str, set[str]] = collections.defaultdict(set)
    with httpx.Client(base_url=versioned.url, timeout=30) as client:
        for _turn in range(3):
            for session in range(12):
                if session % 2:
                    reply = client.post("/v1/completions", json={**body, "user": f"u{session}"})
                else:
                    headers = {"X-Session-Id": f"h{session}"}
                    reply = client.post("/v1/completions", json=body, headers=headers)
                seen[f"s{session}"].add(version_of(reply))
        assert all(len(versions) == 1 for versions in seen.values()), seen
        assert set().union(*seen.values()) == {"v1", "v2"}
        assert "canary 50%" in reply.headers["x-demigod-route"]
        metrics = client.get("/metrics").text
    snapshot = Snapshot.parse(metrics, 0.0)
    assert snapshot.by("demigod_canary_weight", "version", model="tiny") == {"v1": 0.5, "v2": 0.5}
    answered = snapshot.by("demigod_requests_total", "version", model="tiny")
    assert answered["v1"] + answered["v2"] == 36 and min(answered.values()) >= 6
    timed = snapshot.by("demigod_version_request_duration_seconds_count", "version", model="tiny")
    assert timed == answered


def test_an_explicit_version_is_served_and_an_unknown_one_is_404(versioned: Server) -> None:
    body = {"prompt": "hello", "max_tokens": 1}
    pinned = httpx.post(f"{versioned.url}/v1/completions", json={**body, "model": "tiny@v2"})
    assert version_of(pinned) == "v2"
    missing = httpx.post(f"{versioned.url}/v1/completions", json={**body, "model": "tiny@v9"})
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "model"
    assert "available: v1, v2" in missing.json()["error"]["message"]


def test_rules_route_auto_by_prompt_length(versioned: Server) -> None:
    def route(text: str) -> dict[str, str]:
        messages = [{"role": "user", "content": text}]
        reply = httpx.post(
            f"{versioned.url}/v1/route", json={"model": "auto", "messages": messages}
        )
        assert reply.status_code == 200, reply.text
        return reply.json()  # type: ignore[no-any-return]

    short = route("hi there")  # 8 characters: 2 estimated tokens
    assert short["model"] == "helper"
    assert short["reason"].startswith("rule 1 (category=chat, tokens<=5)")
    long = route("How was your weekend with the family, anything nice?")
    assert long["model"] == "tiny" and not long["reason"].startswith("rule")
