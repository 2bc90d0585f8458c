"""Reading the running mesh: the gateway's `GET /admin/state`, then the same from every
replica it forwards to that is a demigod process (a `demigod worker`); vLLM or
llama-server replicas have no such endpoint and are skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from pydantic import ValidationError

from demigod.mesh_state import ADMIN_STATE_PATH, MeshState


class AdminStateError(Exception):
    """A process did not report its state; the message says why (unreachable, 401/403...)."""


@dataclass(frozen=True)
class NodeState:
    url: str
    state: MeshState


@dataclass
class RunningMesh:
    """What answered (`nodes`, the gateway first) and what did not (`unreachable`: URL ->
    why). Replicas the gateway itself reports down are not asked."""

    nodes: list[NodeState] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)


class AdminClient:
    """GET /admin/state with an admin tenant's API key (or none where auth is off)."""

    def __init__(self, api_key: str | None, timeout: float) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def state(self, url: str) -> MeshState | None:
        """The process's state; None when it has no admin endpoint (404: not demigod).
        Raises AdminStateError when it cannot be read."""
        try:
            response = self._http.get(url.rstrip("/") + ADMIN_STATE_PATH)
        except httpx.HTTPError as exc:
            raise AdminStateError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AdminStateError(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            return MeshState.model_validate_json(response.content)
        except ValidationError as exc:
            raise AdminStateError(f"not a demigod state report: {exc}") from exc


def read_running_mesh(gateway_url: str, client: AdminClient) -> RunningMesh:
    """The gateway's state, then each replica's that the gateway reports up."""
    running = RunningMesh()
    try:
        gateway = client.state(gateway_url)
    except AdminStateError as exc:
        running.unreachable[gateway_url] = str(exc)
        return running
    if gateway is None:
        running.unreachable[gateway_url] = f"no {ADMIN_STATE_PATH}: not a demigod gateway"
        return running
    running.nodes.append(NodeState(gateway_url, gateway))
    for url in sorted({replica.url for replica in gateway.upstreams if replica.up}):
        try:
            state = client.state(url)
        except AdminStateError as exc:
            running.unreachable[url] = str(exc)
            continue
        if state is not None:
            running.nodes.append(NodeState(url, state))
    return running
