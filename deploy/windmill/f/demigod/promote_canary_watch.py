"""Windmill script: promote a model version to `candidate`, start its canary on the
running gateway and watch it to the end; a canary that ends promoted moves `stable` to the
version too (through the promotion gates)."""

from __future__ import annotations

from typing import Any

import httpx
from f.demigod.cli import demigod_json, demigod_json_lines

CANARY_ROLLED_BACK = 1  # `demigod canary start`'s exit status when the candidate lost


def main(
    model: str,
    version: str,
    gateway_url: str,
    config: str = "mesh.yaml",
    api_key: str = "",
    force_reason: str = "",
) -> dict[str, Any]:
    """`version` becomes `candidate`; the gateway at `gateway_url` must already serve it
    (deployed by new_tag_render_apply). `force_reason` promotes to stable past failing
    gates, recorded with that reason. Raises when the gateway does not serve the version."""
    candidate = demigod_json(
        "models", "promote", model, version, "--to", "candidate", config=config
    )
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    probe = httpx.post(
        f"{gateway_url.rstrip('/')}/v1/completions",
        json={"model": f"{model}@{candidate['version']}", "prompt": "ping", "max_tokens": 1},
        headers=headers,
        timeout=60,
    )
    if probe.status_code != 200:
        raise RuntimeError(
            f"{gateway_url} does not serve {model}@{candidate['version']} "
            f"(HTTP {probe.status_code}): deploy it first"
        )
    events = demigod_json_lines(
        "canary",
        "start",
        model,
        "--url",
        gateway_url,
        config=config,
        ok_codes=(0, CANARY_ROLLED_BACK),
    )
    end = events[-1]
    result: dict[str, Any] = {
        "model": model,
        "version": candidate["version"],
        "canary": end["status"],
        "weight": end["weight"],
        "reason": end["reason"],
        "windows": [e for e in events if e["event"] == "window"],
        "stable": None,
    }
    if end["status"] == "promoted":
        force = ["--force", "--reason", force_reason] if force_reason else []
        promoted = demigod_json(
            "models",
            "promote",
            model,
            candidate["version"],
            "--to",
            "stable",
            *force,
            config=config,
        )
        result["stable"] = promoted["version"]
    return result
