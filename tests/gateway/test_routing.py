"""Routing as a client and an evaluator see it: the header, /v1/route and the batch CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import Server


def test_every_completion_carries_its_route(server: Server) -> None:
    body = {"model": "auto", "prompt": "Solve 2x + 3 = 9", "max_tokens": 2}
    reply = httpx.post(f"{server.url}/v1/completions", json=body)
    route = reply.headers["x-demigod-route"]
    assert route.startswith("category=math; model=tiny; version=local; reason=")
    assert "fallback" in route  # the only model serves chat
    explicit = httpx.post(f"{server.url}/v1/completions", json={**body, "model": "tiny"})
    assert explicit.headers["x-demigod-route"].startswith("category=none; model=tiny")


def test_route_endpoint_decides_without_generating(server: Server) -> None:
    messages = [{"role": "user", "content": "¿Qué tal el fin de semana?"}]
    reply = httpx.post(f"{server.url}/v1/route", json={"model": "auto", "messages": messages})
    assert reply.status_code == 200
    assert reply.json()["category"] == "chat"
    assert reply.json()["model"] == "tiny"
    missing = httpx.post(f"{server.url}/v1/route", json={"model": "x", "messages": messages})
    assert missing.status_code == 404


def run_classify(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "demigod", "route", "classify", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)


def test_classify_cli_writes_one_line_per_prompt(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"id": 1, "prompt": "Write a Python function that merges two sorted lists."},
        {"id": 2, "prompt": "¿Cuánto es la integral de 2x?"},
        {"id": 3, "prompt": "What a lovely day, any plans?"},
    ]
    prompts.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    models = [
        "--model",
        "coder=c.gguf:code",
        "--model",
        "calc=m.gguf:math",
        "--model",
        "talk=t.gguf",
    ]
    done = run_classify("--jsonl", str(prompts), *models)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(o["id"], o["category"], o["model"]) for o in out] == [
        (1, "code", "coder"),
        (2, "math", "calc"),
        (3, "chat", "talk"),
    ]
    assert all(o["reason"] and 0 < o["confidence"] <= 1 for o in out)


def test_classify_cli_keeps_the_input_lines_own_category(tmp_path: Path) -> None:
    """A labelled file's "category" is not overwritten by the prediction (it moves to
    input_category), so predictions can be compared with labels."""
    labelled = '{"prompt": "Solve 3x + 2 = 17 for x.", "category": "chat", "model": "mine"}\n'
    done = run_classify("--jsonl", "-", "--model", "calc=m.gguf:math", "--model", "talk=t.gguf",
                        stdin=labelled)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["input_category"], out["input_model"]) == ("chat", "mine")
    assert (out["category"], out["model"]) == ("math", "calc")


def test_classify_cli_rejects_bad_lines_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"text": "no prompt"}\n')
    done = run_classify("--jsonl", str(bad), "--model", "talk=t.gguf")
    assert done.returncode == 2
    assert "bad.jsonl:2" in done.stderr
    missing = run_classify("--jsonl", str(tmp_path / "none.jsonl"), "--model", "talk=t.gguf")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    piped = run_classify("--jsonl", "-", "--model", "talk=t.gguf", stdin='{"prompt": "hola"}\n')
    assert json.loads(piped.stdout)["model"] == "talk"
