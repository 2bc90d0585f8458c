"""`demigod deploy render observability`, checked by the real tools: promtool (config, rules,
rule unit tests) and amtool; and the committed examples are what the command renders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from demigod.config import Settings
from demigod.deploy.observability import RULES_FILE, Targets, render_files
from tests.conftest import require_binary

HERE = Path(__file__).parent
ALERT_TESTS = HERE / "alerts_test.yml"
EXAMPLES = HERE.parents[1] / "deploy" / "observability"


def render(out: Path, *args: str, env: dict[str, str] | None = None) -> list[Path]:
    """Run the CLI as an operator would, in an empty folder (no mesh.yaml), default config."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DEMIGOD_")}
    command = [sys.executable, "-m", "demigod", "deploy", "render", "observability"]
    result = subprocess.run(
        [*command, "--out", str(out), "--json", *args],
        capture_output=True,
        text=True,
        cwd=out.parent,
        env={**clean, **(env or {})},
        check=True,
    )
    return [Path(path) for path in json.loads(result.stdout)]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "observability"
    render(out)
    return out


def run_tool(*command: str, cwd: Path) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_prometheus_config_and_rules_are_valid(rendered: Path) -> None:
    promtool = require_binary("promtool")
    output = run_tool(promtool, "check", "config", "prometheus.yml", cwd=rendered)
    assert "1 rule files found" in output
    assert "SUCCESS: 9 rules found" in run_tool(
        promtool, "check", "rules", RULES_FILE, cwd=rendered
    )


def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests(
    rendered: Path, tmp_path: Path
) -> None:
    promtool = require_binary("promtool")
    shutil.copytree(rendered, tmp_path, dirs_exist_ok=True)
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    assert "SUCCESS" in run_tool(promtool, "test", "rules", ALERT_TESTS.name, cwd=tmp_path)

    rules = yaml.safe_load((rendered / RULES_FILE).read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    cases = [
        case
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert names == firing == quiet


def test_alert_rule_tests_catch_a_wrong_threshold(rendered: Path, tmp_path: Path) -> None:
    """The unit tests are sensitive: a p95 threshold of 30 s instead of 3 s fails them."""
    promtool = require_binary("promtool")
    render(tmp_path / "lax", env={"DEMIGOD_OBSERVABILITY__ALERT_P95_LATENCY_SECONDS": "30"})
    shutil.copy(ALERT_TESTS, tmp_path / "lax" / ALERT_TESTS.name)
    result = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        capture_output=True,
        text=True,
        cwd=tmp_path / "lax",
    )
    assert result.returncode != 0
    assert "DemigodHighP95Latency" in result.stdout + result.stderr


def test_alertmanager_config_is_valid(rendered: Path) -> None:
    amtool = require_binary("amtool")
    output = run_tool(amtool, "check-config", "alertmanager.yml", cwd=rendered)
    assert "SUCCESS" in output and "2 receivers" in output


def test_committed_examples_match_the_renderer(rendered: Path) -> None:
    fresh = {p.relative_to(rendered): p.read_text() for p in rendered.rglob("*") if p.is_file()}
    committed = {p.relative_to(EXAMPLES): p.read_text() for p in EXAMPLES.rglob("*") if p.is_file()}
    committed.pop(Path("README.md"), None)
    assert committed == fresh, "re-render: demigod deploy render observability --out " + str(
        EXAMPLES.relative_to(HERE.parents[1])
    )


def test_thresholds_and_targets_come_from_the_config() -> None:
    settings = Settings.model_validate(
        {
            "engine": {"queue_size": 10},
            "observability": {
                "alert_p95_latency_seconds": 1.5,
                "alert_queue_fill_ratio": 0.5,
                "worker_targets": ["10.0.0.2:8081", "10.0.0.3:8081"],
                "drift_target": "ops.example:9109",
                "alert_webhook_url": "http://hooks.example/demigod",
            },
        }
    )
    files = render_files(settings, Targets(gateway="gw.example:8080"))
    rules = {
        rule["alert"]: rule["expr"]
        for rule in yaml.safe_load(files[RULES_FILE])["groups"][0]["rules"]
    }
    assert rules["DemigodHighP95Latency"].endswith("> 1.5")
    assert rules["DemigodQueueDepthHigh"] == "demigod_queue_depth > 5"
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in yaml.safe_load(files["prometheus.yml"])["scrape_configs"]
    }
    assert jobs == {
        "demigod-gateway": ["gw.example:8080"],
        "demigod-worker": ["10.0.0.2:8081", "10.0.0.3:8081"],
        "demigod-drift": ["ops.example:9109"],
    }
    receivers = yaml.safe_load(files["alertmanager.yml"])["receivers"]
    assert {r["webhook_configs"][0]["url"] for r in receivers} == {"http://hooks.example/demigod"}
