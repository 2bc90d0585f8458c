"""`demigod compliance report`: what it states, and how it degrades when parts are missing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from demigod.cli import app
from demigod.config import Settings
from demigod.evaluation.result import EvaluationResult
from demigod.registry import Registry, default_database_url
from demigod.security.audit.events import record_admin_event


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["compliance", "report", *args], env=env)
    return result.exit_code, result.stdout


def test_without_registry_or_records_it_says_so(tmp_path: Path) -> None:
    code, markdown = run({"DEMIGOD_DATA_DIR": str(tmp_path)})
    assert code == 0
    assert "**Registry: registry not configured.**" in markdown
    assert "| 12(1) |" in markdown and "| 19(1), 26(6) |" in markdown
    assert "**meets** the six-month minimum" in markdown
    assert "no audit records yet" in markdown


def test_registry_models_evaluations_events_and_logging(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with Registry(default_database_url(tmp_path), actor="release-bot") as registry:
        registry.ensure_model("mamba-chat", architecture="MambaForCausalLM", licence="apache-2.0")
        registry.add_version(
            "mamba-chat",
            sha256="ab" * 32,
            storage_uri="file:///models/mamba-chat-v1.gguf",
            quantization="Q4_0",
            size_bytes=1234,
        )
        registry.record_evaluations(
            "mamba-chat",
            "v1",
            [EvaluationResult("perplexity", "delta_vs_f16", 0.03, 0.05, True)],
        )
        registry.move_alias("mamba-chat", "stable", "v1", reason="gates passed")
    record_admin_event(settings, "key.create", {"id": "k1", "tenant": "acme"})
    env = {"DEMIGOD_DATA_DIR": str(tmp_path), "DEMIGOD_AUDIT__RETENTION_DAYS": "30"}
    out = tmp_path / "report.json"
    code, _ = run(env, "--json", "--out", str(out), "--verify")
    assert code == 0
    report = json.loads(out.read_text())
    (model,) = report["registry"]["models"]
    (version,) = model["versions"]
    assert version["label"] == "v1" and version["aliases"] == ["stable"]
    assert version["evaluations"][0]["metric"] == "delta_vs_f16"
    assert version["evaluations"][0]["passed"] is True
    actions = [e["action"] for e in report["registry"]["events"]]
    assert "model.created" in actions and any("alias" in a for a in actions)
    assert report["gates"]["max_perplexity_delta"] == 0.05
    (chain,) = report["logging"]["chains"]
    assert chain["last_record"]["seq"] == 0 and chain["checkpoints"] == 1
    assert report["logging"]["verification"][0]["ok"] is True
    assert report["retention"]["meets_minimum"] is False
    assert any("below the six months" in gap for gap in report["gaps"])
    code, markdown = run(env)
    assert "| mamba-chat | v1 | ready | stable | Q4_0 |" in markdown
    assert "| mamba-chat@v1 | perplexity | delta_vs_f16 | 0.03 | 0.05 | True |" in markdown
    assert "**BELOW** the six-month minimum" in markdown
