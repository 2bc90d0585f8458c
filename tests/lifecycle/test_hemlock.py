"""The Hemlock suite: its format, each check failing when it should, and runs against the
real server (`demigod serve` with the tiny model)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from demigod.evaluation.hemlock import (
    Case,
    HemlockError,
    HemlockSuite,
    default_suite_path,
    load_suite,
    run_suite,
)
from tests.conftest import Server


def case(**checks: object) -> Case:
    return Case.model_validate({"id": "c", "prompt": "p", "checks": [checks]})


@pytest.mark.parametrize(
    ("check", "passing", "failing", "reason"),
    [
        ({"contains": "fox"}, "the fox", "the dog", "contains 'fox': not found"),
        ({"not_contains": "<|endoftext|>"}, "ok", "a<|endoftext|>", "not_contains"),
        ({"not-contains": "x"}, "ok", "xx", "not_contains 'x': found"),
        ({"regex": r"^\d+$"}, "123", "12a", r"regex '^\\d+$': no match"),
        ({"valid_json": True}, '{"a": [1, 2]}', '{"a": [1, 2', "valid_json"),
        ({"json": True}, "[]", "not json", "valid_json"),
    ],
)
def test_each_check_passes_and_fails(
    check: dict[str, object], passing: str, failing: str, reason: str
) -> None:
    assert case(**check).failures(passing, latency_ms=1.0) == []
    failures = case(**check).failures(failing, latency_ms=1.0)
    assert len(failures) == 1 and failures[0].startswith(reason)


def test_max_latency_fails_a_slow_reply() -> None:
    assert case(max_latency_ms=500).failures("x", latency_ms=499.0) == []
    assert case(max_latency_ms=500).failures("x", latency_ms=501.0) == [
        "max_latency_ms 500: took 501 ms"
    ]


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("cases: []", "at least 1 item"),
        ("cases: [{id: a, checks: [{contains: x}]}]", "exactly one of prompt or messages"),
        ("cases: [{id: a, prompt: p, messages: [{role: user, content: c}],"
         " checks: [{regex: x}]}]", "exactly one of prompt or messages"),
        ("cases: [{id: a, prompt: p, checks: [{contains: x, regex: y}]}]",
         "exactly one of contains"),
        ("cases: [{id: a, prompt: p, checks: [{sounds_nice: true}]}]", "sounds_nice"),
        ("cases: [{id: a, prompt: p, checks: [{regex: '('}]}]", "bad regex"),
        ("cases: [{id: a, prompt: p, checks: [{contains: x}]},"
         " {id: a, prompt: q, checks: [{contains: y}]}]", "appears twice"),
        ("cases: [{id: a, prompt: p, params: {max_tokens: 0}, checks: [{contains: x}]}]",
         "max_tokens"),
        ("cases: [{id: a, prompt: p, checks: []}]", "checks"),
        ("{{{", "not valid YAML"),
    ],
)  # fmt: skip
def test_malformed_suites_are_refused_with_the_reason(
    yaml_text: str, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml_text)
    with pytest.raises(HemlockError, match=r"suite\.yaml") as raised:
        load_suite(path)
    assert problem in str(raised.value)
    with pytest.raises(HemlockError, match="cannot read"):
        load_suite(tmp_path / "missing.yaml")


def test_the_default_suite_ships_with_probe_cases() -> None:
    suite = load_suite(None)
    assert default_suite_path().is_file()
    assert suite.name == "default" and len(suite.cases) >= 5
    assert suite.probe_cases() and all(case.probe for case in suite.probe_cases())
    assert {case.prompt is None for case in suite.cases} == {True, False}  # chat and completions


@pytest.mark.slow
def test_the_default_suite_passes_on_the_tiny_model(server: Server) -> None:
    report = asyncio.run(run_suite(load_suite(None), server.url, "tiny"))
    assert report.failed == [], report.failed
    assert report.pass_rate == 1.0
    results = {r.metric: r for r in report.results(min_pass_rate=0.95)}
    assert results["pass_rate"].value == 1.0 and results["pass_rate"].passed is True
    assert results["pass_rate"].suite == "hemlock"
    assert results["cases_total"].value == len(report.cases)


@pytest.mark.slow
def test_every_check_type_fails_against_the_live_server(server: Server) -> None:
    greedy = {"max_tokens": 12, "temperature": 0.0, "seed": 1}
    first = asyncio.run(
        run_suite(
            HemlockSuite.model_validate(
                {
                    "cases": [
                        {
                            "id": "probe",
                            "prompt": "The ",
                            "params": greedy,
                            "checks": [{"regex": "."}],
                        }
                    ]
                }
            ),
            f"{server.url}/v1",  # a base URL with /v1 works too
            "tiny",
        )
    )
    output = first.cases[0].output
    assert first.pass_rate == 1.0 and output
    # Greedy decoding repeats the same reply: a check on its own text fails predictably.
    word = output[:3]
    cases = [
        {"id": "contains", "checks": [{"contains": "zq-never-generated-qz"}]},
        {"id": "not_contains", "checks": [{"not_contains": word}]},
        {"id": "regex", "checks": [{"regex": r"^\d{40}$"}]},
        {"id": "valid_json", "checks": [{"valid_json": True}]},
        {"id": "max_latency", "checks": [{"max_latency_ms": 0.001}]},
        {"id": "passes", "checks": [{"contains": word}]},
    ]
    suite = HemlockSuite.model_validate(
        {"name": "failing", "cases": [{**c, "prompt": "The ", "params": greedy} for c in cases]}
    )
    report = asyncio.run(run_suite(suite, server.url, "tiny"))
    by_id = {result.id: result for result in report.cases}
    for check in ("contains", "not_contains", "regex", "valid_json", "max_latency"):
        assert not by_id[check].passed
        assert by_id[check].failures and by_id[check].failures[0].startswith(check), by_id[check]
    assert by_id["passes"].passed and by_id["passes"].output == output
    assert report.pass_rate == pytest.approx(1 / 6)
    assert report.results(min_pass_rate=0.95)[0].passed is False


@pytest.mark.slow
def test_an_unknown_model_fails_its_cases_with_the_servers_error(server: Server) -> None:
    suite = HemlockSuite.model_validate(
        {
            "cases": [
                {
                    "id": "a",
                    "messages": [{"role": "user", "content": "hi"}],
                    "checks": [{"regex": "."}],
                }
            ]
        }
    )
    report = asyncio.run(run_suite(suite, server.url, "no-such-model"))
    assert report.pass_rate == 0.0
    assert report.cases[0].error is not None and report.cases[0].error.startswith("HTTP 4")
