"""A served model's footprint for placement: declared in mesh.yaml, or measured from its GGUF
(parameters from llama.cpp, file size, one sequence's state at n_ctx tokens)."""

from __future__ import annotations

from pathlib import Path

from demigod.config import ModelConfig, Settings
from demigod.deploy.placement import ModelFootprint, Placement, place


class FootprintUnknownError(ValueError):
    """The model's size is neither declared nor measurable on this machine."""


def measure_footprint(gguf: Path, n_ctx: int) -> ModelFootprint:
    """Load `gguf` with llama.cpp and measure it. A hybrid's state holds its KV cells, so
    the state is measured after `n_ctx` tokens: the most one sequence can hold.
    Raises demigod.lifecycle.state_size.StateSizeError when llama.cpp cannot load it."""
    import llama_cpp

    from demigod.engines.llama_cpp import init_backend
    from demigod.lifecycle.state_size import StateSizeError, sequence_state_bytes

    init_backend(verbose=False)
    model = llama_cpp.llama_model_load_from_file(
        str(gguf).encode(), llama_cpp.llama_model_default_params()
    )
    if not model:
        raise StateSizeError(f"llama.cpp could not load {gguf}")
    try:
        parameters = int(llama_cpp.llama_model_n_params(model))
    finally:
        llama_cpp.llama_model_free(model)
    state = sequence_state_bytes(gguf, [n_ctx])[n_ctx]
    return ModelFootprint(parameters, gguf.stat().st_size, state)


def model_footprint(model: ModelConfig, settings: Settings) -> ModelFootprint:
    """The declared footprint (placement.footprints), else the one measured from the GGUF.
    Raises FootprintUnknownError when neither is possible."""
    declared = settings.placement.footprints.get(model.name)
    if declared is not None:
        return ModelFootprint(
            declared.parameters, declared.weights_bytes, declared.state_bytes_per_sequence
        )
    if model.backend != "llama.cpp" or not model.path.is_file():
        raise FootprintUnknownError(
            f"model {model.name!r}: {model.path} is not a GGUF readable here; declare "
            f"placement.footprints.{model.name} (parameters, weights_bytes, "
            "state_bytes_per_sequence) in mesh.yaml"
        )
    return measure_footprint(model.path, settings.engine.n_ctx)


def place_models(settings: Settings) -> list[Placement]:
    """Every served model placed, in the order of `settings.models`. Raises
    FootprintUnknownError or demigod.deploy.placement.PlacementError."""
    return [
        place(model.name, model_footprint(model, settings), settings.engine, settings.placement)
        for model in settings.models
    ]
