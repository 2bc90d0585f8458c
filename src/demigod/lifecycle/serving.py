"""What `demigod serve` takes from the registry: each model's `stable` version, verified,
and its `candidate` version when it has one (split by the canary weight)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demigod.config import ModelConfig
from demigod.lifecycle.artefacts import local_path, verify
from demigod.registry import CANDIDATE, READY, STABLE, Registry


@dataclass(frozen=True)
class RegistryServing:
    """The served registry models, and every model's alias -> version label map (what
    `model@alias` resolves through)."""

    models: list[ModelConfig]
    aliases: dict[str, dict[str, str]]


def stable_models(registry: Registry, *, exclude: set[str] | None = None) -> RegistryServing:
    """A ModelConfig for the `stable` version of every registered model not in `exclude`,
    its artefact's sha256 verified first (raises ArtefactError when missing or corrupt),
    and each one marked as used (retirement counts from there); then, for models whose
    `candidate` alias names another ready version, that version (the canary candidate)."""
    configs: list[ModelConfig] = []
    candidates: list[ModelConfig] = []
    aliases: dict[str, dict[str, str]] = {}
    for model in registry.list_models():
        model_aliases = registry.aliases(model.name)
        aliases[model.name] = {name: alias.version for name, alias in model_aliases.items()}
        if model.name in (exclude or set()) or STABLE not in model_aliases:
            continue
        version = registry.get_version(model.name, STABLE)
        if version.status != READY:
            continue
        path = verify(local_path(version.storage_uri), version.sha256)
        configs.append(
            ModelConfig(
                name=model.name,
                path=Path(path),
                backend=version.backend,  # type: ignore[arg-type]
                categories=model.categories or ["chat"],
                version=version.label,
            )
        )
        registry.mark_used(model.name, version.label)
        if (candidate := _candidate(registry, model.name, version.label)) is not None:
            candidates.append(candidate)
    # After every stable: a second entry of a name is its canary candidate (routing.versions).
    return RegistryServing(configs + candidates, aliases)


def _candidate(registry: Registry, model: str, stable_label: str) -> ModelConfig | None:
    """The model's `candidate` version, verified, when it is ready and not the stable one."""
    if CANDIDATE not in registry.aliases(model):
        return None
    version = registry.get_version(model, CANDIDATE)
    if version.status != READY or version.label == stable_label:
        return None
    path = verify(local_path(version.storage_uri), version.sha256)
    registry.mark_used(model, version.label)
    return ModelConfig(
        name=model,
        path=Path(path),
        backend=version.backend,  # type: ignore[arg-type]
        categories=registry.get_model(model).categories or ["chat"],
        version=version.label,
    )
