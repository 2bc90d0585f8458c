"""What `demigod serve` (and `demigod worker`) take from the registry: each model's `stable`
version, verified, and its `candidate` version when it has one (split by the canary
weight); with nothing configured or registered, the demo models, built and promoted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from demigod.config import ModelConfig, Settings
from demigod.lifecycle.artefacts import local_path, verify
from demigod.registry import CANDIDATE, READY, STABLE, Registry, VersionInfo

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class RegistryServing:
    """The served registry models, and every model's alias -> version label map (what
    `model@alias` resolves through)."""

    models: list[ModelConfig]
    aliases: dict[str, dict[str, str]]


def open_registry(settings: Settings) -> Registry:
    """The configured registry (migrated to the newest schema on open); its lifecycle
    events are also appended to the audit log."""
    from demigod.security.audit.events import subscribe_registry

    registry = Registry.open(settings.database_url, settings.data_dir)
    subscribe_registry(registry, settings)
    return registry


def models_to_serve(
    settings: Settings, *, progress: Callable[[str], None], console: Console | None = None
) -> RegistryServing:
    """The config's models plus the `stable` (and candidate) version of each registered
    model; with neither, the demo models, built (progress on `console`) and put through
    the registry first. Raises RegistryError, ArtefactError, and what building raises."""
    with open_registry(settings) as registry:
        found = stable_models(registry, exclude={m.name for m in settings.models})
    if not settings.models and not found.models:
        demo_stable_versions(settings, progress=progress, console=console)
        with open_registry(settings) as registry:
            found = stable_models(registry)
    return RegistryServing([*settings.models, *found.models], found.aliases)


def demo_stable_versions(
    settings: Settings,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    console: Console | None = None,
) -> list[VersionInfo]:
    """Build (or reuse) the demo models and make each one's stable version current."""
    from demigod.lifecycle.demo import ensure_demo_models
    from demigod.lifecycle.pipeline import register_demo_models

    demos = ensure_demo_models(settings.data_dir, console=console, force=force)
    with open_registry(settings) as registry:
        return register_demo_models(
            registry, settings, demos, progress=progress or (lambda _: None)
        )


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
