"""`demigod models ...` end to end on the suite's tiny GGUF, SQLite registry."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from demigod.cli import app
from demigod.registry import Registry, default_database_url
from tests.conftest import start_server, stop_server

VALIDATION_TEXT = (
    "The quick brown fox jumps over the lazy dog. " * 20
    + "A recurrent model keeps a fixed-size state instead of attention over the past."
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    text = tmp_path / "held-out.txt"
    text.write_text(VALIDATION_TEXT)
    monkeypatch.setenv("DEMIGOD_DATA_DIR", str(data))
    monkeypatch.setenv("DEMIGOD_ENGINE__N_THREADS", "1")
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_TEXT", str(text))
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_N_CTX", "64")
    monkeypatch.setenv("DEMIGOD_LIFECYCLE__VALIDATION_STRIDE", "32")
    monkeypatch.delenv("DEMIGOD_DATABASE_URL", raising=False)
    return data


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_register_validate_promote_and_serve_by_alias(
    tiny_model: Path, data_dir: Path, tmp_path: Path
) -> None:
    f16 = tiny_model.with_name("demigod-test.F16.gguf")
    reference = json.loads(cli("models", "register", "tiny", str(f16), "--json"))
    assert (reference["label"], reference["quantization"]) == ("v1", "F16")
    version = json.loads(
        cli("models", "register", "tiny", str(tiny_model), "--reference", "v1", "--json")
    )
    assert (version["label"], version["quantization"], version["reference"]) == (
        "v2",
        "Q4_0",
        "v1",
    )
    listed = json.loads(cli("models", "list", "--json"))
    assert [(m["name"], m["aliases"], m["family"]) for m in listed] == [
        ("tiny", {"candidate": "v2"}, "mamba")
    ]

    report = json.loads(
        cli("models", "validate", "tiny", "candidate", "--no-hemlock", "--no-lm-eval", "--json")
    )
    metrics = {r["metric"]: r["value"] for r in report["results"]}
    assert metrics["perplexity"] > 1 and metrics["reference_perplexity"] > 1
    assert metrics["perplexity_delta"] == pytest.approx(
        metrics["perplexity"] / metrics["reference_perplexity"] - 1
    )

    # No Hemlock result recorded: the gate refuses and says which gate and why.
    refused = CliRunner().invoke(app, ["models", "promote", "tiny", "v2", "--to", "stable"])
    assert refused.exit_code == 1
    assert "hemlock_pass_rate" in refused.output and "--force" in refused.output
    needs_reason = CliRunner().invoke(app, ["models", "promote", "tiny", "v2", "--force"])
    assert needs_reason.exit_code == 1 and "--reason" in needs_reason.output
    promoted = json.loads(
        cli("models", "promote", "tiny", "v2", "--force", "--reason", "test model", "--json")
    )
    assert promoted["forced"] is True and promoted["previous"] is None
    note = Path(promoted["release_note"]).read_text()
    assert "tiny v2 is stable" in note and "forced past failing gates" in note
    assert json.loads(Path(promoted["release_json"]).read_text())["sha256"] == version["sha256"]

    shown = json.loads(cli("models", "show", "tiny", "--json"))
    actions = [e["action"] for e in shown["events"]]
    assert "promotion.refused" in actions and actions[-1] == "alias.moved"
    assert shown["events"][-1]["details"]["forced"] is True
    assert shown["aliases"]["stable"]["version"] == "v2"

    server = start_server([], tmp_path, env={"DEMIGOD_DATA_DIR": str(data_dir)})
    try:
        for name in ("tiny", "tiny@stable", "tiny@v2"):
            response = httpx.post(
                f"{server.url}/v1/completions",
                json={"model": name, "prompt": "Hello", "max_tokens": 2},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            assert "model=tiny; version=v2" in response.headers["x-demigod-route"]
        for name, expected in (("tiny@v1", "'v1' is not served"), ("tiny@nope", "nope")):
            response = httpx.post(
                f"{server.url}/v1/completions",
                json={"model": name, "prompt": "Hello", "max_tokens": 2},
                timeout=60,
            )
            assert response.status_code == 404
            assert expected in response.json()["error"]["message"]
    finally:
        stop_server(server)


def test_a_corrupt_stable_file_is_refused_before_serving(tiny_model: Path, data_dir: Path) -> None:
    version = json.loads(cli("models", "register", "tiny", str(tiny_model), "--json"))
    cli("models", "promote", "tiny", "v1", "--force", "--reason", "test")
    stored = Path(version["storage_uri"].removeprefix("file://"))
    stored.unlink()  # break the hard link: corrupt the store copy, not the shared fixture
    stored.write_bytes(b"GGUF" + b"\0" * 64)
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "corrupt" in result.output
    with Registry(default_database_url(data_dir)) as registry:
        assert registry.get_version("tiny", "stable").label == "v1"


def test_unknown_models_and_bad_files_are_clear_errors(data_dir: Path, tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["models", "show", "ghost"])
    assert missing.exit_code == 1 and "not registered" in missing.output
    bogus = tmp_path / "bogus.gguf"
    bogus.write_text("not a model")
    bad = CliRunner().invoke(app, ["models", "register", "x", str(bogus)])
    assert bad.exit_code == 1 and "not a GGUF" in bad.output
    upgraded = json.loads(cli("registry", "upgrade", "--json"))
    from demigod.registry.migrate import head_revision

    assert upgraded["revision"] == head_revision() == "0002"  # 0002: canary rollouts


def test_demo_models_go_through_register_validate_promote(tiny_model: Path, data_dir: Path) -> None:
    from demigod.config import load_settings
    from demigod.lifecycle.demo import DemoModel
    from demigod.lifecycle.pipeline import register_demo_models

    # The suite's tiny model stands in for a demo build: `NAME.Q4_0.gguf`, F16 beside it.
    demo = DemoModel("demigod-test", "code", tiny_model, build_seconds=None)
    settings = load_settings()
    with Registry(default_database_url(data_dir)) as registry:
        (stable,) = register_demo_models(registry, settings, [demo])
        assert (stable.label, stable.reference, stable.quantization) == ("v2", "v1", "Q4_0")
        assert registry.get_model("demigod-test").categories == ["code"]
        metrics = {e.metric for e in registry.evaluations("demigod-test", "v2")}
        assert {"perplexity", "perplexity_delta", "kl_divergence_mean"} <= metrics
        events = registry.events("demigod-test")
        moved = [e for e in events if e.action == "alias.moved" and e.details["alias"] == "stable"]
        assert len(moved) == 1
        # Whether the toy passes the gates or not, the record says what happened.
        assert moved[0].details["forced"] == any(
            not gate["passed"] for gate in moved[0].details["gates"]
        )
        # Reuse: the stable version already is this file, nothing is redone.
        assert register_demo_models(registry, settings, [demo]) == [stable]
        assert len(registry.events("demigod-test")) == len(events)
