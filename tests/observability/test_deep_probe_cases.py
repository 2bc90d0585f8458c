"""/healthz/deep checks the Hemlock suite's `probe: true` cases' expected outputs."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Server, start_server, stop_server

FAILING_PROBE_SUITE = """
name: probes
cases:
  - id: greets-back
    prompt: "Hello"
    params: {max_tokens: 4, temperature: 0}
    probe: true
    checks:
      - contains: "zq-never-generated-qz"
  - id: not-a-probe
    prompt: "Hello"
    checks:
      - contains: "also never, but not probed"
"""


def test_the_default_probe_cases_pass(server: Server) -> None:
    deep = httpx.get(f"{server.url}/healthz/deep", timeout=60)
    assert deep.status_code == 200 and deep.json()["models"] == {"tiny": "ok"}


def test_a_probe_case_whose_output_is_wrong_fails_the_deep_probe(
    tiny_model: Path, tmp_path: Path
) -> None:
    suite = tmp_path / "probes.yaml"
    suite.write_text(FAILING_PROBE_SUITE)
    running = start_server(
        [f"tiny={tiny_model}"], tmp_path, env={"DEMIGOD_LIFECYCLE__HEMLOCK_SUITE": str(suite)}
    )
    try:
        deep = httpx.get(f"{running.url}/healthz/deep", timeout=60)
        metrics = httpx.get(f"{running.url}/metrics", timeout=10).text
    finally:
        stop_server(running)
    assert deep.status_code == 503
    verdict = deep.json()["models"]["tiny"]
    assert verdict.startswith("error: case greets-back: contains 'zq-never-generated-qz'")
    assert 'demigod_probe_success{model="tiny"} 0.0' in metrics
