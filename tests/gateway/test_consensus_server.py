"""Consensus on a real server: the tiny model served three times under different names,
and a second tiny model (other weights) that answers differently."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demigod.gateway.consensus import Answer, judge_prompt, parse_judge
from demigod.observability.scrape import Snapshot
from tests.conftest import Server, start_server, stop_server

MESSAGES = [{"role": "user", "content": "What is 6 times 7?"}]


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory, toolkit_data_dir: Path) -> Path:
    """A tiny model with other random weights: its greedy answer is not the tiny model's."""
    from demigod.lifecycle.demo import build_test_model

    return build_test_model(
        tmp_path_factory.mktemp("other"), data_dir=toolkit_data_dir, seed=1, tied_embeddings=False
    )


@pytest.fixture(scope="module")
def panel(
    tiny_model: Path, other_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = f"""
models:
  - {{name: a, path: {tiny_model}}}
  - {{name: b, path: {tiny_model}}}
  - {{name: c, path: {tiny_model}, categories: [code]}}
  - {{name: d, path: {other_model}}}
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


def test_the_majority_wins_and_the_dissent_is_reported(panel: Server) -> None:
    # d (other weights) is listed first: if it won, the vote would not be counting.
    reply = chat(panel, model="consensus:d,a,b")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    report = body["demigod_consensus"]
    assert body["object"] == "chat.completion" and body["model"] == "consensus:d,a,b"
    answers = {a["model"]: a for a in report["answers"]}
    assert list(answers) == ["d", "a", "b"]
    assert answers["a"]["content"] == answers["b"]["content"] != answers["d"]["content"]
    assert body["choices"][0]["message"]["content"] == answers["a"]["content"]
    assert (report["reached"], report["winner"]) == (True, "a")
    assert report["agreement"] == pytest.approx(2 / 3, abs=0.01)
    assert (report["method"], report["quorum"]) == ("vote", 2)
    assert [answers[m]["agrees"] for m in "dab"] == [False, True, True]
    assert all(a["error"] is None for a in report["answers"])
    assert body["usage"]["completion_tokens"] == sum(
        a["completion_tokens"] for a in report["answers"]
    )
    assert (
        'model=consensus:d,a,b; version=consensus; reason="consensus vote'
        in (reply.headers["x-demigod-route"])
    )
    # Every member really generated: each model counted one more request.
    metrics = Snapshot.parse(httpx.get(f"{panel.url}/metrics").text, 0.0)
    answered = metrics.by("demigod_requests_total", "model")
    assert all(answered.get(name, 0) >= 1 for name in "abd")


def test_a_split_vote_is_no_consensus(panel: Server) -> None:
    reply = chat(panel, model="consensus:a,d")
    assert reply.status_code == 502, reply.text
    error = reply.json()["error"]
    assert error["code"] == "consensus_not_reached"
    assert "largest agreement 50% is under the quorum of 2" in error["message"]


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


def test_the_judges_pick_decides(panel: Server) -> None:
    """The tiny judge is greedy, so what it answers the judge prompt is known in advance:
    asked directly first, its pick (or its failure to name one) must be the outcome."""

    def judge_requests() -> float:
        metrics = Snapshot.parse(httpx.get(f"{panel.url}/metrics").text, 0.0)
        return metrics.by("demigod_requests_total", "model", status="200").get("c", 0.0)

    before = judge_requests()
    members = [chat(panel, model=name).json()["choices"][0]["message"]["content"] for name in "da"]
    answers = [Answer(name, text) for name, text in zip("da", members, strict=True)]
    question = MESSAGES[0]["content"]
    judged = chat(
        panel,
        model="c",
        messages=[{"role": "user", "content": judge_prompt(question, answers)}],
        max_tokens=16,
    )
    pick = parse_judge(judged.json()["choices"][0]["message"]["content"], answers)

    reply = chat(panel, model="consensus:d,a", consensus={"judge": "c"})
    # c answered twice: asked directly above, then as the judge (counted as it finishes)
    deadline = time.monotonic() + 10
    while judge_requests() < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert judge_requests() == before + 2
    if pick is None:  # what this tiny judge does (it echoes ':'); test_consensus covers picks
        assert reply.status_code == 502, reply.text
        assert "the judge named no valid answer" in reply.json()["error"]["message"]
        return
    assert reply.status_code == 200, reply.text
    report = reply.json()["demigod_consensus"]
    assert (report["method"], report["judge"]) == ("judge", "c")
    assert report["winner"] == "da"[pick]
    assert reply.json()["choices"][0]["message"]["content"] == members[pick]
    answered = sum(a["completion_tokens"] for a in report["answers"])
    assert reply.json()["usage"]["completion_tokens"] > answered  # the judge's tokens too
