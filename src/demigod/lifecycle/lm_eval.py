"""lm-evaluation-harness against the product's own OpenAI endpoint (`local-completions`).

The shipped tasks (`lm_eval_tasks/`: `demigod_smoke`, generate_until; `demigod_choice`,
multiple choice) run offline: their data is a JSONL file in the package, read by the
`datasets` JSON builder with the hub switched off. Prompts are tokenized by the server
itself (lm-eval's remote tokenizer: /tokenizer_info, /tokenize, /detokenize) and sent as
token ids, so loglikelihood tasks score exactly the tokens the model reads, through echo +
logprobs on /v1/completions; see docs/validation.md.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import yaml

from demigod.evaluation.result import EvaluationResult
from demigod.lifecycle.errors import LifecycleError

SUITE = "lm_eval"
DEFAULT_TASKS = ("demigod_smoke",)
DATA_FILE = "data.jsonl"
# Variables that keep `datasets`, `huggingface_hub` and `evaluate` off the network.
OFFLINE_ENVIRONMENT = {
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


# Entries of lm-eval's per-task results that are bookkeeping, not scores.
_NOT_SCORES = frozenset({"alias", "sample_len", "sample_count", "samples"})


class LmEvalError(LifecycleError):
    """lm-evaluation-harness is missing, or a task could not be loaded or run."""


def shipped_tasks_dir() -> Path:
    """Where the tasks shipped with demigod live (one folder per task)."""
    return Path(str(resources.files("demigod.lifecycle") / "lm_eval_tasks"))


def shipped_task_config(name: str) -> dict[str, Any] | None:
    """The shipped task `name` as an lm-eval task config, its data file made absolute;
    None when no such task is shipped."""
    folder = shipped_tasks_dir() / name
    config_file = folder / f"{name}.yaml"
    if not config_file.is_file():
        return None
    config: dict[str, Any] = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["dataset_kwargs"] = {"data_files": {"test": str(folder / DATA_FILE)}}
    return config


def run_lm_eval(
    base_url: str,
    model: str,
    tasks: Sequence[str] | None,
    *,
    api_key: str | None = None,
    limit: int | None = None,
    timeout_seconds: int = 300,
    eos_string: str | None = None,
) -> list[EvaluationResult]:
    """Run lm-eval `tasks` (None: the shipped offline task) against `model` served at
    `base_url` (the server's root; a trailing /v1 is accepted), one request at a time.

    Returns one result per task and metric (suite "lm_eval", metric "TASK/METRIC", higher
    is better); standard errors are not returned. Tasks not shipped with demigod come from
    lm-eval's own catalogue and their datasets must already be in the local cache: the
    run is offline. `eos_string`: the model's end-of-text text, added to every task's stop
    sequences (lm-eval cannot learn it without a tokenizer). `limit`: items per task.
    Raises LmEvalError when lm-eval is missing or a task fails.
    """
    with _offline():
        return _run(base_url, model, tasks, api_key, limit, timeout_seconds, eos_string)


def _run(
    base_url: str,
    model: str,
    tasks: Sequence[str] | None,
    api_key: str | None,
    limit: int | None,
    timeout_seconds: int,
    eos_string: str | None,
) -> list[EvaluationResult]:
    try:
        import lm_eval  # type: ignore[import-untyped]
        from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]
    except ImportError as error:
        raise LmEvalError(
            "lm-evaluation-harness is not installed (pip install 'demigod[build]')"
        ) from error
    names = list(tasks) if tasks else list(DEFAULT_TASKS)
    shipped = {name: shipped_task_config(name) for name in names}
    task_specs: list[str | dict[str, Any]] = [shipped[name] or name for name in names]
    root = base_url.rstrip("/").removesuffix("/v1")
    model_args: dict[str, Any] = {
        "base_url": f"{root}/v1/completions",
        "model": model,
        # The server's own tokenizer (no download); prompts go as its token ids.
        "tokenizer_backend": "remote",
        "tokenized_requests": True,
        "num_concurrent": 1,
        "max_retries": 2,
        "timeout": timeout_seconds,
    }
    if eos_string:
        model_args["eos_string"] = eos_string
    if api_key:
        model_args["header"] = {"Authorization": f"Bearer {api_key}"}
        model_args["auth_token"] = api_key  # the remote tokenizer's own requests
    _check_tokenizer(root, model, api_key, timeout_seconds)
    task_manager = TaskManager(include_defaults=not all(shipped.values()))
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    try:
        output = lm_eval.simple_evaluate(
            model="local-completions",
            model_args=model_args,
            tasks=task_specs,
            task_manager=task_manager,
            limit=limit,
            log_samples=False,
            random_seed=0,
            numpy_random_seed=0,
            torch_random_seed=0,
            fewshot_random_seed=0,
        )
    except Exception as error:
        raise LmEvalError(f"lm-eval run of {', '.join(names)} failed: {error}") from error
    if not output or "results" not in output:
        raise LmEvalError(f"lm-eval returned no results for {', '.join(names)}")
    return _results(output["results"], _tool_versions())


def _check_tokenizer(root: str, model: str, api_key: str | None, timeout: int) -> None:
    """lm-eval's remote tokenizer names no model: the server's default tokenizer must be
    `model`'s. Raises LmEvalError when it is not (or the server has none)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        reply = httpx.get(f"{root}/tokenizer_info", headers=headers, timeout=timeout)
        reply.raise_for_status()
        served = reply.json().get("model")
    except (httpx.HTTPError, ValueError) as error:
        raise LmEvalError(
            f"{root}/tokenizer_info did not answer ({error}); lm-eval tokenizes through it, "
            "which needs a server of one model (demigod worker, or serve with one model)"
        ) from error
    if served != model:
        raise LmEvalError(f"{root} tokenizes as {served!r}, not {model!r}: evaluate that model")


def _results(
    results: dict[str, dict[str, Any]], versions: dict[str, str]
) -> list[EvaluationResult]:
    found: list[EvaluationResult] = []
    for task, metrics in sorted(results.items()):
        for key, value in sorted(metrics.items()):
            metric, _, filter_name = key.partition(",")
            if metric.endswith("_stderr") or not isinstance(value, int | float):
                continue
            if metric in _NOT_SCORES or isinstance(value, bool):
                continue
            name = f"{task}/{metric}" + (
                f"/{filter_name}" if filter_name not in ("", "none") else ""
            )
            found.append(EvaluationResult(SUITE, name, float(value), None, None, dict(versions)))
    return found


@contextmanager
def _offline() -> Iterator[None]:
    """Hub and datasets offline for the run, as they were afterwards (a later `pull` in
    the same process must still reach the hub)."""
    saved_env = {name: os.environ.get(name) for name in OFFLINE_ENVIRONMENT}
    os.environ.update(OFFLINE_ENVIRONMENT)
    # The libraries read these at import time: set the constants too.
    patched: list[tuple[Any, str, Any]] = []
    for module_name, attribute in (
        ("datasets.config", "HF_DATASETS_OFFLINE"),
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        patched.append((module, attribute, getattr(module, attribute, None)))
        setattr(module, attribute, True)
    try:
        yield
    finally:
        for module, attribute, value in patched:
            setattr(module, attribute, value)
        for name, previous in saved_env.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def _tool_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for package in ("lm_eval", "datasets", "demigod"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
