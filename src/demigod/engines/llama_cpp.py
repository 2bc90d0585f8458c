"""The llama.cpp engine: GGUF models run in-process through llama.cpp's C API.

One model instance and one context per model; decode runs on the scheduler's thread,
never on the event loop (ctypes releases the GIL during llama.cpp calls).
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import threading
from pathlib import Path

import llama_cpp

from demigod.config import EngineConfig
from demigod.engines.base import (
    ContextOverflowError,
    EngineError,
    EngineInfo,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
)
from demigod.engines.stops import StopMatcher
from demigod.worker.scheduler import JobContext, SerialScheduler, TokenStream

log = logging.getLogger(__name__)

_backend_lock = threading.Lock()
_backend_ready = False


def _init_backend(verbose: bool) -> None:
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


class LlamaCppEngine:
    """A GGUF model served by llama.cpp. See `demigod.engines.base.Engine`."""

    def __init__(self, name: str, path: Path, config: EngineConfig, *, verbose: bool = False):
        if not path.is_file():
            raise FileNotFoundError(f"model {name!r}: GGUF file not found: {path}")
        _init_backend(verbose)
        self.name = name
        self.path = path
        self._config = config
        n_threads = config.n_threads or default_threads()

        model_params = llama_cpp.llama_model_default_params()
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
        if not self._model:
            raise EngineError(f"model {name!r}: llama.cpp could not load {path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)

        context_params = llama_cpp.llama_context_default_params()
        context_params.n_ctx = config.n_ctx
        context_params.n_batch = config.n_batch
        context_params.n_ubatch = config.n_batch
        context_params.n_seq_max = 1
        context_params.n_threads = n_threads
        context_params.n_threads_batch = n_threads
        self._ctx = llama_cpp.llama_init_from_model(self._model, context_params)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise EngineError(f"model {name!r}: llama.cpp could not create a context")

        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._eog_tokens = [
            t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)
        ]
        self.info = self._read_info()
        self._scheduler = SerialScheduler(name, config.queue_size, config.retry_after_seconds)
        self._closed = False

    # -- Engine protocol ------------------------------------------------------------

    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self._vocab, data, len(data), buffer, capacity, add_special, parse_special
        )
        if count < 0:  # buffer too small: llama.cpp returns minus the size it needs
            capacity = -count
            buffer = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self._vocab, data, len(data), buffer, capacity, add_special, parse_special
            )
        return list(buffer[:count])

    def generate(self, request: GenerationRequest) -> TokenStream:
        prompt = request.prompt_tokens
        max_tokens = request.sampling.max_tokens
        if not prompt:
            raise ValueError("the prompt must hold at least one token")
        if len(prompt) + max_tokens > self.info.n_ctx:
            raise ContextOverflowError(len(prompt), max_tokens, self.info.n_ctx)
        return self._scheduler.submit(lambda job: self._decode(request, job))

    def health(self) -> bool:
        return not self._closed and self._scheduler.alive()

    def queue_depth(self) -> int:
        return self._scheduler.depth()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._scheduler.close()
        llama_cpp.llama_free(self._ctx)
        llama_cpp.llama_model_free(self._model)

    # -- decoding (scheduler thread) --------------------------------------------------

    def _decode(self, request: GenerationRequest, job: JobContext) -> None:
        params = request.sampling
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
        sampler = self._sampler(params)
        try:
            self._prefill(request.prompt_tokens, job)
            text = codecs.getincrementaldecoder("utf-8")(errors="replace")
            stops = StopMatcher(params.stop)
            generated = 0
            piece = ctypes.create_string_buffer(256)
            token_array = (llama_cpp.llama_token * 1)()
            while not job.cancelled.is_set():
                token = llama_cpp.llama_sampler_sample(sampler, self._ctx, -1)
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    job.emit(GenerationEvent(stops.flush(), generated, "stop"))
                    return
                generated += 1
                n = llama_cpp.llama_token_to_piece(self._vocab, token, piece, len(piece), 0, False)
                visible, stopped = stops.feed(text.decode(piece.raw[: max(n, 0)]))
                if stopped:
                    job.emit(GenerationEvent(visible, generated, "stop"))
                    return
                if generated >= params.max_tokens:
                    tail = visible + stops.feed(text.decode(b"", final=True))[0] + stops.flush()
                    job.emit(GenerationEvent(tail, generated, "length"))
                    return
                if visible:
                    job.emit(GenerationEvent(visible, generated))
                token_array[0] = token
                self._check(
                    llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(token_array, 1))
                )
        finally:
            llama_cpp.llama_sampler_free(sampler)

    def _prefill(self, tokens: list[int], job: JobContext) -> None:
        """Evaluate the prompt in chunks of n_batch, checking for cancellation between them."""
        step = self._config.n_batch
        for start in range(0, len(tokens), step):
            if job.cancelled.is_set():
                return
            chunk = tokens[start : start + step]
            array = (llama_cpp.llama_token * len(chunk))(*chunk)
            self._check(
                llama_cpp.llama_decode(self._ctx, llama_cpp.llama_batch_get_one(array, len(chunk)))
            )

    def _sampler(self, params: SamplingParams) -> llama_cpp.llama_sampler_p:
        """llama.cpp's own sampler chain: [no-EOS bias] → top-p → temperature → draw."""
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if params.ignore_eos and self._eog_tokens:
            biases = (llama_cpp.llama_logit_bias * len(self._eog_tokens))()
            for slot, token in zip(biases, self._eog_tokens, strict=True):
                slot.token, slot.bias = token, float("-inf")
            llama_cpp.llama_sampler_chain_add(
                chain, llama_cpp.llama_sampler_init_logit_bias(self._n_vocab, len(biases), biases)
            )
        if params.temperature == 0.0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        if params.top_p < 1.0:
            llama_cpp.llama_sampler_chain_add(
                chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1)
            )
        llama_cpp.llama_sampler_chain_add(
            chain, llama_cpp.llama_sampler_init_temp(params.temperature)
        )
        seed = params.seed if params.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
        return chain

    def _check(self, status: int) -> None:
        if status != 0:
            raise EngineError(f"model {self.name!r}: llama_decode failed with status {status}")

    # -- metadata --------------------------------------------------------------------

    def _read_info(self) -> EngineInfo:
        metadata = self._metadata()
        template = llama_cpp.llama_model_chat_template(self._model, None)
        return EngineInfo(
            architecture=metadata.get("general.architecture", "unknown"),
            n_ctx=llama_cpp.llama_n_ctx(self._ctx),
            n_params=llama_cpp.llama_model_n_params(self._model),
            file_size=self.path.stat().st_size,
            chat_template=template.decode("utf-8") if template else None,
            bos_token=self._token_text(llama_cpp.llama_vocab_bos(self._vocab)),
            eos_token=self._token_text(llama_cpp.llama_vocab_eos(self._vocab)),
            metadata=metadata,
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
