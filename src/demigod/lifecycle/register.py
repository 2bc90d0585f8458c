"""Register an artefact (a GGUF file, or an HF folder for the transformers backend) as a
new version of a model: into the local store, verified, then into the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demigod.lifecycle.artefacts import (
    file_uri,
    import_artefact,
    sha256_file,
    size_of,
    store_path,
)
from demigod.lifecycle.errors import LifecycleError
from demigod.registry import CANDIDATE, Registry, VersionInfo

# llama.cpp's `general.file_type` numbers, by the names the lifecycle shows.
_FILE_TYPES: dict[int, str] = {}


def _file_types() -> dict[int, str]:
    if not _FILE_TYPES:
        import llama_cpp

        for name in dir(llama_cpp):
            if name.startswith("LLAMA_FTYPE_MOSTLY_") or name == "LLAMA_FTYPE_ALL_F32":
                label = name.removeprefix("LLAMA_FTYPE_MOSTLY_").removeprefix("LLAMA_FTYPE_ALL_")
                _FILE_TYPES[int(getattr(llama_cpp, name))] = label
    return _FILE_TYPES


class RegistrationError(LifecycleError, ValueError):
    """The artefact cannot be registered (missing, not a GGUF, unreadable)."""


@dataclass(frozen=True)
class GgufFacts:
    architecture: str
    quantization: str
    size_label: str | None


def gguf_facts(path: Path) -> GgufFacts:
    """Architecture and quantization read from a GGUF's header (tokenizer only, fast).

    Raises RegistrationError when llama.cpp cannot read the file.
    """
    import llama_cpp

    if not path.is_file():
        raise RegistrationError(f"no GGUF file at {path}")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise RegistrationError(f"{path} is not a GGUF file")
    try:
        model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise RegistrationError(f"llama.cpp cannot read {path}: {exc}") from exc
    try:
        metadata = dict(model.metadata)
    finally:
        model.close()
    file_type = metadata.get("general.file_type")
    quantization = (
        _file_types().get(int(file_type), f"ftype-{file_type}")
        if file_type is not None
        else "unknown"
    )
    return GgufFacts(
        architecture=metadata.get("general.architecture", "unknown"),
        quantization=quantization,
        size_label=metadata.get("general.size_label"),
    )


def register_artefact(
    registry: Registry,
    data_dir: Path,
    name: str,
    artefact: Path,
    *,
    backend: str = "llama.cpp",
    quantization: str | None = None,
    source_uri: str | None = None,
    revision: str | None = None,
    reference: str | None = None,
    architecture: str | None = None,
    family: str | None = None,
    parameter_count: int | None = None,
    licence: str | None = None,
    categories: list[str] | None = None,
    candidate: bool = True,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
    reason: str | None = None,
) -> VersionInfo:
    """Copy (or hard-link) `artefact` into the store and record it as a version of `name`.

    Order matters for crash safety: hash, import atomically and verify, then one DB
    transaction. Registering the same content again returns the existing version.
    `candidate` points the `candidate` alias at it. Raises RegistrationError.
    """
    if not artefact.exists():
        raise RegistrationError(f"{artefact} does not exist")
    derived: dict[str, Any] = {}
    if backend == "llama.cpp":
        facts = gguf_facts(artefact)
        quantization = quantization or facts.quantization
        derived = {"architecture": facts.architecture, "family": facts.architecture}
        suffix = f".{quantization}.gguf"
    else:
        if not (artefact / "config.json").is_file():
            raise RegistrationError(f"{artefact} is not a Hugging Face folder (no config.json)")
        quantization = quantization or "HF"
        suffix = ".hf"
    sha256 = sha256_file(artefact)
    stored = import_artefact(artefact, store_path(data_dir, name, sha256, suffix), sha256)
    registry.ensure_model(
        name,
        architecture=architecture,
        family=family,
        parameter_count=parameter_count,
        licence=licence,
        categories=categories,
        defaults=derived,
        actor=actor,
    )
    version = registry.add_version(
        name,
        sha256=sha256,
        storage_uri=file_uri(stored),
        quantization=quantization,
        size_bytes=size_of(stored),
        backend=backend,
        source_uri=source_uri or file_uri(artefact),
        revision=revision,
        reference=reference,
        details=details,
        actor=actor,
        reason=reason,
    )
    if candidate:
        registry.move_alias(name, CANDIDATE, version.label, actor=actor, reason="registered")
    return version
