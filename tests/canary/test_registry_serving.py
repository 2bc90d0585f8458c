"""A registry `candidate` alias is served as the model's canary candidate."""

from __future__ import annotations

import hashlib
from pathlib import Path

from demigod.lifecycle.serving import stable_models
from demigod.registry import CANDIDATE, STABLE, Registry
from demigod.routing.versions import split_versions


def add_file_version(registry: Registry, model: str, path: Path, content: bytes) -> str:
    path.write_bytes(content)
    version = registry.add_version(
        model,
        sha256=hashlib.sha256(content).hexdigest(),
        storage_uri=str(path),
        quantization="Q4_0",
        size_bytes=len(content),
    )
    return version.label


def test_stable_then_candidate_become_the_two_served_versions(tmp_path: Path) -> None:
    with Registry.open(None, tmp_path) as registry:
        registry.ensure_model("chat", categories=["chat"])
        registry.ensure_model("code", categories=["code"])
        v1 = add_file_version(registry, "chat", tmp_path / "a.gguf", b"first")
        v2 = add_file_version(registry, "chat", tmp_path / "b.gguf", b"second")
        only = add_file_version(registry, "code", tmp_path / "c.gguf", b"third")
        registry.move_alias("chat", STABLE, v1)
        registry.move_alias("chat", CANDIDATE, v2)
        registry.move_alias("code", STABLE, only)
        registry.move_alias("code", CANDIDATE, only)  # the same version: no canary
        served = stable_models(registry)
    stable, candidates = split_versions(served.models)
    assert [(m.name, m.version) for m in stable] == [("chat", v1), ("code", only)]
    assert [(m.name, m.version, m.path.name) for m in candidates] == [("chat", v2, "b.gguf")]
    assert served.aliases["chat"] == {STABLE: v1, CANDIDATE: v2}
