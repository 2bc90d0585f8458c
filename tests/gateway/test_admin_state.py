"""GET /admin/state on a live server: admin tenants only; it reports the versions served
with their files' sha256 and canary shares, and the configuration's fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from demigod.mesh_state import MeshState
from demigod.security.api_keys import APIKeyStore
from tests.conftest import start_server, stop_server


def test_admin_state_for_admin_tenants_only(tiny_model: Path, tmp_path: Path) -> None:
    keys = APIKeyStore(tmp_path / "data" / "security" / "api-keys.json")
    admin, _ = keys.create(name="drift", tenant="ops")
    customer, _ = keys.create(name="app", tenant="acme")
    f16 = tiny_model.with_name("demigod-test.F16.gguf")
    config = f"""
models:
  - {{name: tiny, path: {tiny_model}, version: v1}}
  - {{name: tiny, path: {f16}, version: v2}}
canary:
  weights: {{tiny: 25}}
security:
  admin_tenants: [ops]
observability:
  deep_probe_interval_seconds: 0
"""
    server = start_server([], tmp_path, env={"DEMIGOD_SECURITY__AUTH": "required"}, config=config)
    try:
        url = f"{server.url}/admin/state"
        assert httpx.get(url, timeout=30).status_code == 401
        refused = httpx.get(url, headers={"authorization": f"Bearer {customer}"}, timeout=30)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_admin"
        answered = httpx.get(url, headers={"authorization": f"Bearer {admin}"}, timeout=30)
        assert answered.status_code == 200, answered.text
        state = MeshState.model_validate_json(answered.content)
    finally:
        stop_server(server)
    served = {(v.version, v.role, v.weight_percent, v.sha256) for v in state.models}
    assert served == {
        ("v1", "stable", 75.0, hashlib.sha256(tiny_model.read_bytes()).hexdigest()),
        ("v2", "candidate", 25.0, hashlib.sha256(f16.read_bytes()).hexdigest()),
    }
    assert state.upstreams == []
    assert "security.auth" in state.config.fields and "host" not in state.config.fields
