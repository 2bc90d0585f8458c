"""Engines run models. The gateway sees only the `Engine` protocol from `engines.base`."""

from demigod.engines.base import (
    ContextOverflowError,
    Engine,
    EngineError,
    EngineInfo,
    GenerationEvent,
    GenerationRequest,
    GenerationStream,
    QueueFullError,
    SamplingParams,
)

__all__ = [
    "ContextOverflowError",
    "Engine",
    "EngineError",
    "EngineInfo",
    "GenerationEvent",
    "GenerationRequest",
    "GenerationStream",
    "QueueFullError",
    "SamplingParams",
]
