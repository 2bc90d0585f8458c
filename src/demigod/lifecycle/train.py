"""Train a small Mamba language model on CPU and save it as a Hugging Face folder.

The output vocabulary (GPT-NeoX, 50280 ids) dominates the cost of a small model, so
training uses a compact vocabulary: the tokens that occur in the training stream, plus
one shared row standing for all the others. The loss is the exact full-vocabulary
cross-entropy of a model whose unseen tokens share that one embedding row (their
multiplicity enters as a log-count bias), and the saved checkpoint is expanded back to
the full vocabulary, so llama.cpp computes the same probabilities the training did.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from transformers import MambaConfig, MambaForCausalLM

from demigod.lifecycle.mamba_cpu import mamba_hidden_states
from demigod.lifecycle.recipe import TrainConfig

# The GPT-NeoX vocabulary llama.cpp's converter embeds for Mamba checkpoints without
# tokenizer files (50277 tokens, padded to a multiple of 8 like state-spaces/mamba-*-hf).
NEOX_VOCAB_SIZE = 50280


@dataclass(frozen=True)
class TrainResult:
    """What a training run did. Losses are nats per token; `final_loss` is a running
    average over the last steps (single batches are noisy)."""

    steps: int
    tokens_seen: int
    seconds: float
    first_loss: float
    final_loss: float
    compact_vocab_size: int


def mamba_config(config: TrainConfig, vocab_size: int = NEOX_VOCAB_SIZE) -> MambaConfig:
    """The transformers config for `config`'s shape (intermediate = 2 x hidden, as the
    llama.cpp converter requires)."""
    return MambaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=2 * config.hidden_size,
        num_hidden_layers=config.num_layers,
        state_size=config.state_size,
        tie_word_embeddings=True,
        # mamba_ssm's initialisation. transformers' default (std 0.1, no residual
        # rescaling) let early steps push activations past F16's range (NaN in llama.cpp).
        initializer_range=0.02,
        rescale_prenorm_residual=True,
        # No tokenizer ships with the checkpoint; these are GPT-NeoX's <|endoftext|>.
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )


def new_mamba(config: MambaConfig) -> MambaForCausalLM:
    """A freshly initialised Mamba, without transformers' warning that its CUDA kernels
    are missing (training here never runs transformers' CPU fallback; see mamba_cpu)."""
    logger = logging.getLogger("transformers.models.mamba.modeling_mamba")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return MambaForCausalLM(config)
    finally:
        logger.setLevel(previous)


def train_mamba(
    tokens: NDArray[np.int32],
    hf_dir: Path,
    config: TrainConfig,
    console: Console | None = None,
) -> TrainResult:
    """Train a Mamba on the token stream `tokens` and `save_pretrained` it to `hf_dir`.

    Windows of `seq_len + 1` tokens are drawn at seeded random offsets. Training runs
    `config.max_steps` steps when set (reproducible), else until `time_budget_s` has
    elapsed and `min_steps` are done; the learning rate warms up, then follows a cosine
    to `min_lr_ratio` over the steps or the time. `console` None trains silently. Raises
    ValueError when the stream is shorter than one window or holds ids outside the
    GPT-NeoX vocabulary.
    """
    if len(tokens) < config.seq_len + 2:
        raise ValueError(f"{len(tokens)} tokens cannot fill a window of {config.seq_len + 1}")
    if int(tokens.max()) >= NEOX_VOCAB_SIZE or int(tokens.min()) < 0:
        raise ValueError(f"token ids must lie in [0, {NEOX_VOCAB_SIZE})")
    torch.manual_seed(config.seed)
    used_ids, compact_stream = np.unique(tokens, return_inverse=True)
    model = new_mamba(mamba_config(config, vocab_size=len(used_ids) + 1))
    threads_before = torch.get_num_threads()
    # Decays exp(delta * A) underflow into denormal floats: steps ran up to 10x slower.
    torch.set_flush_denormal(True)
    try:
        result = _train(model, torch.from_numpy(compact_stream.astype(np.int64)), config, console)
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads_before)
    hf_dir.mkdir(parents=True, exist_ok=True)
    expand_vocabulary(model, used_ids, config).save_pretrained(hf_dir, safe_serialization=True)
    return result


def _train(
    model: MambaForCausalLM, stream: torch.Tensor, config: TrainConfig, console: Console | None
) -> TrainResult:
    compact_vocab = model.config.vocab_size
    # The last compact row stands for every unseen token: log(n) makes its logit the log of
    # the total probability mass that n identical rows get in the full softmax.
    logit_bias = torch.zeros(compact_vocab)
    n_unseen = NEOX_VOCAB_SIZE - (compact_vocab - 1)
    logit_bias[-1] = math.log(n_unseen) if n_unseen > 0 else -math.inf
    optimizer = _optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    threads = _ThreadChooser(config.threads)
    started = time.perf_counter()
    step = 0
    first_loss = smoothed_loss = math.nan
    model.train()
    with _progress(console) as progress:
        # The bar shows the schedule's progress: steps, or time and the step floor.
        task = progress.add_task("training", total=1.0, loss=math.nan, step=0)
        while (done := _fraction_done(step, time.perf_counter() - started, config)) < 1.0:
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, done, config)
            step_started = time.perf_counter()
            n_threads = threads.choose()
            batch = _sample_windows(stream, config, generator)
            hidden = mamba_hidden_states(model, batch[:, :-1])
            logits = F.linear(hidden, model.backbone.embeddings.weight) + logit_bias
            loss = F.cross_entropy(logits.reshape(-1, compact_vocab), batch[:, 1:].reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            threads.record(n_threads, time.perf_counter() - step_started)

            step += 1
            value = float(loss.detach())
            if step == 1:
                first_loss = smoothed_loss = value
            # An exponential average: single batches are too noisy to read progress from.
            smoothed_loss = 0.9 * smoothed_loss + 0.1 * value
            elapsed = time.perf_counter() - started
            completed = min(1.0, _fraction_done(step, elapsed, config))
            progress.update(task, completed=completed, loss=smoothed_loss, step=step)
    model.eval()
    return TrainResult(
        steps=step,
        tokens_seen=step * config.batch_size * config.seq_len,
        seconds=time.perf_counter() - started,
        first_loss=first_loss,
        final_loss=smoothed_loss,
        compact_vocab_size=compact_vocab,
    )


class _ThreadChooser:
    """Runs each training step with all cores or one, whichever recent steps found faster.

    On a busy machine every parallel op waits at a barrier for a thread the OS has
    descheduled: measured on 2 cores at load 6, 17 s per step with 2 threads against 3 s
    with 1 (at load 2.5: 1.3 s against 1.8 s). Both are timed at the start and re-timed
    now and then, as the load changes. An explicit count is used as given.
    """

    RECHECK_EVERY = 40  # steps between re-timings of the slower count

    def __init__(self, fixed: int | None) -> None:
        most = fixed or os.cpu_count() or 1
        self.candidates = [most] if fixed or most == 1 else [most, 1]
        self.seconds: dict[int, float] = {}
        self.steps = 0

    def choose(self) -> int:
        """Set and return the thread count for the next step."""
        untimed = [n for n in self.candidates if n not in self.seconds]
        if untimed:
            choice = untimed[0]
        else:
            ranked = sorted(self.candidates, key=self.seconds.__getitem__)
            choice = ranked[-1] if self.steps % self.RECHECK_EVERY == 0 else ranked[0]
        torch.set_num_threads(choice)
        return choice

    def record(self, threads: int, seconds: float) -> None:
        """Note how long a step took with `threads` threads."""
        self.steps += 1
        if self.steps == 1:
            return  # the first step also pays one-off allocation costs
        previous = self.seconds.get(threads)
        self.seconds[threads] = seconds if previous is None else (previous + seconds) / 2


def _fraction_done(step: int, elapsed: float, config: TrainConfig) -> float:
    if config.max_steps is not None:
        return step / config.max_steps
    by_time = elapsed / config.time_budget_s
    # Both the budget and the step floor must be reached; the slower one drives the schedule.
    return min(by_time, step / config.min_steps) if config.min_steps else by_time


def expand_vocabulary(
    compact: MambaForCausalLM, used_ids: NDArray[np.integer[Any]], config: TrainConfig
) -> MambaForCausalLM:
    """A full-vocabulary copy of a compact model: seen tokens keep their trained rows,
    every other id gets the shared unseen-token row."""
    full = new_mamba(mamba_config(config))
    state = compact.state_dict()
    compact_rows = state.pop("backbone.embeddings.weight")
    state.pop("lm_head.weight", None)  # tied to the embeddings
    rows = compact_rows[-1].repeat(NEOX_VOCAB_SIZE, 1)
    rows[torch.from_numpy(used_ids.astype(np.int64))] = compact_rows[:-1]
    state["backbone.embeddings.weight"] = rows
    outcome = full.load_state_dict(state, strict=False)
    if outcome.unexpected_keys or set(outcome.missing_keys) - {"lm_head.weight"}:
        raise RuntimeError(f"checkpoint mismatch while expanding the vocabulary: {outcome}")
    full.tie_weights()
    return full


def random_init(
    hf_dir: Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    tied_embeddings: bool = True,
) -> Path:
    """Save an untrained Mamba with random weights to `hf_dir` (for tests); return it.

    Tied, an untrained model's greedy answer echoes the prompt's last token whatever the
    seed; an untied output layer (`tied_embeddings=False`) makes the answer depend on it.
    """
    torch.manual_seed(seed)
    config = mamba_config(TrainConfig(hidden_size=hidden_size, num_layers=num_layers))
    config.tie_word_embeddings = tied_embeddings
    model = new_mamba(config)
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(hf_dir, safe_serialization=True)
    return hf_dir


def _optimizer(model: MambaForCausalLM, config: TrainConfig) -> torch.optim.Optimizer:
    # No decay on norms, biases, D and A_log (Mamba's recurrence parameters).
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        is_matrix = parameter.ndim >= 2 and not name.endswith("A_log")
        (decay if is_matrix else no_decay).append(parameter)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )


def _learning_rate(step: int, fraction_done: float, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, fraction_done)))
    return config.learning_rate * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def _sample_windows(
    stream: torch.Tensor, config: TrainConfig, generator: torch.Generator
) -> torch.Tensor:
    window = config.seq_len + 1
    starts = torch.randint(0, len(stream) - window + 1, (config.batch_size,), generator=generator)
    return torch.stack([stream[start : start + window] for start in starts.tolist()])


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("step {task.fields[step]}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    )
