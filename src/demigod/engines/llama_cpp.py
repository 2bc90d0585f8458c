"""The llama.cpp engine: GGUF models run in-process through llama.cpp's C API.

One model instance and one context per model, with `slots` sequences decoded together
(demigod.engines.llama_batch) on the scheduler's thread, never on the event loop (ctypes
releases the GIL during llama.cpp calls).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path

import llama_cpp

from demigod.config import EngineConfig, StateCacheConfig
from demigod.engines.base import (
    EngineError,
    EngineInfo,
    Feature,
    GenerationRequest,
    OutputGrammar,
    StateCacheStats,
)
from demigod.engines.llama_batch import BatchDecoder, detokenize, tokenize
from demigod.engines.scheduled import ScheduledEngine
from demigod.engines.scheduler import BatchScheduler
from demigod.engines.state_cache import (
    DirectoryStore,
    MemoryStore,
    StateCache,
    StateStore,
    file_sha256,
)

log = logging.getLogger(__name__)

# Everything the batch decoder offers beyond plain sampling (engines.base.Feature).
FEATURES: frozenset[Feature] = frozenset({"grammar", "logprobs", "prompt_logprobs"})

# Grammars already compiled once (clients repeat their schemas); the set is bounded.
CHECKED_GRAMMARS_KEPT = 256

_backend_lock = threading.Lock()
_backend_ready = False


def init_backend(verbose: bool) -> None:
    """llama.cpp's global init, once per process; its own logging follows ours."""
    global _backend_ready
    with _backend_lock:
        # llama-cpp-python forwards llama.cpp's log lines to this logger's level.
        logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if verbose else logging.ERROR)
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True


def default_threads() -> int:
    """Half the cores: llama.cpp's threads spin at barriers, and a decode thread that shares
    its core with the event loop or another model runs hundreds of times slower."""
    return max(1, (os.cpu_count() or 2) // 2)


def weight_repacking(setting: str, system_info: str) -> bool:
    """Whether llama.cpp may place weights in its extra CPU buffer types (repacked layouts).

    `auto` leaves them on except in a build with Intel AMX (`AMX_INT8 = 1`, what a native
    build on Sapphire Rapids and later gets): its matmul segfaults on some of those CPUs
    (ggml-org/llama.cpp#20824, an invalid tile config; fix proposed in #26954), and AMX is
    only reached through those buffers. Measured on this project's CI machine: the first
    prompt of any Q4_0 model crashed the process. Off costs the repacked matmul's speed.
    """
    if setting != "auto":
        return setting == "on"
    if "AMX_INT8 = 1" in system_info:
        log.warning(
            "llama.cpp was built with Intel AMX, whose matmul crashes on some CPUs: weight "
            "repacking is off (engine.cpu_weight_repacking=on forces it; docs/troubleshooting.md)"
        )
        return False
    return True


class LlamaCppEngine(ScheduledEngine):
    """A GGUF model served by llama.cpp. See `demigod.engines.base.Engine`."""

    def __init__(self, name: str, path: Path, config: EngineConfig, *, verbose: bool = False):
        if not path.is_file():
            raise FileNotFoundError(f"model {name!r}: GGUF file not found: {path}")
        init_backend(verbose)
        self.name = name
        self.path = path
        self._config = config
        n_threads = config.n_threads or default_threads()

        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = config.n_gpu_layers
        model_params.use_extra_bufts = weight_repacking(
            config.cpu_weight_repacking, llama_cpp.llama_print_system_info().decode()
        )
        if config.n_gpu_layers > 0 and not llama_cpp.llama_supports_gpu_offload():
            log.warning(
                "engine.n_gpu_layers=%d but this llama-cpp-python has no GPU support: "
                "model %r runs on the CPU (docs/troubleshooting.md)",
                config.n_gpu_layers,
                name,
            )
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
        if not self._model:
            raise EngineError(f"model {name!r}: llama.cpp could not load {path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)

        context_params = llama_cpp.llama_context_default_params()
        # n_ctx is per sequence; llama.cpp splits its total between the sequences.
        context_params.n_ctx = config.n_ctx * config.slots
        # A step holds up to n_batch prompt tokens plus one token per generating slot.
        context_params.n_batch = config.n_batch + config.slots
        context_params.n_ubatch = config.n_batch + config.slots
        # Recurrent models keep one state per sequence id: one per slot.
        context_params.n_seq_max = config.slots
        context_params.kv_unified = False
        context_params.n_threads = n_threads
        context_params.n_threads_batch = n_threads
        self._ctx = llama_cpp.llama_init_from_model(self._model, context_params)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise EngineError(f"model {name!r}: llama.cpp could not create a context")

        self.info = self._read_info()
        self.state_cache = _open_state_cache(path, config.state_cache)
        self._decoder = BatchDecoder(
            name,
            self._model,
            self._ctx,
            slots=config.slots,
            chunk=config.n_batch,
            n_ctx=self.info.n_ctx,
            state_cache=self.state_cache,
            settle_max_tokens=config.state_cache.settle_max_tokens,
        )
        self._scheduler: BatchScheduler[GenerationRequest] = BatchScheduler(
            name,
            self._decoder,
            slots=config.slots,
            capacity=config.queue_size,
            retry_after=config.retry_after_seconds,
        )
        self._closed = False
        self._checked_grammars: set[OutputGrammar] = set()

    # -- Engine protocol ------------------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        """Compile the request's grammar once here, so a schema llama.cpp refuses is the
        client's error now, not a failed sequence on the decode thread."""
        grammar = request.sampling.grammar
        if grammar is None or grammar in self._checked_grammars:
            return
        llama_cpp.llama_sampler_free(self._decoder.grammar_sampler(grammar))
        if len(self._checked_grammars) >= CHECKED_GRAMMARS_KEPT:
            self._checked_grammars.clear()
        self._checked_grammars.add(grammar)

    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        return tokenize(self._vocab, text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, tokens: list[int]) -> str:
        return detokenize(self._vocab, tokens)

    def state_cache_stats(self) -> StateCacheStats | None:
        """Hits, misses and bytes of the recurrent-state cache; None when it is off."""
        return self.state_cache.stats() if self.state_cache is not None else None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._scheduler.close()
        self._decoder.close()
        if self.state_cache is not None:
            self.state_cache.close()
        llama_cpp.llama_free(self._ctx)
        llama_cpp.llama_model_free(self._model)

    # -- metadata --------------------------------------------------------------------

    def _read_info(self) -> EngineInfo:
        metadata = self._metadata()
        template = llama_cpp.llama_model_chat_template(self._model, None)
        return EngineInfo(
            architecture=metadata.get("general.architecture", "unknown"),
            n_ctx=llama_cpp.llama_n_ctx_seq(self._ctx),
            n_params=llama_cpp.llama_model_n_params(self._model),
            file_size=self.path.stat().st_size,
            chat_template=template.decode("utf-8") if template else None,
            bos_token=self._token_text(llama_cpp.llama_vocab_bos(self._vocab)),
            eos_token=self._token_text(llama_cpp.llama_vocab_eos(self._vocab)),
            metadata=metadata,
            features=FEATURES,
            n_vocab=llama_cpp.llama_vocab_n_tokens(self._vocab),
        )

    def _metadata(self) -> dict[str, str]:
        values: dict[str, str] = {}
        buffer = ctypes.create_string_buffer(1024)
        for index in range(llama_cpp.llama_model_meta_count(self._model)):
            if llama_cpp.llama_model_meta_key_by_index(self._model, index, buffer, len(buffer)) < 0:
                continue
            key = buffer.value.decode("utf-8", "replace")
            if (
                llama_cpp.llama_model_meta_val_str_by_index(self._model, index, buffer, len(buffer))
                < 0
            ):
                continue
            values[key] = buffer.value.decode("utf-8", "replace")
        return values

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        buffer = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, True)
        return buffer.raw[: max(n, 0)].decode("utf-8", "replace")


def _open_state_cache(path: Path, config: StateCacheConfig) -> StateCache | None:
    """The model's state cache over the configured tiers, or None when it is off."""
    if not config.enabled:
        return None
    stores: list[StateStore] = [MemoryStore(config.ram_bytes)]
    if config.disk_dir is not None:
        stores.append(DirectoryStore(config.disk_dir, "disk", config.disk_bytes))
    if config.shared_dir is not None:
        stores.append(DirectoryStore(config.shared_dir, "shared"))
    # The llama-cpp-python release pins the vendored llama.cpp, whose state format it is.
    runtime = f"llama-cpp-python {llama_cpp.__version__}"
    return StateCache(file_sha256(path), runtime, stores)
