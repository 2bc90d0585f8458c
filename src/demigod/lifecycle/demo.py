"""The demo catalogue: two small Mamba models built offline through the real pipeline.

No weights can be downloaded here, so the demo trains its own: `demigod-code` on the
standard library's sources, `demigod-chat` on Python's English documentation. Each goes
corpus -> train (CPU) -> Hugging Face folder -> F16 GGUF (llama.cpp's converter) ->
Q4_0 GGUF (llama.cpp's quantizer) -> validation (loads, finite held-out perplexity,
non-degenerate samples) -> manifest. A model whose manifest matches its recipe and whose
GGUF matches the manifest's checksum is reused without rebuilding.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import platform
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

from demigod.lifecycle.convert import convert_hf_to_gguf
from demigod.lifecycle.corpora import Corpus, load_corpus
from demigod.lifecycle.errors import LifecycleError
from demigod.lifecycle.perplexity import perplexity
from demigod.lifecycle.quantize import quantize_gguf
from demigod.lifecycle.recipe import TrainConfig
from demigod.lifecycle.sampling import sample_text
from demigod.lifecycle.toolkit import engine_version, ensure_toolkit

# Bump when the pipeline changes what it produces for an unchanged recipe.
PIPELINE_VERSION = 1

MANIFEST_NAME = "manifest.json"

# Build-time evaluation: held-out text per corpus, scored in windows of EVAL_N_CTX tokens.
EVAL_HELD_OUT_CHARS = 30_000
EVAL_MAX_TOKENS = 2048
EVAL_N_CTX = 512

# Build-time samples: what the validation checks and the manifest records.
SAMPLE_TOKENS = 64
SAMPLE_TEMPERATURE = 0.8
SAMPLE_SEED = 1
# Below this share of distinct tokens a sample counts as degenerate (a loop).
MIN_DISTINCT_TOKEN_SHARE = 0.25


@dataclass(frozen=True)
class DemoRecipe:
    """How one demo model is built."""

    name: str
    category: str
    corpus: str
    max_train_chars: int
    train: TrainConfig
    sample_prompt: str
    qtype: str = "Q4_0"


# 4 layers x 256 wide, 2048 tokens a step. Training takes 150 of the ~3 minutes a build
# takes on 2 idle cores. Learning rates of 8e-3 drove activations past F16's range within
# 100 steps (NaN in llama.cpp); 4e-3 peaked near 30, 2e-3 learned slower.
DEMO_TRAINING = TrainConfig(
    hidden_size=256,
    num_layers=4,
    seq_len=128,
    batch_size=16,
    learning_rate=3e-3,
    warmup_steps=30,
    time_budget_s=150,
    min_steps=120,
)

DEMO_RECIPES: tuple[DemoRecipe, ...] = (
    DemoRecipe(
        name="demigod-code",
        category="code",
        corpus="code",
        max_train_chars=1_500_000,
        train=DEMO_TRAINING,
        sample_prompt="def ",
    ),
    DemoRecipe(
        name="demigod-chat",
        category="chat",
        corpus="prose",
        max_train_chars=1_000_000,
        train=DEMO_TRAINING,
        sample_prompt="The ",
    ),
)


@dataclass(frozen=True)
class DemoModel:
    """A demo model ready to serve. `build_seconds` None: reused from an earlier build."""

    name: str
    category: str
    gguf_path: Path
    build_seconds: float | None


class DemoBuildError(LifecycleError):
    """A demo model was built but failed validation."""


def ensure_demo_models(
    data_dir: Path,
    console: Console | None = None,
    force: bool = False,
    recipes: tuple[DemoRecipe, ...] = DEMO_RECIPES,
) -> list[DemoModel]:
    """Return the demo models under `data_dir/models/`, building those missing or stale.

    `force` rebuilds all. Building needs the `build` extra (torch, transformers) and the
    converter toolkit (installed into `data_dir` on first use, see `ensure_toolkit`);
    reusing a current build needs neither and takes milliseconds. Several missing models
    are built side by side, one process each: training is most of a build, and its steps
    scale poorly past one thread (docs/demo-models.md). Raises ToolkitError,
    ConversionError, QuantizationError or DemoBuildError when a stage fails.
    """
    found = {r.name: None if force else cached_demo_model(data_dir, r) for r in recipes}
    missing = [recipe for recipe in recipes if found[recipe.name] is None]
    if len(missing) == 1:
        found[missing[0].name] = build_demo_model(
            data_dir, missing[0], ensure_toolkit(data_dir), console
        )
    elif missing:
        found.update(_build_side_by_side(data_dir, missing, ensure_toolkit(data_dir), console))
    return [model for model in found.values() if model is not None]


def _build_side_by_side(
    data_dir: Path, recipes: list[DemoRecipe], toolkit: Path, console: Console | None
) -> dict[str, DemoModel]:
    # spawn: a forked child would inherit torch's and llama.cpp's thread pools half-made.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(recipes), mp_context=context) as pool:
        builds = {
            recipe.name: pool.submit(
                _build_in_child, data_dir, recipe, toolkit, console is not None
            )
            for recipe in recipes
        }
        return {name: build.result() for name, build in builds.items()}


def _build_in_child(data_dir: Path, recipe: DemoRecipe, toolkit: Path, report: bool) -> DemoModel:
    # Stage lines, no live progress bars: the builds share one terminal.
    console = Console(stderr=True, force_terminal=False, soft_wrap=True) if report else None
    return build_demo_model(data_dir, recipe, toolkit, console)


def cached_demo_model(data_dir: Path, recipe: DemoRecipe) -> DemoModel | None:
    """The model built earlier for exactly this recipe, or None if absent or stale."""
    manifest = read_manifest(data_dir, recipe.name)
    if manifest is None or manifest.get("recipe_hash") != recipe_hash(recipe):
        return None
    gguf = model_dir(data_dir, recipe.name) / str(manifest.get("gguf", ""))
    if not gguf.is_file() or _sha256(gguf) != manifest.get("gguf_sha256"):
        return None
    return DemoModel(recipe.name, recipe.category, gguf, build_seconds=None)


def build_demo_model(
    data_dir: Path, recipe: DemoRecipe, toolkit: Path, console: Console | None = None
) -> DemoModel:
    """Build one demo model from scratch and write its manifest (see module docstring).

    Raises DemoBuildError when the built model fails validation, and the errors of the
    conversion and quantization stages.
    """
    from demigod.lifecycle.tokenizer import VocabTokenizer, served_vocab
    from demigod.lifecycle.train import train_mamba

    out = model_dir(data_dir, recipe.name)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # no manifest until the build validates
    report = _StageReport(console, recipe.name)
    started = time.perf_counter()

    with report.stage("corpus"):
        corpora = {
            name: load_corpus(
                name,
                max_train_chars=recipe.max_train_chars if name == recipe.corpus else 0,
                max_held_out_chars=EVAL_HELD_OUT_CHARS,
            )
            for name in ("code", "prose")
        }
        tokenizer = VocabTokenizer(served_vocab(toolkit, out))
        tokens = tokenizer.encode_documents(corpora[recipe.corpus].train)
    with report.stage("train"):
        trained = train_mamba(tokens, out / "hf", recipe.train, console)
    with report.stage("convert"):
        f16 = convert_hf_to_gguf(out / "hf", out / f"{recipe.name}.F16.gguf", toolkit)
    with report.stage("quantize"):
        quantized = out / f"{recipe.name}.{recipe.qtype}.gguf"
        quantize_gguf(f16, quantized, recipe.qtype)
    with report.stage("validate"):
        perplexities = _held_out_perplexities(quantized, corpora)
        sample = sample_text(
            quantized,
            recipe.sample_prompt,
            max_tokens=SAMPLE_TOKENS,
            temperature=SAMPLE_TEMPERATURE,
            seed=SAMPLE_SEED,
        )
        _validate(recipe, perplexities[recipe.corpus], sample.distinct_token_share)
    build_seconds = time.perf_counter() - started

    manifest = {
        "name": recipe.name,
        "category": recipe.category,
        "recipe_hash": recipe_hash(recipe),
        "recipe": asdict(recipe),
        "gguf": quantized.name,
        "gguf_sha256": _sha256(quantized),
        "size_bytes": {"f16": f16.stat().st_size, recipe.qtype: quantized.stat().st_size},
        "build_seconds": round(build_seconds, 1),
        "stage_seconds": report.seconds,
        "training": {**asdict(trained), "corpus_tokens": len(tokens)},
        "held_out_perplexity": perplexities,
        "sample": {
            "prompt": recipe.sample_prompt,
            "temperature": SAMPLE_TEMPERATURE,
            "seed": SAMPLE_SEED,
            "text": sample.text,
        },
        "versions": _versions(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine()},
    }
    _write_json(out / MANIFEST_NAME, manifest)
    report.done(build_seconds)
    return DemoModel(recipe.name, recipe.category, quantized, build_seconds)


def build_test_model(
    out_dir: Path,
    data_dir: Path | None = None,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    tied_embeddings: bool = True,
) -> Path:
    """Build a tiny random-weights Mamba as Q4_0 GGUF in `out_dir`, in seconds; return it.
    Untied, other `seed`s give models that answer differently (train.random_init says why).

    It goes through the same conversion and quantization as the demo models, so tests
    exercise real GGUF files. `data_dir` holds the converter toolkit (default `out_dir`;
    pass a persistent folder to install the toolkit only once). Raises as
    `ensure_toolkit`, `convert_hf_to_gguf` and `quantize_gguf` do.
    """
    from demigod.lifecycle.train import random_init

    toolkit = ensure_toolkit(data_dir if data_dir is not None else out_dir)
    hf_dir = random_init(
        out_dir / "demigod-test-hf",
        hidden_size=hidden_size,
        num_layers=num_layers,
        seed=seed,
        tied_embeddings=tied_embeddings,
    )
    f16 = convert_hf_to_gguf(hf_dir, out_dir / "demigod-test.F16.gguf", toolkit)
    quantized = out_dir / "demigod-test.Q4_0.gguf"
    quantize_gguf(f16, quantized, "Q4_0")
    return quantized


def model_dir(data_dir: Path, name: str) -> Path:
    """The folder of model `name`: its HF checkpoint, GGUF files and manifest."""
    return data_dir / "models" / name


def read_manifest(data_dir: Path, name: str) -> dict[str, Any] | None:
    """The manifest of demo model `name`, or None if it has none (or an unreadable one)."""
    try:
        manifest = json.loads((model_dir(data_dir, name) / MANIFEST_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def recipe_hash(recipe: DemoRecipe) -> str:
    """A digest of everything that decides the built model: the recipe, the pipeline
    version, the engine (converter and quantizer) and the Python whose stdlib is the data."""
    identity = {
        "recipe": asdict(recipe),
        "pipeline": PIPELINE_VERSION,
        "engine": engine_version(),
        "python": platform.python_version(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _held_out_perplexities(gguf: Path, corpora: dict[str, Corpus]) -> dict[str, float]:
    return {
        name: round(
            perplexity(gguf, corpus.held_out_text(), n_ctx=EVAL_N_CTX, max_tokens=EVAL_MAX_TOKENS),
            2,
        )
        for name, corpus in corpora.items()
    }


def _validate(recipe: DemoRecipe, own_perplexity: float, distinct_share: float) -> None:
    from demigod.lifecycle.train import NEOX_VOCAB_SIZE

    # No better than guessing uniformly over the vocabulary: it learned nothing (or its
    # activations overflow in llama.cpp, which reads as NaN).
    if not math.isfinite(own_perplexity) or own_perplexity >= NEOX_VOCAB_SIZE:
        raise DemoBuildError(f"{recipe.name}: held-out perplexity is {own_perplexity}")
    if distinct_share < MIN_DISTINCT_TOKEN_SHARE:
        raise DemoBuildError(
            f"{recipe.name}: sampled text is degenerate "
            f"({distinct_share:.0%} distinct tokens at temperature {SAMPLE_TEMPERATURE})"
        )


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "llama-cpp-python": engine_version()}
    for package in ("demigod", "torch", "transformers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


class _StageReport:
    """Prints one line per stage and keeps the stage timings for the manifest."""

    def __init__(self, console: Console | None, name: str) -> None:
        self.console = console
        self.name = name
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        if self.console is not None:
            self.console.print(f"{self.name}: {stage}")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - started, 1)

    def done(self, total: float) -> None:
        if self.console is not None:
            self.console.print(f"[bold green]{self.name}[/] built in {total:.0f} s")
