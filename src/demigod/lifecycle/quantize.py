"""Quantize a GGUF model with llama.cpp (the engine's own quantizer)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from demigod.lifecycle.errors import LifecycleError

# The quantization types the lifecycle offers, by their llama.cpp names.
QUANT_TYPES: dict[str, int] = {
    "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    "Q5_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M,
    "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
}


class QuantizationError(LifecycleError):
    """llama.cpp could not quantize the model."""


@dataclass(frozen=True)
class QuantizeResult:
    """The quantized file's size, and that size divided by the source's (below 1: smaller)."""

    size_bytes: int
    ratio: float


def quantize_gguf(
    src: Path, dst: Path, qtype: str = "Q4_0", threads: int | None = None
) -> QuantizeResult:
    """Quantize the GGUF `src` (F32/F16/BF16) to `qtype`, written atomically to `dst`.

    `threads` None lets llama.cpp use every core. Raises ValueError for an unknown type or
    a missing source, and QuantizationError when llama.cpp reports failure.
    """
    if qtype not in QUANT_TYPES:
        raise ValueError(f"qtype must be one of {', '.join(QUANT_TYPES)}, not {qtype!r}")
    if not src.is_file():
        raise ValueError(f"no GGUF file at {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.name}.{os.getpid()}.partial.gguf")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[qtype]
    params.nthread = threads if threads is not None else 0  # <= 0: all cores
    try:
        with _quiet_llama():
            status = llama_cpp.llama_model_quantize(
                str(src).encode(), str(partial).encode(), params
            )
        if status != 0 or not partial.is_file():
            raise QuantizationError(f"llama.cpp failed to quantize {src} to {qtype} ({status})")
        partial.replace(dst)
    finally:
        partial.unlink(missing_ok=True)
    size = dst.stat().st_size
    return QuantizeResult(size_bytes=size, ratio=size / src.stat().st_size)


@contextmanager
def _quiet_llama() -> Iterator[None]:
    # llama.cpp logs one line per tensor through llama-cpp-python's logger; keep errors only.
    logger = logging.getLogger("llama-cpp-python")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)
