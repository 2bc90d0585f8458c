"""Promotion: move an alias (normally `stable`) to a version, through the gates, with a
release note for the CI workflow's GitHub Release step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demigod.config import PromotionGates
from demigod.lifecycle.artefacts import local_path, verify, write_atomic
from demigod.lifecycle.errors import LifecycleError
from demigod.lifecycle.gates import GateResult, check_gates
from demigod.registry import (
    READY,
    STABLE,
    AliasInfo,
    Registry,
    RegistryError,
    UnknownVersionError,
    VersionInfo,
)

RELEASES_DIR = "releases"


class PromotionRefused(LifecycleError, RegistryError):
    """A gate failed; the message names each failing gate."""

    def __init__(self, model: str, version: str, failed: list[GateResult]) -> None:
        names = "; ".join(f"{g.gate}: {g.detail}" for g in failed)
        super().__init__(
            f"refusing to promote {model}@{version} to stable: {names} "
            "(--force --reason TEXT overrides, and is recorded)"
        )
        self.failed = failed


@dataclass(frozen=True)
class Promotion:
    version: VersionInfo
    alias: AliasInfo
    previous: str | None
    gates: list[GateResult]
    forced: bool
    release_note: Path | None = None
    release_json: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "version": self.version.label,
            "alias": self.alias.name,
            "previous": self.previous,
            "forced": self.forced,
            "gates": [g.to_json() for g in self.gates],
            "sha256": self.version.sha256,
            "release_note": str(self.release_note) if self.release_note else None,
            "release_json": str(self.release_json) if self.release_json else None,
        }


def promote(
    registry: Registry,
    data_dir: Path,
    gates: PromotionGates,
    model: str,
    version: str,
    *,
    to: str = STABLE,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
) -> Promotion:
    """Point alias `to` of `model` at `version` (label or alias), after verifying the
    artefact's sha256 and, for `stable`, every gate.

    Raises PromotionRefused (a gate failed, no --force), AliasConflictError (a concurrent
    promotion moved the alias first), ArtefactError (file missing or corrupt),
    UnknownModelError/UnknownVersionError, and ValueError (--force without --reason).
    """
    if force and not reason:
        raise ValueError("--force needs --reason: a forced promotion records why")
    target = registry.get_version(model, version)
    if target.status != READY:
        raise RegistryError(f"{target.ref} is {target.status}: `demigod models restore` first")
    verify(local_path(target.storage_uri), target.sha256)
    current = registry.alias(model, to)  # read before the gates: the move expects this
    results: list[GateResult] = []
    if to == STABLE:
        stable = _version_or_none(registry, model, current)
        results = check_gates(
            gates,
            target,
            registry.evaluations(model, target.label),
            stable,
            registry.evaluations(model, stable.label) if stable is not None else [],
        )
        failed = [g for g in results if not g.passed]
        if failed and not force:
            registry.record_event(
                model,
                "promotion.refused",
                version=target.label,
                actor=actor,
                reason=reason,
                details={"to": to, "failed": [g.to_json() for g in failed]},
            )
            raise PromotionRefused(model, target.label, failed)
    forced = force and any(not g.passed for g in results)
    alias = registry.move_alias(
        model,
        to,
        target.label,
        expected_row_version=current.row_version if current is not None else None,
        actor=actor,
        reason=reason,
        details={"forced": forced, "gates": [g.to_json() for g in results]},
    )
    promotion = Promotion(
        version=target,
        alias=alias,
        previous=current.version if current is not None else None,
        gates=results,
        forced=forced,
    )
    if to == STABLE:
        note, data = write_release_note(data_dir, registry, promotion, reason)
        promotion = Promotion(**{**promotion.__dict__, "release_note": note, "release_json": data})
    return promotion


def write_release_note(
    data_dir: Path, registry: Registry, promotion: Promotion, reason: str | None
) -> tuple[Path, Path]:
    """`data_dir/releases/MODEL-VERSION.{md,json}`: what the GitHub Release step posts."""
    version = promotion.version
    evaluations = registry.evaluations(version.model, version.label)
    folder = data_dir / RELEASES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{version.model}-{version.label}"
    data = {
        **promotion.to_json(),
        "reason": reason,
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quantization": version.quantization,
        "size_bytes": version.size_bytes,
        "backend": version.backend,
        "source_uri": version.source_uri,
        "revision": version.revision,
        "reference": version.reference,
        "evaluations": [e.to_json() for e in evaluations],
    }
    data.pop("release_note")
    data.pop("release_json")
    lines = [
        f"# {version.model} {version.label} is stable",
        "",
        f"- previous stable: {promotion.previous or 'none'}",
        f"- quantization: {version.quantization}, {version.size_bytes:,} bytes, "
        f"backend {version.backend}",
        f"- sha256: `{version.sha256}`",
        f"- source: {version.source_uri or 'unknown'} (revision {version.revision or 'n/a'})",
    ]
    if promotion.forced:
        lines.append(f"- **forced past failing gates**: {reason}")
    elif reason:
        lines.append(f"- reason: {reason}")
    lines += ["", "## Gates", "", "| gate | result | detail |", "|---|---|---|"]
    lines += [
        f"| {g.gate} | {'pass' if g.passed else 'FAIL'} | {g.detail} |" for g in promotion.gates
    ]
    if evaluations:
        lines += ["", "## Evaluations", "", "| suite | metric | value | threshold |"]
        lines.append("|---|---|---|---|")
        lines += [
            f"| {e.suite} | {e.metric} | {e.value:.6g} | "
            f"{'' if e.threshold is None else e.threshold} |"
            for e in evaluations
        ]
    note, record = stem.with_suffix(".md"), stem.with_suffix(".json")
    write_atomic(record, (json.dumps(data, indent=2) + "\n").encode())
    write_atomic(note, ("\n".join(lines) + "\n").encode())
    return note, record


def _version_or_none(registry: Registry, model: str, alias: AliasInfo | None) -> VersionInfo | None:
    if alias is None:
        return None
    try:
        return registry.get_version(model, alias.version)
    except UnknownVersionError:
        return None
