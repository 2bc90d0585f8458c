"""GET /admin/state: what this process serves and runs with (demigod.mesh_state), read by
`demigod ops drift`. Only tenants in security.admin_tenants may read it (everyone when
authentication is off, the local demo)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from fastapi import Request

from demigod import __version__
from demigod.api.errors import APIError
from demigod.config import Settings
from demigod.engines.state_cache import file_sha256
from demigod.gateway.front_door import FrontDoor, Target
from demigod.gateway.upstreams import RemoteModel
from demigod.mesh import ServedModel
from demigod.mesh_state import MeshState, ServedVersion, UpstreamReplica, config_fingerprint
from demigod.routing.versions import VersionRouter


class ServingAdmin:
    def __init__(
        self,
        front: FrontDoor,
        settings: Settings,
        embedded: Mapping[str, ServedModel],
        versions: VersionRouter[Target],
        remote: Sequence[RemoteModel],
    ) -> None:
        """`remote`: every version of the remote models (gateway.upstreams)."""
        self._front = front
        self._fingerprint = config_fingerprint(settings)
        self._admins = frozenset(settings.security.admin_tenants)
        self._open = settings.security.auth == "off"
        self._embedded, self._versions, self._remote = embedded, versions, remote
        self._sha256: dict[str, str | None] = {}  # by file: hashed once, on first request

    async def state(self, request: Request) -> MeshState:
        """This process's state. Raises the admission steps' refusals (401) and 403 for a
        caller outside security.admin_tenants."""
        principal = (await self._front.identify(request, "admin")).principal
        if not self._open and principal.tenant not in self._admins:
            raise APIError(
                403,
                f"tenant {principal.tenant!r} may not read the admin state "
                "(security.admin_tenants)",
                type="permission_error",
                code="not_admin",
            )
        models: list[ServedVersion] = []
        for stable in self._embedded.values():
            candidate = self._versions.candidates.get(stable.name)
            share = self._versions.weight(stable.name) * 100 if candidate is not None else 0.0
            models.append(await self._version(stable, "stable", 100 - share))
            if isinstance(candidate, ServedModel):
                models.append(await self._version(candidate, "candidate", share))
        now = time.monotonic()
        upstreams = [
            UpstreamReplica(
                model=model.name,
                version=model.version,
                url=replica.url,
                up=replica.available(now),
            )
            for model in self._remote
            for replica in model.replicas
        ]
        return MeshState(
            demigod_version=__version__,
            models=models,
            upstreams=upstreams,
            config=self._fingerprint,
        )

    async def _version(self, served: ServedModel, role: str, weight: float) -> ServedVersion:
        return ServedVersion(
            model=served.name,
            version=served.version,
            sha256=await self._file_sha256(served),
            role=role,  # type: ignore[arg-type]
            weight_percent=weight,
        )

    async def _file_sha256(self, served: ServedModel) -> str | None:
        """The GGUF's sha256 (None for a transformers folder), hashed off the event loop."""
        path = served.path
        if path is None or not path.is_file():
            return None
        key = str(path)
        if key not in self._sha256:
            self._sha256[key] = await asyncio.to_thread(file_sha256, path)
        return self._sha256[key]
