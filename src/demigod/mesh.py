"""The models one process serves: engines loaded from config, with what routing needs."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from demigod.config import EngineConfig, ModelConfig
from demigod.engines.base import (
    BatchingEngine,
    Engine,
    SchedulerStats,
    StateCacheStats,
    StateCachingEngine,
)
from demigod.engines.chat_template import ChatTemplate

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    name: str
    engine: Engine
    categories: list[str]
    version: str
    chat_template: ChatTemplate
    created: int = field(default_factory=lambda: int(time.time()))
    load_seconds: float = 0.0
    path: Path | None = None  # the GGUF file or HF folder it was loaded from


class Mesh:
    """Loads every configured model; `close()` frees them all."""

    def __init__(self, models: dict[str, ServedModel]) -> None:
        self.models = models
        # What `restart` reloads a model from; set by `load`.
        self._configs: dict[str, ModelConfig] = {}
        self._engine_config = EngineConfig()
        self._verbose = False

    @classmethod
    async def load(
        cls, configs: list[ModelConfig], engine_config: EngineConfig, *, verbose: bool = False
    ) -> Mesh:
        """Load each model off the event loop. Raises ValueError on duplicate names."""
        names = [config.name for config in configs]
        if duplicates := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        models: dict[str, ServedModel] = {}
        try:
            for config in configs:
                started = time.perf_counter()
                engine = await _load_engine(config, engine_config, verbose)
                seconds = time.perf_counter() - started
                models[config.name] = ServedModel(
                    name=config.name,
                    engine=engine,
                    categories=config.categories,
                    version=config.version,
                    chat_template=ChatTemplate(
                        engine.info.chat_template,
                        bos_token=engine.info.bos_token,
                        eos_token=engine.info.eos_token,
                    ),
                    load_seconds=seconds,
                    path=config.path,
                )
                log.info(
                    "model loaded",
                    extra={
                        "model": config.name,
                        "path": str(config.path),
                        "architecture": engine.info.architecture,
                        "seconds": round(seconds, 3),
                    },
                )
        except BaseException:
            await cls(models).close()
            raise
        mesh = cls(models)
        mesh._configs = {config.name: config for config in configs}
        mesh._engine_config, mesh._verbose = engine_config, verbose
        return mesh

    async def restart(self, name: str, close_timeout: float = 30.0) -> None:
        """Close model `name`'s engine (waiting at most `close_timeout` s: a wedged engine
        is abandoned, not waited for) and load a fresh one from its config. Raises KeyError
        for an unknown model, and what loading raises."""
        served, config = self.models[name], self._configs[name]
        try:
            await asyncio.wait_for(served.engine.close(), close_timeout)
        except TimeoutError:
            log.error("engine did not close; abandoning it", extra={"model": name})
        started = time.perf_counter()
        served.engine = await _load_engine(config, self._engine_config, self._verbose)
        served.load_seconds = time.perf_counter() - started
        log.warning("model restarted", extra={"model": name, "seconds": served.load_seconds})

    def queue_depths(self) -> dict[str, int]:
        return {name: model.engine.queue_depth() for name, model in self.models.items()}

    def scheduler_stats(self) -> dict[str, SchedulerStats]:
        """Per model, the queue and batch counters of engines that schedule decode slots."""
        return {
            name: model.engine.scheduler_stats()
            for name, model in self.models.items()
            if isinstance(model.engine, BatchingEngine)
        }

    def state_cache_stats(self) -> dict[str, StateCacheStats]:
        """Per model, the counters of engines that keep a recurrent-state cache."""
        stats = {}
        for name, model in self.models.items():
            engine = model.engine
            if isinstance(engine, StateCachingEngine) and (found := engine.state_cache_stats()):
                stats[name] = found
        return stats

    def ready(self) -> bool:
        return bool(self.models) and all(model.engine.health() for model in self.models.values())

    async def close(self) -> None:
        for model in self.models.values():
            await model.engine.close()


async def _load_engine(config: ModelConfig, engine_config: EngineConfig, verbose: bool) -> Engine:
    """The engine `config.backend` names, loaded off the event loop."""
    if config.backend == "transformers":
        from demigod.engines.transformers_engine import TransformersEngine

        return await asyncio.to_thread(TransformersEngine, config.name, config.path, engine_config)
    from demigod.engines.llama_cpp import LlamaCppEngine

    return await asyncio.to_thread(
        LlamaCppEngine, config.name, config.path, engine_config, verbose=verbose
    )
