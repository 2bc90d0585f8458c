"""lm-evaluation-harness against the real server, offline, with the shipped task."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from demigod.lifecycle.lm_eval import (
    OFFLINE_ENVIRONMENT,
    LmEvalError,
    run_lm_eval,
    shipped_task_config,
    shipped_tasks_dir,
)
from tests.conftest import Server


def test_the_shipped_task_reads_its_data_from_the_package() -> None:
    config = shipped_task_config("demigod_smoke")
    assert config is not None and config["output_type"] == "generate_until"
    data_file = config["dataset_kwargs"]["data_files"]["test"]
    assert data_file.startswith(str(shipped_tasks_dir()))
    with open(data_file) as lines:
        docs = [json.loads(line) for line in lines]
    assert len(docs) >= 10 and all({"prompt", "answer"} <= doc.keys() for doc in docs)
    assert shipped_task_config("no_such_task") is None


@pytest.mark.slow
def test_lm_eval_runs_offline_against_the_product_endpoint(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any attempt to reach the real hub would fail here instead of hanging.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    before = {name: os.environ.get(name) for name in OFFLINE_ENVIRONMENT}
    requests_before = requests_served(server)
    results = run_lm_eval(server.url, "tiny", None, eos_string="<|endoftext|>")

    by_metric = {result.metric: result for result in results}
    score = by_metric["demigod_smoke/exact_match/first-word"]
    assert score.suite == "lm_eval" and 0.0 <= score.value <= 1.0
    assert "lm_eval" in score.tool_versions and score.threshold is None
    assert not any("stderr" in metric or "sample_len" in metric for metric in by_metric)
    # The offline switches do not outlive the run (a later hub pull must still work).
    assert {name: os.environ.get(name) for name in OFFLINE_ENVIRONMENT} == before
    # Every item of the task went through the product's endpoint.
    assert requests_served(server) - requests_before >= 10


def requests_served(server: Server) -> float:
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("demigod_requests_total{") and 'model="tiny"' in line
    )


@pytest.mark.slow
def test_a_multiple_choice_task_scores_choices_by_their_logprobs(server: Server) -> None:
    """A loglikelihood task: each choice of each question is one echo + logprobs request
    on the server's own token ids."""
    requests_before = requests_served(server)
    results = run_lm_eval(server.url, "tiny", ["demigod_choice"])
    by_metric = {result.metric: result.value for result in results}
    assert set(by_metric) == {"demigod_choice/acc", "demigod_choice/acc_norm"}
    assert all(0.0 <= value <= 1.0 for value in by_metric.values())
    assert requests_served(server) - requests_before >= 12 * 4  # every choice was scored


@pytest.mark.slow
def test_a_server_that_tokenizes_as_another_model_is_refused(server: Server) -> None:
    with pytest.raises(LmEvalError, match="tokenizes as 'tiny'"):
        run_lm_eval(server.url, "other", ["demigod_choice"])


@pytest.mark.slow
def test_an_unknown_task_is_a_clear_error(server: Server) -> None:
    with pytest.raises(LmEvalError, match="no_such_task"):
        run_lm_eval(server.url, "tiny", ["no_such_task"])
