"""API keys: stored hashed, shown once, revocable; the gateway answers 401/403/429 with reasons."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from demigod.security.api_keys import APIKeyError, APIKeyStore
from tests.conftest import Server

HELLO = {"model": "tiny", "prompt": "hello", "max_tokens": 1}


def test_store_keeps_only_the_hash_and_revocation_sticks(tmp_path: Path) -> None:
    store = APIKeyStore(tmp_path / "keys.json")
    key, record = store.create(name="ci", tenant="acme", models=["tiny"])
    text = (tmp_path / "keys.json").read_text()
    assert key not in text and key.split("_")[-1] not in text
    assert record.sha256 in text
    assert stat.S_IMODE(os.stat(tmp_path / "keys.json").st_mode) == 0o600
    assert store.verify(key).tenant == "acme"
    # a second store (another process) sees the same keys
    assert APIKeyStore(tmp_path / "keys.json").verify(key).id == record.id
    with pytest.raises(APIKeyError) as wrong:
        store.verify(key[:-2] + ("AA" if not key.endswith("AA") else "BB"))
    assert wrong.value.reason == "unknown_api_key"
    with pytest.raises(APIKeyError) as malformed:
        store.verify("dgk_nothex_x")
    assert malformed.value.reason == "malformed_api_key"
    store.revoke(record.id)
    with pytest.raises(APIKeyError) as revoked:
        store.verify(key)
    assert revoked.value.reason == "revoked_api_key"
    assert [r.revoked is not None for r in store.list()] == [True]


def keys_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demigod", "keys", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DEMIGOD_DATA_DIR": str(data_dir)},
        timeout=60,
    )


def data_dir_of(server: Server) -> Path:
    return server.log.parent / "data"


def test_keys_cli_and_gateway_enforce_keys(secured: Server) -> None:
    data = data_dir_of(secured)
    created = keys_cli(data, "create", "--tenant", "acme", "--name", "ci", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    listed = json.loads(keys_cli(data, "list", "--json").stdout)
    assert [row["tenant"] for row in listed] == ["acme"] and "sha256" not in listed[0]
    assert key not in keys_cli(data, "list", "--json").stdout

    url = f"{secured.url}/v1/completions"
    missing = httpx.post(url, json=HELLO, timeout=30)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_credentials"
    bad = httpx.post(url, json=HELLO, headers={"Authorization": "Bearer dgk_0_x"}, timeout=30)
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "malformed_api_key"
    other = httpx.post(url, json=HELLO, headers={"Authorization": "Bearer sk-123"}, timeout=30)
    assert other.status_code == 401, other.text
    assert other.json()["error"]["code"] == "unknown_api_key"
    assert "not a known API key" in other.json()["error"]["message"]

    auth = {"Authorization": f"Bearer {key}"}
    answers = [httpx.post(url, json=HELLO, headers=auth, timeout=60) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    limited = answers[3]
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["param"] == "requests_per_minute"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-demigod-quota-limit"] == "requests_per_minute"

    metrics = httpx.get(f"{secured.url}/metrics", timeout=30).text
    assert 'demigod_auth_failures_total{reason="missing_credentials"} 1.0' in metrics
    assert 'demigod_requests_total{model="tiny",status="200",tenant="acme",version=' in metrics
    assert 'demigod_quota_refusals_total{limit="requests_per_minute",tenant="acme"} 1.0' in metrics

    key_id = json.loads(created.stdout)["id"]
    assert keys_cli(data, "revoke", key_id).returncode == 0
    revoked = httpx.post(url, json=HELLO, headers=auth, timeout=30)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "revoked_api_key"
    assert keys_cli(data, "revoke", "000000000000").returncode == 1


def test_model_outside_the_tenant_is_403_and_hidden(secured: Server) -> None:
    data = data_dir_of(secured)
    key = json.loads(keys_cli(data, "create", "--tenant", "other", "--name", "x", "--json").stdout)
    auth = {"Authorization": f"Bearer {key['key']}"}
    refused = httpx.post(f"{secured.url}/v1/completions", json=HELLO, headers=auth, timeout=30)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    models = httpx.get(f"{secured.url}/v1/models", headers=auth, timeout=30)
    assert models.status_code == 200 and models.json()["data"] == []
    assert httpx.get(f"{secured.url}/v1/models", timeout=30).status_code == 401
    hidden = httpx.get(f"{secured.url}/v1/models/tiny", headers=auth, timeout=30)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "model_not_found"
    props = httpx.get(f"{secured.url}/props", params={"model": "tiny"}, headers=auth, timeout=30)
    assert props.status_code == 403 and props.json()["error"]["code"] == "model_not_allowed"
    assert httpx.get(f"{secured.url}/slots", timeout=30).status_code == 401
    # llama-server's probe answers without credentials, as /readyz does
    assert httpx.get(f"{secured.url}/health", timeout=30).json() == {"status": "ok"}


def test_auth_off_is_loud(server: Server) -> None:
    reply = httpx.get(f"{server.url}/v1/models", timeout=30)
    assert reply.status_code == 200 and reply.headers["x-demigod-auth"] == "off"
    assert "AUTHENTICATION IS OFF" in server.log_text()
