"""The seed's one-pager for funding applications: p95 latency, energy saved by Mamba
against Transformers, AI Act policies; each figure with the source it was read from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from demigod import __version__
from demigod.reports.energy import EnergyComparison
from demigod.reports.mesh import MeshFigures
from demigod.reports.policies import Policies

# The seed's phase-2 indicator (seed §8): p95 latency under 2 s.
P95_TARGET_SECONDS = 2.0


@dataclass(frozen=True)
class OnePager:
    generated_at: str
    demigod_version: str
    mesh: MeshFigures
    energy: EnergyComparison
    policies: Policies

    @classmethod
    def of(cls, mesh: MeshFigures, energy: EnergyComparison, policies: Policies) -> OnePager:
        return cls(
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            demigod_version=__version__,
            mesh=mesh,
            energy=energy,
            policies=policies,
        )

    @property
    def meets_p95_target(self) -> bool | None:
        if self.mesh.p95_seconds is None:
            return None
        return self.mesh.p95_seconds < P95_TARGET_SECONDS

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "demigod_version": self.demigod_version,
            "p95_target_seconds": P95_TARGET_SECONDS,
            "mesh": self.mesh.to_json(),
            "energy": {**self.energy.to_json(), "basis": self.energy.basis},
            "policies": self.policies.to_json(),
        }
