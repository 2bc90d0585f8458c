"""Which engine runs a Hugging Face checkpoint: one table of the model families we serve.

`detect(hf_dir)` reads `config.json`'s `architectures` and answers with the family and the
backend: "llama.cpp" (converted to GGUF, quantized, served by the llama.cpp engine) or
"transformers" (served from the HF folder itself by the transformers engine, for families
the pinned llama.cpp cannot run). A new family is one line in `FAMILIES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from demigod.lifecycle.errors import LifecycleError

Backend = Literal["llama.cpp", "transformers"]


@dataclass(frozen=True)
class Family:
    """A model family: its name, the HF classes that belong to it and the engine that
    runs it. `hybrid` families also hold attention KV beside their recurrent state."""

    name: str
    hf_classes: tuple[str, ...]
    backend: Backend
    hybrid: bool = False


# The one table. llama.cpp families must be registered in the pinned converter
# (var/llama.cpp-<version>/conversion/); transformers ones must exist in transformers.
FAMILIES: tuple[Family, ...] = (
    Family(
        "mamba", ("MambaForCausalLM", "MambaLMHeadModel", "FalconMambaForCausalLM"), "llama.cpp"
    ),
    Family("mamba2", ("Mamba2ForCausalLM",), "llama.cpp"),
    Family("rwkv6", ("Rwkv6ForCausalLM",), "llama.cpp"),
    Family("rwkv7", ("Rwkv7ForCausalLM", "RWKV7ForCausalLM"), "llama.cpp"),
    Family("jamba", ("JambaForCausalLM",), "llama.cpp", hybrid=True),
    Family("falcon-h1", ("FalconH1ForCausalLM",), "llama.cpp", hybrid=True),
    Family("granite-hybrid", ("GraniteMoeHybridForCausalLM",), "llama.cpp", hybrid=True),
    Family("bamba", ("BambaForCausalLM",), "llama.cpp", hybrid=True),
    Family("zamba2", ("Zamba2ForCausalLM",), "transformers", hybrid=True),
)


@dataclass(frozen=True)
class Architecture:
    """What `detect` found: the family, the HF class named in config.json, the backend."""

    family: str
    hf_class: str
    backend: Backend
    hybrid: bool = False


class UnsupportedArchitectureError(LifecycleError, ValueError):
    """The checkpoint's architecture is one neither engine runs."""


def family(name: str) -> Family:
    """The family called `name`. Raises KeyError naming the known families."""
    for entry in FAMILIES:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown model family {name!r}; known: {', '.join(f.name for f in FAMILIES)}")


def supported_classes() -> list[str]:
    """Every HF class some family accepts, in table order."""
    return [hf_class for entry in FAMILIES for hf_class in entry.hf_classes]


def detect(hf_dir: Path) -> Architecture:
    """The architecture of the Hugging Face checkpoint folder `hf_dir`.

    Raises ValueError when `hf_dir` has no readable config.json, and
    UnsupportedArchitectureError (a ValueError) when its `architectures` names no class
    that a family in `FAMILIES` accepts; both messages say what was found.
    """
    config_file = hf_dir / "config.json"
    try:
        config = json.loads(config_file.read_text("utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"{hf_dir} is not a Hugging Face checkpoint folder (no config.json)"
        ) from None
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {config_file}: {error}") from error
    classes = config.get("architectures") if isinstance(config, dict) else None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) or not classes:
        model_type = config.get("model_type") if isinstance(config, dict) else None
        raise UnsupportedArchitectureError(
            f'{config_file} names no architecture ("architectures" is missing or empty; '
            f"model_type {model_type!r}); supported: {', '.join(supported_classes())}"
        )
    for hf_class in classes:
        for entry in FAMILIES:
            if hf_class in entry.hf_classes:
                return Architecture(entry.name, hf_class, entry.backend, entry.hybrid)
    raise UnsupportedArchitectureError(
        f"{hf_dir}: architecture {', '.join(classes)} is not supported by llama.cpp or "
        f"transformers in this build; supported: "
        + "; ".join(f"{f.name} ({', '.join(f.hf_classes)})" for f in FAMILIES)
    )
