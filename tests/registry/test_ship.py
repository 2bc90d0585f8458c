"""`demigod models ship` on a tiny HF-format Mamba folder: every step, in one command."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from demigod.cli import app
from demigod.registry import Registry, default_database_url
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.slow

NO_SUITES = ("--no-lm-eval", "--no-hemlock", "--json")
PROMOTE = ("--promote", "--no-lm-eval", "--json")


def test_ship_promote_then_serve_stable(
    hf_mamba: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toolkit_data_dir: Path
) -> None:
    data_dir = prepare(tmp_path, monkeypatch, toolkit_data_dir)
    result = CliRunner().invoke(
        app,
        [*("models", "ship", str(hf_mamba), "--name", "shipped", "--quant", "Q8_0"), *PROMOTE],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["stopped_at"], report["promoted"]) == ("stable", True), report["refused"]
    metrics = {(r["suite"], r["metric"]): r for r in report["validation"]["results"]}
    assert metrics[("hemlock", "pass_rate")]["passed"] is True
    assert metrics[("perplexity", "perplexity_delta")]["passed"] is True
    release = json.loads((data_dir / "releases" / "shipped-v2.json").read_text())
    assert release["forced"] is False and all(g["passed"] for g in release["gates"])

    server = start_server([], tmp_path, env={"DEMIGOD_DATA_DIR": str(data_dir)})
    try:
        response = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={
                "model": "shipped@stable",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4,
            },
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert "model=shipped; version=v2" in response.headers["x-demigod-route"]
    finally:
        stop_server(server)


def prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toolkit_data_dir: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # The converter toolkit is the project's (installed once), not fetched per test.
    toolkit = next(toolkit_data_dir.glob("llama.cpp-*"))
    (data_dir / toolkit.name).symlink_to(toolkit.resolve())
    text = tmp_path / "held-out.txt"
    text.write_text("State space models read text one token at a time. " * 30)
    monkeypatch.setenv("DEMIGOD_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DEMIGOD_ENGINE__N_THREADS", "1")
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_TEXT", str(text))
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_N_CTX", "64")
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_STRIDE", "32")
    return data_dir


@pytest.fixture(scope="module")
def hf_mamba(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from demigod.lifecycle.train import random_init

    return random_init(tmp_path_factory.mktemp("hf") / "tiny-mamba-hf")


def test_ship_stops_at_candidate_when_a_gate_fails(
    hf_mamba: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toolkit_data_dir: Path
) -> None:
    data_dir = prepare(tmp_path, monkeypatch, toolkit_data_dir)
    result = CliRunner().invoke(
        app,
        [*("models", "ship", str(hf_mamba), "--quant", "Q4_0", "--promote"), *NO_SUITES],
    )
    assert result.exit_code == 3, result.output  # --promote refused: stopped at candidate
    report = json.loads(result.stdout)
    assert report["name"] == "tiny-mamba"
    assert (report["reference"], report["version"], report["stopped_at"]) == (
        "v1",
        "v2",
        "candidate",
    )
    assert "hemlock_pass_rate" in report["refused"]
    assert 0.2 < report["size_ratio"] < 0.8  # Q4_0 of an F16 (the vocab table dominates)
    metrics = {r["metric"]: r["value"] for r in report["validation"]["results"]}
    assert metrics["perplexity"] > 1 and metrics["reference_perplexity"] > 1
    assert set(report["step_seconds"]) == {"pull", "convert", "quantize", "validate", "promote"}
    with Registry(default_database_url(data_dir)) as registry:
        model = registry.get_model("tiny-mamba")
        assert (model.family, model.architecture) == ("mamba", "MambaForCausalLM")
        assert model.parameter_count and model.parameter_count > 1000
        assert registry.get_version("tiny-mamba", "candidate").quantization == "Q4_0"
        assert registry.alias("tiny-mamba", "stable") is None
        reference = registry.get_version("tiny-mamba", "v1")
        assert reference.quantization == "F16" and reference.source_uri
        assert report["size_ratio"] == pytest.approx(
            report["size_bytes"] / reference.size_bytes, abs=1e-4
        )
