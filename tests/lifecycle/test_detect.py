"""detect(): the family table, checked against the pinned converter and transformers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import transformers

from demigod.lifecycle.architectures import (
    FAMILIES,
    UnsupportedArchitectureError,
    detect,
    family,
)


def _hf_folder(tmp_path: Path, config: object) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


@pytest.mark.parametrize(
    ("hf_class", "expected_family", "backend"),
    [
        ("MambaForCausalLM", "mamba", "llama.cpp"),
        ("FalconMambaForCausalLM", "mamba", "llama.cpp"),
        ("Mamba2ForCausalLM", "mamba2", "llama.cpp"),
        ("RWKV7ForCausalLM", "rwkv7", "llama.cpp"),
        ("JambaForCausalLM", "jamba", "llama.cpp"),
        ("FalconH1ForCausalLM", "falcon-h1", "llama.cpp"),
        ("GraniteMoeHybridForCausalLM", "granite-hybrid", "llama.cpp"),
        ("Zamba2ForCausalLM", "zamba2", "transformers"),
    ],
)
def test_detect_names_family_and_backend(
    tmp_path: Path, hf_class: str, expected_family: str, backend: str
) -> None:
    found = detect(_hf_folder(tmp_path, {"architectures": [hf_class]}))
    assert (found.family, found.hf_class, found.backend) == (expected_family, hf_class, backend)


def test_unsupported_architecture_says_what_and_what_is_supported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedArchitectureError) as caught:
        detect(_hf_folder(tmp_path, {"architectures": ["LlamaForCausalLM"]}))
    message = str(caught.value)
    assert "LlamaForCausalLM" in message and "Mamba2ForCausalLM" in message


def test_missing_or_empty_architectures(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedArchitectureError, match="model_type 'mamba'"):
        detect(_hf_folder(tmp_path, {"model_type": "mamba"}))
    with pytest.raises(ValueError, match=r"no config\.json"):
        detect(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        detect(tmp_path)


def test_every_class_is_runnable_by_its_backend(toolkit: Path) -> None:
    """llama.cpp families are registered in the pinned converter; transformers families
    exist in the installed transformers."""
    registered: set[str] = set()
    for module in (toolkit / "conversion").glob("*.py"):
        for args in re.findall(r"@ModelBase\.register\(([^)]*)\)", module.read_text()):
            registered.update(re.findall(r'"([^"]+)"', args))
    for entry in FAMILIES:
        for hf_class in entry.hf_classes:
            if entry.backend == "llama.cpp":
                assert hf_class in registered, f"{entry.name}: converter lacks {hf_class}"
            else:
                assert hasattr(transformers, hf_class), f"{entry.name}: no {hf_class}"


def test_family_lookup() -> None:
    assert family("zamba2").backend == "transformers"
    with pytest.raises(KeyError, match="known: mamba"):
        family("gpt2")
