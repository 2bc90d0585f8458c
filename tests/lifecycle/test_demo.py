"""The demo catalogue: built once through the real pipeline, then reused from its manifest."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from demigod.lifecycle import demo
from demigod.lifecycle.demo import (
    DEMO_RECIPES,
    MANIFEST_NAME,
    DemoRecipe,
    build_demo_model,
    cached_demo_model,
    ensure_demo_models,
    model_dir,
    read_manifest,
    recipe_hash,
)
from demigod.lifecycle.recipe import TrainConfig

MINI_RECIPE = DemoRecipe(
    name="demigod-mini",
    category="code",
    corpus="code",
    max_train_chars=40_000,
    train=TrainConfig(
        hidden_size=64, num_layers=2, seq_len=64, batch_size=8, learning_rate=1e-2, max_steps=40
    ),
    sample_prompt="def ",
)


def test_catalogue_has_a_code_and_a_chat_model() -> None:
    assert [(r.name, r.category) for r in DEMO_RECIPES] == [
        ("demigod-code", "code"),
        ("demigod-chat", "chat"),
    ]
    # Two of the design's default request categories (code, math, chat, long_context).
    assert {r.category for r in DEMO_RECIPES} <= {"code", "math", "chat", "long_context"}
    assert {r.corpus for r in DEMO_RECIPES} == {"code", "prose"}


def test_recipe_hash_follows_the_recipe() -> None:
    code, chat = DEMO_RECIPES
    assert recipe_hash(code) == recipe_hash(code)
    assert recipe_hash(code) != recipe_hash(chat)
    changed = replace(code, train=replace(code.train, learning_rate=1e-3))
    assert recipe_hash(changed) != recipe_hash(code)


def _install_fake_build(data_dir: Path, recipe: DemoRecipe, gguf: Path) -> Path:
    target = model_dir(data_dir, recipe.name) / f"{recipe.name}.{recipe.qtype}.gguf"
    target.parent.mkdir(parents=True)
    shutil.copyfile(gguf, target)
    manifest = {
        "recipe_hash": recipe_hash(recipe),
        "gguf": target.name,
        "gguf_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
    }
    (target.parent / MANIFEST_NAME).write_text(json.dumps(manifest))
    return target


def test_current_builds_are_reused_without_building(
    tmp_path: Path, random_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [_install_fake_build(tmp_path, recipe, random_gguf) for recipe in DEMO_RECIPES]

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a current build was rebuilt")

    monkeypatch.setattr(demo, "build_demo_model", no_build)
    monkeypatch.setattr(demo, "ensure_toolkit", no_build)
    models = ensure_demo_models(tmp_path)

    assert [(m.name, m.category, m.gguf_path, m.build_seconds) for m in models] == [
        (r.name, r.category, path, None) for r, path in zip(DEMO_RECIPES, paths, strict=True)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no toolkit fetched


def test_stale_or_damaged_builds_are_not_reused(tmp_path: Path, random_gguf: Path) -> None:
    code, chat = DEMO_RECIPES
    _install_fake_build(tmp_path, code, random_gguf)
    damaged = _install_fake_build(tmp_path, chat, random_gguf)
    with damaged.open("ab") as file:
        file.write(b"\0")

    assert cached_demo_model(tmp_path, code) is not None
    assert cached_demo_model(tmp_path, replace(code, qtype="Q8_0")) is None  # recipe changed
    assert cached_demo_model(tmp_path, chat) is None


def test_build_runs_the_whole_pipeline_then_is_cached(tmp_path: Path, toolkit: Path) -> None:
    built = build_demo_model(tmp_path, MINI_RECIPE, toolkit)

    assert built.gguf_path == tmp_path / "models/demigod-mini/demigod-mini.Q4_0.gguf"
    assert built.build_seconds is not None and built.build_seconds > 0
    assert (tmp_path / "models/demigod-mini/hf/config.json").is_file()
    manifest = read_manifest(tmp_path, "demigod-mini")
    assert manifest is not None
    assert manifest["size_bytes"]["Q4_0"] < manifest["size_bytes"]["f16"]
    assert set(manifest["held_out_perplexity"]) == {"code", "prose"}
    assert all(math.isfinite(v) for v in manifest["held_out_perplexity"].values())
    assert manifest["training"]["steps"] == 40
    assert manifest["sample"]["text"]
    assert set(manifest["stage_seconds"]) == {"corpus", "train", "convert", "quantize", "validate"}

    cached = cached_demo_model(tmp_path, MINI_RECIPE)
    assert cached is not None
    assert (cached.gguf_path, cached.build_seconds) == (built.gguf_path, None)


@pytest.mark.parametrize("recipe", DEMO_RECIPES, ids=lambda r: r.name)
def test_demo_recipes_fit_the_converter(recipe: DemoRecipe) -> None:
    # llama.cpp's Mamba converter asserts intermediate_size == 2 * hidden_size, and Q4_0
    # blocks need rows that are multiples of 32.
    from demigod.lifecycle.train import mamba_config

    config = mamba_config(recipe.train)
    assert config.intermediate_size == 2 * config.hidden_size
    assert config.hidden_size % 32 == 0
