"""`demigod models ship` on a tiny HF-format Mamba folder: every step, in one command,
then the gated promotion and the gateway serving the result as `NAME@stable`."""

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


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toolkit_data_dir: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    # The converter toolkit is the project's (installed once), not fetched per test.
    toolkit = next(toolkit_data_dir.glob("llama.cpp-*"))
    (data / toolkit.name).symlink_to(toolkit.resolve())
    text = tmp_path / "held-out.txt"
    text.write_text("State space models read text one token at a time. " * 30)
    monkeypatch.setenv("DEMIGOD_DATA_DIR", str(data))
    monkeypatch.setenv("DEMIGOD_ENGINE__N_THREADS", "1")
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_TEXT", str(text))
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_N_CTX", "64")
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_STRIDE", "32")
    return data


def invoke(*args: str, code: int = 0) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_ship_stops_at_candidate_then_validate_promote_and_serve(
    tmp_path: Path, data_dir: Path
) -> None:
    from demigod.lifecycle.train import random_init

    hf_mamba = random_init(tmp_path / "tiny-mamba-hf")
    # Without a Hemlock run the gate refuses: ship stops at candidate, exit 3.
    report = invoke(
        *("models", "ship", str(hf_mamba), "--quant", "Q4_0", "--promote"),
        *("--no-lm-eval", "--no-hemlock"),
        code=3,
    )
    assert report["name"] == "tiny-mamba"
    assert (report["reference"], report["version"], report["stopped_at"]) == (
        "v1",
        "v2",
        "candidate",
    )
    assert "hemlock_pass_rate" in str(report["refused"])
    validation = report["validation"]
    assert isinstance(validation, dict)
    metrics = {r["metric"]: r for r in validation["results"]}
    assert metrics["perplexity"]["value"] > 1 and metrics["reference_perplexity"]["value"] > 1
    assert metrics["perplexity_delta"]["passed"] is True
    assert set(report["step_seconds"]) == {  # type: ignore[arg-type]
        "pull",
        "convert",
        "quantize",
        "validate",
        "promote",
    }
    with Registry(default_database_url(data_dir)) as registry:
        model = registry.get_model("tiny-mamba")
        assert (model.family, model.architecture) == ("mamba", "MambaForCausalLM")
        assert model.parameter_count and model.parameter_count > 1000
        assert registry.alias("tiny-mamba", "stable") is None
        reference = registry.get_version("tiny-mamba", "v1")
        assert reference.quantization == "F16" and reference.source_uri
        candidate = registry.get_version("tiny-mamba", "candidate")
        assert candidate.quantization == "Q4_0"
        assert report["size_ratio"] == pytest.approx(
            candidate.size_bytes / reference.size_bytes, abs=1e-4
        )

    # The Hemlock suite against the product's own server, then every gate passes.
    hemlock = invoke("models", "validate", "tiny-mamba", "candidate", "--no-lm-eval")
    rates = [r for r in hemlock["results"] if r["metric"] == "pass_rate"]  # type: ignore[union-attr]
    assert rates and rates[0]["passed"] is True, hemlock["hemlock_failures"]
    promoted = invoke("models", "promote", "tiny-mamba", "candidate", "--to", "stable")
    assert promoted["forced"] is False and promoted["version"] == "v2"
    release = json.loads((data_dir / "releases" / "tiny-mamba-v2.json").read_text())
    assert all(gate["passed"] for gate in release["gates"])

    server = start_server([], tmp_path, env={"DEMIGOD_DATA_DIR": str(data_dir)})
    try:
        response = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={
                "model": "tiny-mamba@stable",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4,
            },
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert "model=tiny-mamba; version=v2" in response.headers["x-demigod-route"]
    finally:
        stop_server(server)
