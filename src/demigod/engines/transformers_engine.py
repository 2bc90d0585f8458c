"""The transformers engine: Hugging Face checkpoints run by PyTorch, for families llama.cpp
cannot run (Zamba2; see demigod.lifecycle.architectures).

One sequence at a time (the scheduler's single slot): the model's own cache object
(DynamicCache, or Zamba2's hybrid cache) carries attention KV and SSM states from token to
token. Decoding runs on the scheduler's thread, never on the event loop. It is much slower
than llama.cpp on the same CPU (docs/architectures.md has the measured tok/s): no
quantization, no batching, Python per token. CUDA is used when torch sees a GPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from demigod.config import EngineConfig
from demigod.engines.base import (
    EngineError,
    EngineInfo,
    GenerationEvent,
    GenerationRequest,
)
from demigod.engines.scheduled import ScheduledEngine
from demigod.engines.scheduler import BatchScheduler, JobContext
from demigod.engines.stops import StopMatcher

log = logging.getLogger(__name__)

# Weight files whose sizes make up EngineInfo.file_size.
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
# Text ending in this may be half a multi-byte character: hold it back one more token.
_REPLACEMENT = "\ufffd"


def pick_device() -> torch.device:
    """CUDA when torch sees a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TransformersEngine(ScheduledEngine):
    """A Hugging Face checkpoint folder served by transformers. See `engines.base.Engine`.

    `config.n_ctx` caps the context; `n_threads` sets torch's CPU threads; `queue_size`
    and `retry_after_seconds` bound the wait queue. `slots` and the state cache do not
    apply (one sequence at a time, no saved states).
    """

    def __init__(self, name: str, path: Path, config: EngineConfig) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"model {name!r}: {path} is not a Hugging Face checkpoint folder (no config.json)"
            )
        self.name = name
        self.path = path
        if config.n_threads is not None:
            torch.set_num_threads(config.n_threads)
        self.device = pick_device()
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)  # type: ignore[no-untyped-call]
            model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        except (OSError, ValueError) as error:
            raise EngineError(
                f"model {name!r}: transformers could not load {path}: {error}"
            ) from error
        self._model = model.to(self.device).eval()
        self.info = self._read_info(config)
        self._decoder = _TransformersDecoder(
            name, self._model, self._tokenizer, self._eos_ids(), self.device
        )
        self._scheduler: BatchScheduler[GenerationRequest] = BatchScheduler(
            name,
            self._decoder,
            slots=1,
            capacity=config.queue_size,
            retry_after=config.retry_after_seconds,
        )
        self._closed = False

    # -- Engine protocol ------------------------------------------------------------

    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = False
    ) -> list[int]:
        # HF tokenizers always read their special tokens' text as those tokens.
        ids = self._tokenizer(text, add_special_tokens=add_special)["input_ids"]
        return [int(token) for token in ids]

    def detokenize(self, tokens: list[int]) -> str:
        return str(self._tokenizer.decode(tokens))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._scheduler.close()
        del self._model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- metadata --------------------------------------------------------------------

    def _read_info(self, config: EngineConfig) -> EngineInfo:
        model_config = self._model.config
        limit = getattr(model_config, "max_position_embeddings", None) or config.n_ctx
        tokenizer = self._tokenizer
        return EngineInfo(
            architecture=str(model_config.model_type),
            n_ctx=min(config.n_ctx, int(limit)),
            n_params=sum(p.numel() for p in self._model.parameters()),
            file_size=sum(
                f.stat().st_size for f in self.path.iterdir() if f.suffix in _WEIGHT_SUFFIXES
            ),
            chat_template=getattr(tokenizer, "chat_template", None),
            n_vocab=len(tokenizer),
            bos_token=str(tokenizer.bos_token or ""),
            eos_token=str(tokenizer.eos_token or ""),
            metadata={
                "general.architecture": str(model_config.model_type),
                "demigod.backend": "transformers",
                "demigod.device": str(self.device),
            },
        )

    def _eos_ids(self) -> list[int]:
        found: set[int] = set()
        for source in (self._model.generation_config, self._model.config, self._tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                found.add(value)
            elif isinstance(value, list):
                found.update(v for v in value if isinstance(v, int))
        return sorted(found)


@dataclass
class _Sequence:
    request: GenerationRequest
    context: JobContext
    tokens: list[int]  # prompt + sampled so far
    stops: StopMatcher
    generator: torch.Generator
    position: int = 0  # tokens of `tokens` the cache holds
    cache: Any = None
    generated: list[int] | None = None
    shown: str = ""  # decoded text already handed to the stop matcher


class _TransformersDecoder:
    """`BatchExecutor` for one slot: each `step` feeds the tokens the cache has not seen
    through the model and samples one token."""

    def __init__(
        self,
        name: str,
        model: Any,
        tokenizer: Any,
        eos_ids: list[int],
        device: torch.device,
    ) -> None:
        self._name = name
        self._model = model
        self._tokenizer = tokenizer
        self._eos = torch.tensor(eos_ids, dtype=torch.long)
        self._device = device
        self._sequence: _Sequence | None = None

    def start(self, slot: int, work: GenerationRequest, context: JobContext) -> None:
        seed = work.sampling.seed
        generator = torch.Generator()
        if seed is not None:
            generator.manual_seed(seed)
        else:
            generator.seed()
        self._sequence = _Sequence(
            request=work,
            context=context,
            tokens=list(work.prompt_tokens),
            stops=StopMatcher(work.sampling.stop),
            generator=generator,
            generated=[],
        )

    def step(self) -> list[int]:
        sequence = self._sequence
        if sequence is None:
            return []
        # The model's own prepare_inputs_for_generation, as generate() calls it: it builds
        # the cache hybrids need (Falcon-H1, Zamba2) and keeps only the unread tokens.
        ids = torch.tensor([sequence.tokens], dtype=torch.long, device=self._device)
        unread = torch.arange(sequence.position, len(sequence.tokens), device=self._device)
        try:
            with torch.no_grad():
                inputs = self._model.prepare_inputs_for_generation(
                    ids,
                    past_key_values=sequence.cache,
                    attention_mask=torch.ones_like(ids),
                    cache_position=unread,
                    use_cache=True,
                )
                output = self._model(**inputs, return_dict=True)
        except RuntimeError as error:
            raise EngineError(f"model {self._name!r}: forward pass failed: {error}") from error
        if output.past_key_values is None:
            raise EngineError(f"model {self._name!r}: the model returned no cache")
        sequence.cache = output.past_key_values
        sequence.position = len(sequence.tokens)
        logits = output.logits[0, -1].float().cpu()
        return [0] if self._sample(sequence, logits) else []

    def release(self, slot: int) -> None:
        self._sequence = None  # drops the cache with it

    def busy(self) -> set[int]:
        return set()

    def claim(self, work: GenerationRequest, busy: set[int]) -> int | None:
        return None

    def abandon(self) -> None:
        self._sequence = None

    def _sample(self, sequence: _Sequence, logits: torch.Tensor) -> bool:
        """Draw the next token, emit its text; True when the generation is finished."""
        params = sequence.request.sampling
        if params.ignore_eos and len(self._eos):
            logits[self._eos] = float("-inf")
        if params.temperature == 0.0:
            token = int(torch.argmax(logits))
        else:
            probs = torch.softmax(logits / params.temperature, dim=-1)
            if params.top_p < 1.0:
                ordered, order = torch.sort(probs, descending=True)
                # Keep the smallest head whose mass reaches top_p (at least one token).
                outside = torch.cumsum(ordered, dim=-1) - ordered >= params.top_p
                ordered[outside] = 0.0
                probs = torch.zeros_like(probs).scatter(0, order, ordered)
            token = int(torch.multinomial(probs, 1, generator=sequence.generator))
        if token in self._eos.tolist():
            self._emit(sequence, sequence.stops.flush(), "stop")
            return True
        assert sequence.generated is not None
        sequence.generated.append(token)
        text = self._tokenizer.decode(sequence.generated, skip_special_tokens=True)
        final = len(sequence.generated) >= params.max_tokens
        ready = text if final or not text.endswith(_REPLACEMENT) else text.rstrip(_REPLACEMENT)
        visible, stopped = sequence.stops.feed(ready[len(sequence.shown) :])
        sequence.shown = ready if len(ready) > len(sequence.shown) else sequence.shown
        if stopped:
            self._emit(sequence, visible, "stop")
            return True
        if final:
            self._emit(sequence, visible + sequence.stops.flush(), "length")
            return True
        if visible:
            self._emit(sequence, visible, None)
        sequence.tokens.append(token)
        return False

    def _emit(self, sequence: _Sequence, text: str, finish: Any) -> None:
        assert sequence.generated is not None
        sequence.context.emit(GenerationEvent(text, len(sequence.generated), finish))
