"""What a deployment serves: each model's worker, read from the configuration and the
registry when rendering, so the rendered files pin exact versions.

The configuration's `models` (GGUF files) come first, then the `stable` version of every
registered model, its file verified against the registry's sha256 and marked as used
(a version a deployment serves must not be retired under it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demigod.config import ModelConfig, Settings
from demigod.deploy.workloads import WorkerModel


class NotServableError(ValueError):
    """A served model cannot run in a worker image (not a GGUF file on this machine)."""


@dataclass(frozen=True)
class ServedModel:
    """One model's worker, and the file on this machine that its models volume holds."""

    worker: WorkerModel
    host_path: Path
    config: ModelConfig  # as the rest of the mesh knows it (placement measures this file)

    @property
    def host_folder(self) -> Path:
        return self.host_path.parent


def served_model(config: ModelConfig) -> ServedModel:
    """`config` as a worker serves it. Raises NotServableError for a Hugging Face folder
    (the transformers backend needs torch, which the worker images leave out) and for a
    file that is not here."""
    if config.backend != "llama.cpp":
        raise NotServableError(
            f"model {config.name!r} uses the {config.backend} backend; the worker images "
            "run GGUF files through llama.cpp only"
        )
    path = config.path.resolve()
    if not path.is_file():
        raise NotServableError(f"model {config.name!r}: {path} is not a file")
    worker = WorkerModel(
        name=config.name,
        version=config.version,
        categories=tuple(config.categories),
        file_name=path.name,
    )
    return ServedModel(worker=worker, host_path=path, config=config)


def served_models(settings: Settings) -> list[ServedModel]:
    """Every model a deployment of `settings` serves, in order: the configured ones, then
    each registered model's stable version (a canary candidate is not deployed as a worker
    of its own). Raises NotServableError, demigod.registry.RegistryError, and
    demigod.lifecycle.artefacts.ArtefactError for a missing or corrupt file."""
    from demigod.lifecycle.serving import stable_models
    from demigod.registry import Registry

    with Registry.open(settings.database_url, settings.data_dir) as registry:
        registered = stable_models(registry, exclude={m.name for m in settings.models})
    configs: dict[str, ModelConfig] = {}
    for config in [*settings.models, *registered.models]:
        configs.setdefault(config.name, config)  # a later entry of a name is its candidate
    return [served_model(config) for config in configs.values()]
