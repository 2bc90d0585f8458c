"""The demo catalogue: built once through the real pipeline, then reused from its manifest."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from demigod.lifecycle import demo
from demigod.lifecycle.demo import (
    DEMO_RECIPES,
    MANIFEST_NAME,
    DemoRecipe,
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


def test_missing_models_build_side_by_side_through_the_whole_pipeline(
    tmp_path: Path, toolkit: Path
) -> None:
    (tmp_path / toolkit.name).symlink_to(toolkit)  # the session's toolkit: no download
    prose = replace(
        MINI_RECIPE,
        name="demigod-mini-prose",
        category="chat",
        corpus="prose",
        sample_prompt="The ",
    )
    built = ensure_demo_models(tmp_path, recipes=(MINI_RECIPE, prose))

    assert [m.name for m in built] == ["demigod-mini", "demigod-mini-prose"]
    assert built[0].gguf_path == tmp_path / "models/demigod-mini/demigod-mini.Q4_0.gguf"
    spans = []
    for model in built:
        assert model.build_seconds is not None and model.build_seconds > 0
        assert (tmp_path / "models" / model.name / "hf/config.json").is_file()
        manifest = read_manifest(tmp_path, model.name)
        assert manifest is not None
        assert manifest["size_bytes"]["Q4_0"] < manifest["size_bytes"]["f16"]
        assert set(manifest["held_out_perplexity"]) == {"code", "prose"}
        assert all(math.isfinite(v) for v in manifest["held_out_perplexity"].values())
        assert manifest["training"]["steps"] == 40
        assert manifest["sample"]["text"]
        stages = {"corpus", "train", "convert", "quantize", "validate"}
        assert set(manifest["stage_seconds"]) == stages
        end = datetime.fromisoformat(manifest["built_at"]).timestamp()
        spans.append((end - manifest["build_seconds"], end))
    # Side by side: the builds overlap for most of the shorter one (one after the other,
    # they would not overlap at all; built_at has whole seconds).
    overlap = min(end for _, end in spans) - max(start for start, _ in spans)
    assert overlap > 0.5 * min(end - start for start, end in spans) + 1, spans

    again = ensure_demo_models(tmp_path, recipes=(MINI_RECIPE, prose))
    assert [(m.gguf_path, m.build_seconds) for m in again] == [(m.gguf_path, None) for m in built]


@pytest.mark.parametrize("recipe", DEMO_RECIPES, ids=lambda r: r.name)
def test_demo_recipes_fit_the_converter(recipe: DemoRecipe) -> None:
    # llama.cpp's Mamba converter asserts intermediate_size == 2 * hidden_size, and Q4_0
    # blocks need rows that are multiples of 32.
    from demigod.lifecycle.train import mamba_config

    config = mamba_config(recipe.train)
    assert config.intermediate_size == 2 * config.hidden_size
    assert config.hidden_size % 32 == 0
