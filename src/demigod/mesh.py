"""The models one process serves: engines loaded from config, with what routing needs."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from demigod.config import EngineConfig, ModelConfig
from demigod.engines.base import Engine, StateCacheStats, StateCachingEngine
from demigod.gateway.chat_template import ChatTemplate

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


class Mesh:
    """Loads every configured model; `close()` frees them all."""

    def __init__(self, models: dict[str, ServedModel]) -> None:
        self.models = models

    @classmethod
    async def load(
        cls, configs: list[ModelConfig], engine_config: EngineConfig, *, verbose: bool = False
    ) -> Mesh:
        """Load each model off the event loop. Raises ValueError on duplicate names."""
        from demigod.engines.llama_cpp import LlamaCppEngine  # the only engine so far

        names = [config.name for config in configs]
        if duplicates := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        models: dict[str, ServedModel] = {}
        try:
            for config in configs:
                started = time.perf_counter()
                engine = await asyncio.to_thread(
                    LlamaCppEngine, config.name, config.path, engine_config, verbose=verbose
                )
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
        return cls(models)

    def queue_depths(self) -> dict[str, int]:
        return {name: model.engine.queue_depth() for name, model in self.models.items()}

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
