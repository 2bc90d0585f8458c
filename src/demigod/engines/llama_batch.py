"""Continuous batching over llama.cpp: every active sequence advances in one `llama_decode`.

Each slot is a llama.cpp sequence id. A step's batch holds one token (the last one
sampled) for every generating sequence, then up to `chunk` prompt tokens of sequences still
prefilling, so a long prompt is read over several steps while running streams keep
producing. Each sequence samples with its own llama.cpp sampler chain from its own logits
row; greedy requests take the row's argmax in place, which is what llama.cpp's greedy
sampler returns, without its copy of the whole vocabulary per token. A request with an
output grammar (structured output, tool calls) samples through llama.cpp's grammar sampler,
greedy or not (demigod.engines.constrained), so every token keeps the output inside the
grammar. A lazy grammar (a tool call the model may or may not make) starts once the output
shows its opening markup (`_watch_for_markup`). Log-
probabilities are read from the same logits row, only for requests that ask for them; a
request that scores its prompt (echo + logprobs) has the logits of every prompt token
computed, and so reads its whole prompt, without the state cache.

With a state cache, a sequence starts from the saved state of its longest cached prefix
and saves two checkpoints. After its prompt: the next turn's prompt starts with it. After
its reply, "settled": the client gets back text, not tokens, and sends that text in the
next turn's prompt, where it is tokenised afresh, which can split differently from the
tokens that were sampled ("Hel" + "lo" comes back as "Hello"), and the last sampled token
was never evaluated. So once the answer to a request that expects a next turn
(`GenerationRequest.next_turn_expected`: the gateway sets it for conversations) is complete,
the slot evaluates prompt + tokenize(returned text), from its own state when that is a
prefix, else from the prompt's checkpoint, and saves the state under exactly those tokens
(less the reply's last token, which may merge with the text that follows it). The client
does not wait for this; the slot stays busy for a step or two. A reply whose re-reading
would take more than `settle_max_tokens` is not settled: its next turn starts from the
prompt's checkpoint, as does the next turn of a request that expected none.
"""

from __future__ import annotations

import codecs
import ctypes
from dataclasses import dataclass, field, replace
from typing import Literal

import llama_cpp
import numpy as np

from demigod.engines.base import (
    EngineError,
    GenerationEvent,
    GenerationRequest,
    InvalidGrammarError,
    OutputGrammar,
    SamplingParams,
    TokenLogprob,
)
from demigod.engines.constrained import ConstrainedSampler
from demigod.engines.grammar import to_gbnf
from demigod.engines.scheduler import JobContext
from demigod.engines.state_cache import CachedState, StateCache
from demigod.engines.stops import StopMatcher

# Longest token piece llama.cpp writes for one token (bytes); longer pieces are re-asked.
PIECE_BYTES = 256


@dataclass
class _Sequence:
    slot: int
    request: GenerationRequest
    context: JobContext
    sampler: llama_cpp.llama_sampler_p | None  # None: greedy, an argmax (`_argmax`)
    grammar: llama_cpp.llama_sampler_p | None  # the output grammar's sampler, if any
    pending: list[int]  # tokens to evaluate next: the prompt's rest, or the last sample
    evaluated: list[int]  # tokens whose effect the slot's memory holds, in order
    prefilling: bool = True
    awaiting: OutputGrammar | None = None  # a lazy grammar not started yet
    unwatched: str = ""  # output text where the lazy grammar's markup may still begin
    settling: bool = False  # answered; evaluating the returned text for the next turn
    generated: int = 0
    saved: int = 0  # length of `evaluated` when its state was last saved
    shown: list[str] = field(default_factory=list)  # the text the client received
    scored: list[TokenLogprob] = field(default_factory=list)  # logprobs not yet emitted
    # The prompt's token logprobs, when asked for: filled while prefilling, sent once.
    prompt_scores: list[TokenLogprob] | None = None
    prompt_sent: bool = False
    stops: StopMatcher = field(default_factory=lambda: StopMatcher(()))
    text: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


class BatchDecoder:
    """The llama.cpp side of `demigod.engines.scheduler.BatchScheduler` for one context.

    `ctx` must have been created with n_seq_max >= `slots`, n_batch >= `chunk + slots` and
    `n_ctx` positions per sequence.
    """

    def __init__(
        self,
        name: str,
        model: llama_cpp.llama_model_p,
        ctx: llama_cpp.llama_context_p,
        *,
        slots: int,
        chunk: int,
        n_ctx: int,
        state_cache: StateCache | None,
        settle_max_tokens: int = 0,
    ) -> None:
        self._name = name
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._eog_tokens = [
            t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)
        ]
        self._eog_set = frozenset(self._eog_tokens)
        self._logits_row = ctypes.c_float * self._n_vocab
        self._chunk = chunk
        self._n_ctx = n_ctx
        self._settle_max_tokens = settle_max_tokens
        self._capacity = chunk + slots
        self._batch = llama_cpp.llama_batch_init(self._capacity, 0, 1)
        self._sequences: dict[int, _Sequence] = {}
        self._cache = state_cache
        self._piece = ctypes.create_string_buffer(PIECE_BYTES)
        self._constrained = ConstrainedSampler(self._n_vocab)

    def start(self, slot: int, work: GenerationRequest, context: JobContext) -> None:
        """Put `work` in `slot`: continuing the settling sequence there when `claim` chose
        it, else from the longest cached prefix of its prompt."""
        prompt = list(work.prompt_tokens)
        scoring = work.prompt_logprobs is not None
        grammar = work.sampling.grammar
        previous = self._sequences.pop(slot, None)
        if previous is not None and previous.settling:  # claimed: its memory is our prefix
            _free_sampler(previous)
            restored = len(previous.evaluated)
        else:
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
            # A scored prompt needs every token's logits: a restored prefix has none.
            restored = 0 if scoring else self._restore(slot, prompt)
        self._sequences[slot] = _Sequence(
            slot=slot,
            request=work,
            context=context,
            sampler=self._sampler(work.sampling),
            grammar=None if grammar is None or grammar.lazy else self.grammar_sampler(grammar),
            awaiting=grammar if grammar is not None and grammar.lazy else None,
            pending=prompt[restored:],
            evaluated=prompt[:restored],
            stops=StopMatcher(work.sampling.stop),
            prompt_scores=[TokenLogprob(prompt[0], self._piece_of(prompt[0], True), None)]
            if scoring
            else None,
        )

    def step(self) -> list[int]:
        """One llama_decode for all sequences; sample where a sequence has new logits.

        Raises EngineError when llama.cpp refuses the batch.
        """
        outputs, scored = self._fill_batch()
        if self._batch.n_tokens == 0:
            return []
        status = llama_cpp.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise EngineError(f"model {self._name!r}: llama_decode failed with status {status}")
        for slot, first_index, count in scored:
            self._score_prompt(self._sequences[slot], first_index, count)
        finished = []
        for slot, index in outputs:
            sequence = self._sequences[slot]
            done = self._sample(sequence, index)  # first: the client's token before our copies
            if sequence.prefilling:
                sequence.prefilling = False
                self._save(sequence)  # for a next turn the settled reply cannot serve
            if done:
                finished.append(slot)
                self._plan_settling(slot, sequence)
        for slot, sequence in list(self._sequences.items()):
            if sequence.settling and not sequence.pending:
                self._save(sequence)
                self._free(slot)
        return finished

    def release(self, slot: int) -> None:
        """Free `slot`, unless its sequence is still settling (then it frees itself)."""
        sequence = self._sequences.get(slot)
        if sequence is None or not sequence.settling:
            self._free(slot)

    def busy(self) -> set[int]:
        """Slots released by the scheduler but still settling."""
        return {slot for slot, sequence in self._sequences.items() if sequence.settling}

    def claim(self, work: GenerationRequest, busy: set[int]) -> int | None:
        """The settling slot whose tokens (evaluated and still to evaluate) start `work`'s
        prompt, longest first: the next turn arrived before its reply finished settling,
        so it continues in place instead of re-reading the reply from a checkpoint."""
        prompt = work.prompt_tokens
        if work.prompt_logprobs is not None:  # it must read its whole prompt
            return None
        best, best_length = None, 0
        for slot in busy:
            sequence = self._sequences[slot]
            held = sequence.evaluated + sequence.pending
            if best_length < len(held) < len(prompt) and prompt[: len(held)] == held:
                best, best_length = slot, len(held)
        return best

    def abandon(self) -> None:
        """Free every settling slot: after a failed decode their states are suspect."""
        for slot in self.busy():
            self._free(slot)

    def close(self) -> None:
        """Free the batch and every sampler; the context stays the caller's."""
        for slot in list(self._sequences):
            self._free(slot)
        llama_cpp.llama_batch_free(self._batch)

    def _free(self, slot: int) -> None:
        sequence = self._sequences.pop(slot, None)
        if sequence is not None:
            _free_sampler(sequence)
        llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)

    # -- one step ----------------------------------------------------------------------

    def _fill_batch(self) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
        """Write this step's tokens into the batch. Returns (slot, batch index) of each
        token whose logits are sampled from, and (slot, first batch index, count) of each
        run of prompt tokens whose logits score the prompt."""
        batch = self._batch
        batch.n_tokens = 0
        outputs: list[tuple[int, int]] = []
        scored: list[tuple[int, int, int]] = []
        # Generating sequences first: one token each, so streams advance every step.
        for slot, sequence in self._sequences.items():
            if not sequence.prefilling and not sequence.settling:
                outputs.append((slot, self._add(slot, sequence, 1)))
        budget = self._chunk
        # Prompts before settling: a waiting client's first token matters more.
        for settling in (False, True):
            for slot, sequence in self._sequences.items():
                if sequence.settling != settling or not sequence.pending or budget <= 0:
                    continue
                if not settling and not sequence.prefilling:
                    continue
                take = min(budget, len(sequence.pending))
                budget -= take
                first = int(batch.n_tokens)
                last = self._add(slot, sequence, take)
                if not settling and not sequence.pending:  # its logits start the reply
                    outputs.append((slot, last))
                if not settling and sequence.prompt_scores is not None:
                    scored.append((slot, first, take))
        for _, index in outputs:
            batch.logits[index] = True
        for _, first, count in scored:
            for index in range(first, first + count):
                batch.logits[index] = True
        return outputs, scored

    def _add(self, slot: int, sequence: _Sequence, count: int) -> int:
        """Move `count` pending tokens of `sequence` into the batch; return the last index."""
        batch = self._batch
        position = len(sequence.evaluated)
        for token in sequence.pending[:count]:
            index = batch.n_tokens
            batch.token[index] = token
            batch.pos[index] = position
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = slot
            batch.logits[index] = False
            batch.n_tokens = index + 1
            position += 1
        sequence.evaluated.extend(sequence.pending[:count])
        del sequence.pending[:count]
        return int(batch.n_tokens) - 1

    def _sample(self, sequence: _Sequence, index: int) -> bool:
        """Draw the next token from logits row `index`, emit its text; True when finished."""
        params = sequence.request.sampling
        if sequence.grammar is not None:
            row = self._row(index)
            token = self._constrained.sample(
                self._ctx, index, row, sequence.grammar, sequence.sampler
            )
        elif sequence.sampler is None:
            token = self._argmax(index, params.ignore_eos)
        else:
            token = llama_cpp.llama_sampler_sample(sequence.sampler, self._ctx, index)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._emit(sequence, sequence.stops.flush(), "stop")
            return True
        sequence.generated += 1
        piece = self._piece_of(token, params.special_text)
        if params.logprobs is not None:
            sequence.scored.append(self._logprob(index, token, params.logprobs, piece))
        text = sequence.text.decode(piece)
        if sequence.awaiting is not None:
            self._watch_for_markup(sequence, text)
        visible, stopped = sequence.stops.feed(text)
        if stopped:
            self._emit(sequence, visible, "stop")
            return True
        if sequence.generated >= params.max_tokens:
            rest = sequence.stops.feed(sequence.text.decode(b"", final=True))[0]
            self._emit(sequence, visible + rest + sequence.stops.flush(), "length")
            return True
        if visible:
            self._emit(sequence, visible, None)
        sequence.pending.append(token)
        return False

    def _argmax(self, index: int, ignore_eos: bool) -> int:
        """Greedy over logits row `index`, read in place: `llama_sampler_sample` would first
        copy the whole vocabulary into a candidate list (half the Python side of an
        8-sequence step)."""
        return greedy_token(self._row(index), self._eog_set if ignore_eos else frozenset())

    def _row(self, index: int) -> np.ndarray:
        """Logits row `index` of the last decode, in place (valid until the next decode)."""
        pointer = llama_cpp.llama_get_logits_ith(self._ctx, index)
        address = ctypes.cast(pointer, ctypes.c_void_p).value
        return np.frombuffer(self._logits_row.from_address(address), dtype=np.float32)

    def _logprob(self, index: int, token: int, top: int, piece: bytes) -> TokenLogprob:
        """`token`'s log-probability under logits row `index`, with the `top` likeliest
        tokens' (the model's distribution, before temperature, top-p or a grammar)."""
        logprobs = log_softmax(self._row(index))
        likeliest = top_tokens(logprobs, top)
        return TokenLogprob(
            token,
            piece,
            float(logprobs[token]),
            tuple(
                TokenLogprob(int(t), self._piece_of(int(t), True), float(logprobs[t]))
                for t in likeliest
            ),
        )

    def _score_prompt(self, sequence: _Sequence, first_index: int, count: int) -> None:
        """Score the prompt tokens that rows `first_index`.. predict: row i of a run holds
        the logits after its token, which predict the prompt's next token (the prompt's
        last token predicts the reply, sampled and scored by `_sample`)."""
        scores = sequence.prompt_scores
        assert scores is not None
        prompt = sequence.request.prompt_tokens
        top = sequence.request.prompt_logprobs or 0
        for index in range(first_index, first_index + count):
            predicted = len(scores)
            if predicted >= len(prompt):
                break
            token = prompt[predicted]
            scores.append(self._logprob(index, token, top, self._piece_of(token, True)))

    def _emit(
        self, sequence: _Sequence, text: str, finish: Literal["stop", "length"] | None
    ) -> None:
        sequence.shown.append(text)
        prompt_scores = None
        if sequence.prompt_scores is not None and not sequence.prompt_sent:
            prompt_scores, sequence.prompt_sent = tuple(sequence.prompt_scores), True
        logprobs: tuple[TokenLogprob, ...] = ()
        if sequence.scored:
            logprobs, sequence.scored = tuple(sequence.scored), []
        sequence.context.emit(
            GenerationEvent(text, sequence.generated, finish, logprobs, prompt_scores)
        )

    def _piece_of(self, token: int, special: bool) -> bytes:
        """The token's bytes; a special token's text only when `special` (else none)."""
        n = llama_cpp.llama_token_to_piece(
            self._vocab, token, self._piece, len(self._piece), 0, special
        )
        return self._piece.raw[: max(n, 0)]

    # -- state cache -------------------------------------------------------------------

    def _restore(self, slot: int, prompt: list[int]) -> int:
        """Load the longest cached prefix of `prompt` into `slot`; tokens restored (0: none)."""
        if self._cache is None:
            return 0
        cached = self._cache.lookup(prompt)
        return self._load(slot, cached) if cached is not None else 0

    def _load(self, slot: int, cached: CachedState) -> int:
        """Put a cached state in `slot`; tokens restored (0 when llama.cpp refuses it)."""
        data = (ctypes.c_uint8 * len(cached.payload)).from_buffer_copy(cached.payload)
        if llama_cpp.llama_state_seq_set_data(self._ctx, data, len(data), slot) == 0:
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)  # llama.cpp refused it
            return 0
        return len(cached.tokens)

    def _plan_settling(self, slot: int, sequence: _Sequence) -> None:
        """After the answer: queue prompt + tokenize(returned text) for evaluation in `slot`
        (see the module docstring), or do nothing when there is no cache to save into or
        no next turn is expected: under load, re-reading one-shot replies would cost live
        requests up to `settle_max_tokens` extra prompt tokens each."""
        if self._cache is None or not sequence.request.next_turn_expected:
            return
        reply = tokenize(self._vocab, "".join(sequence.shown), add_special=False)
        # Hold back the reply's last token: it can merge with what the template appends
        # (trailing spaces + "\n" are one token), and costs the next turn one token at most.
        target = list(sequence.request.prompt_tokens) + reply[:-1]
        if len(target) >= self._n_ctx:  # no next turn fits after it
            return
        done = len(sequence.evaluated)
        if target[:done] == sequence.evaluated:
            if len(target) - done > self._settle_max_tokens:
                return
            sequence.pending = target[done:]
        else:  # the reply re-tokenised differently: start again from the prompt's state
            cached = self._cache.lookup(target, peek=True)
            base = len(cached.tokens) if cached is not None else 0
            if len(target) - base > self._settle_max_tokens:
                return  # too long to re-read now; the next turn starts from the prompt's state
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
            restored = self._load(slot, cached) if cached is not None else 0
            sequence.evaluated = target[:restored]
            sequence.pending = target[restored:]
        sequence.settling = True

    def _save(self, sequence: _Sequence) -> None:
        """Save the slot's state under the tokens it has evaluated, once per length."""
        if self._cache is None or len(sequence.evaluated) == sequence.saved:
            return
        slot = sequence.slot
        sequence.saved = len(sequence.evaluated)
        size = llama_cpp.llama_state_seq_get_size(self._ctx, slot)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx, buffer, size, slot)
        if written:
            payload = ctypes.string_at(buffer, written)
            self._cache.save(sequence.evaluated, payload)

    # -- sampling ----------------------------------------------------------------------

    def _watch_for_markup(self, sequence: _Sequence, text: str) -> None:
        """Start the lazy grammar once the output holds its opening markup.

        llama.cpp has lazy grammars of its own, but when the token that completes the
        markup carries text the grammar refuses, its sampler throws a C++ exception, which
        through ctypes aborts the process. So the markup is watched for here, and the
        grammar of what follows it starts only when that token ends at the markup (or in
        whitespace, which the grammar allows); otherwise this call stays unconstrained.
        """
        awaiting = sequence.awaiting
        assert awaiting is not None
        markup = awaiting.prefix
        sequence.unwatched += text
        found = sequence.unwatched.find(markup)
        if found < 0:
            sequence.unwatched = sequence.unwatched[-(len(markup) - 1) :] if len(markup) > 1 else ""
            return
        sequence.awaiting = None
        if not sequence.unwatched[found + len(markup) :].strip():
            sequence.grammar = self.grammar_sampler(awaiting)

    def _sampler(self, params: SamplingParams) -> llama_cpp.llama_sampler_p | None:
        """llama.cpp's own sampler chain: [no-EOS bias] → top-p → temperature → draw; None
        for greedy (temperature 0), which `_argmax` does. A grammar's sampler is kept
        apart (`grammar_sampler`), and with it no EOS ban: the grammar ends the output."""
        if params.temperature == 0.0:
            return None
        chain: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params()
        )
        if params.ignore_eos and self._eog_tokens and params.grammar is None:
            biases = (llama_cpp.llama_logit_bias * len(self._eog_tokens))()
            for entry, token in zip(biases, self._eog_tokens, strict=True):
                entry.token, entry.bias = token, float("-inf")
            llama_cpp.llama_sampler_chain_add(
                chain, llama_cpp.llama_sampler_init_logit_bias(self._n_vocab, len(biases), biases)
            )
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

    def grammar_sampler(self, grammar: OutputGrammar) -> llama_cpp.llama_sampler_p:
        """llama.cpp's grammar sampler for `grammar`, as it applies once started (for a
        lazy grammar: what follows its markup). The caller frees it.

        Raises InvalidGrammarError when the schema cannot be converted or llama.cpp
        refuses the grammar."""
        if grammar.lazy:
            grammar = replace(grammar, prefix="", lazy=False)
        text = to_gbnf(grammar).encode()
        sampler: llama_cpp.llama_sampler_p = llama_cpp.llama_sampler_init_grammar(
            self._vocab, text, b"root"
        )
        if not sampler:
            raise InvalidGrammarError("llama.cpp could not parse the grammar of this schema")
        return sampler


def greedy_token(row: np.ndarray, banned: frozenset[int]) -> int:
    """The first highest logit of `row` that is not `banned`: what llama.cpp's greedy
    sampler picks after a -inf logit bias on the banned tokens."""
    token = int(row.argmax())
    if token in banned:
        row = row.copy()
        row[list(banned)] = -np.inf
        token = int(row.argmax())
    return token


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities from logits, computed stably (shifted by the maximum)."""
    shifted = logits.astype(np.float64) - float(logits.max())
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum())
    return result


def top_tokens(logprobs: np.ndarray, count: int) -> np.ndarray:
    """The `count` likeliest token ids, likeliest first (ties: lower id first)."""
    count = min(count, len(logprobs))
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    candidates = np.argpartition(-logprobs, count - 1)[:count]
    order = np.lexsort((candidates, -logprobs[candidates]))
    result: np.ndarray = candidates[order]
    return result


def _free_sampler(sequence: _Sequence) -> None:
    if sequence.sampler is not None:
        llama_cpp.llama_sampler_free(sequence.sampler)
    if sequence.grammar is not None:
        llama_cpp.llama_sampler_free(sequence.grammar)


def tokenize(
    vocab: llama_cpp.llama_vocab_p, text: str, *, add_special: bool, parse_special: bool = False
) -> list[int]:
    """Token ids of `text` by the model's vocabulary."""
    data = text.encode("utf-8")
    capacity = len(data) + 8
    buffer = (llama_cpp.llama_token * capacity)()
    count = llama_cpp.llama_tokenize(
        vocab, data, len(data), buffer, capacity, add_special, parse_special
    )
    if count < 0:  # buffer too small: llama.cpp returns minus the size it needs
        capacity = -count
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            vocab, data, len(data), buffer, capacity, add_special, parse_special
        )
    return list(buffer[:count])


def detokenize(vocab: llama_cpp.llama_vocab_p, tokens: list[int]) -> str:
    """The text of `tokens` by the model's vocabulary, special tokens' text included."""
    ids = (llama_cpp.llama_token * len(tokens))(*tokens)
    capacity = 4 * len(tokens) + 16
    for _ in range(2):
        buffer = ctypes.create_string_buffer(capacity)
        count = llama_cpp.llama_detokenize(vocab, ids, len(tokens), buffer, capacity, False, True)
        if count >= 0:
            return buffer.raw[:count].decode("utf-8", errors="replace")
        capacity = -count  # too small: llama.cpp returns minus the size it needs
    raise EngineError("llama.cpp could not detokenize")
