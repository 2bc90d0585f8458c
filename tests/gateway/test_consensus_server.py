"""Consensus on a real server: the tiny model served three times under different names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demigod.observability.scrape import Snapshot
from tests.conftest import Server, start_server, stop_server

MESSAGES = [{"role": "user", "content": "What is 6 times 7?"}]


@pytest.fixture(scope="module")
def panel(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = f"""
models:
  - {{name: a, path: {tiny_model}}}
  - {{name: b, path: {tiny_model}}}
  - {{name: c, path: {tiny_model}, categories: [code]}}
routing:
  rules:
    - {{category: math, model: panel}}
consensus:
  groups:
    panel: {{models: [a, b, c], normaliser: exact, quorum: 3}}
    strict-json: {{models: [a, b], normaliser: "json:answer"}}
observability:
  deep_probe_interval_seconds: 0
"""
    running = start_server([], tmp_path_factory.mktemp("consensus"), config=config)
    yield running
    stop_server(running)


def chat(server: Server, **body: object) -> httpx.Response:
    payload = {"messages": MESSAGES, "max_tokens": 6, "temperature": 0, "ignore_eos": True, **body}
    return httpx.post(f"{server.url}/v1/chat/completions", json=payload, timeout=120)


def test_three_models_agree_and_the_answer_says_so(panel: Server) -> None:
    reply = chat(panel, model="consensus:a,b,c")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    report = body["demigod_consensus"]
    assert body["object"] == "chat.completion" and body["model"] == "consensus:a,b,c"
    assert [a["model"] for a in report["answers"]] == ["a", "b", "c"]
    # One model, greedy: the three answers are equal, so all agree.
    texts = {a["content"] for a in report["answers"]}
    assert len(texts) == 1 and body["choices"][0]["message"]["content"] in texts
    assert (report["reached"], report["winner"], report["agreement"]) == (True, "a", 1.0)
    assert (report["method"], report["quorum"]) == ("vote", 2)
    assert all(a["agrees"] and a["error"] is None for a in report["answers"])
    assert body["usage"]["completion_tokens"] == sum(
        a["completion_tokens"] for a in report["answers"]
    )
    assert (
        'model=consensus:a,b,c; version=consensus; reason="consensus vote'
        in (reply.headers["x-demigod-route"])
    )
    # Every member really generated: each model counted one more request.
    metrics = Snapshot.parse(httpx.get(f"{panel.url}/metrics").text, 0.0)
    answered = metrics.by("demigod_requests_total", "model")
    assert all(answered.get(name, 0) >= 1 for name in "abc")


def test_no_quorum_is_an_error_that_shows_the_answers(panel: Server) -> None:
    # Random-weight models never write {"answer": ...}: nobody votes.
    reply = chat(panel, model="strict-json")
    assert reply.status_code == 502, reply.text
    error = reply.json()["error"]
    assert error["code"] == "consensus_not_reached"
    assert "a: no vote (" in error["message"] and "b: no vote (" in error["message"]
    timed_out = chat(panel, model="consensus:a,b", consensus={"timeout_seconds": 0.001})
    assert timed_out.status_code == 502
    assert "no answer within 0.001s" in timed_out.json()["error"]["message"]


def test_a_rule_can_send_auto_to_a_group(panel: Server) -> None:
    messages = [{"role": "user", "content": "Solve 2x + 3 = 9 for x"}]
    routed = httpx.post(f"{panel.url}/v1/route", json={"model": "auto", "messages": messages})
    assert routed.status_code == 200
    assert (routed.json()["model"], routed.json()["version"]) == ("panel", "consensus")
    assert routed.json()["reason"].startswith("rule 0 (category=math)")
    reply = chat(panel, model="auto", messages=messages)
    assert reply.status_code == 200, reply.text
    assert reply.json()["demigod_consensus"]["quorum"] == 3
    text = httpx.post(
        f"{panel.url}/v1/completions", json={"model": "auto", "prompt": "Solve 2x + 3 = 9"}
    )
    assert text.status_code == 400 and "chat/completions only" in text.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "consensus:a,ghost"}, 404, "model"),
        ({"model": "consensus:a"}, 400, "model"),
        ({"model": "consensus:a,b", "stream": True}, 400, "stream"),
        (
            {"model": "consensus:a,b", "consensus": {"normaliser": "fuzzy"}},
            400,
            "consensus.normaliser",
        ),
        ({"model": "consensus:a,b", "consensus": {"quorum": 3}}, 400, "consensus"),
        ({"model": "consensus:a,b", "consensus": {"bogus": 1}}, 400, "consensus"),
    ],
)
def test_bad_consensus_requests_name_the_field(
    panel: Server, body: dict[str, object], status: int, param: str
) -> None:
    reply = chat(panel, **body)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["param"] == param


def test_a_judge_is_asked_and_named(panel: Server) -> None:
    reply = chat(panel, model="consensus:a,b", consensus={"judge": "c"})
    # The tiny judge's greedy reply may or may not name an answer by number; either way
    # the judge was asked and the outcome says so.
    if reply.status_code == 200:
        report = reply.json()["demigod_consensus"]
        assert (report["method"], report["judge"]) == ("judge", "c")
        answered = sum(a["completion_tokens"] for a in report["answers"])
        assert reply.json()["usage"]["completion_tokens"] > answered  # the judge's tokens too
    else:
        assert reply.status_code == 502, reply.text
        assert "the judge named no valid answer" in reply.json()["error"]["message"]
