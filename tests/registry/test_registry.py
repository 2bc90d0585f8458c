"""The registry's behaviour on SQLite and PostgreSQL (see conftest.database_url)."""

from __future__ import annotations

import hashlib
import threading

import pytest
from sqlalchemy import create_engine

from demigod.evaluation.result import EvaluationResult
from demigod.registry import (
    STABLE,
    AliasConflictError,
    LifecycleEvent,
    Registry,
    RegistryError,
    UnknownModelError,
    UnknownVersionError,
)
from demigod.registry.migrate import current_revision, head_revision


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def add(registry: Registry, model: str, content: str, **kwargs: object) -> str:
    info = registry.add_version(
        model,
        sha256=sha(content),
        storage_uri=f"file:///models/{content}.gguf",
        quantization=str(kwargs.pop("quantization", "Q4_0")),
        size_bytes=len(content),
        **kwargs,  # type: ignore[arg-type]
    )
    return info.label


def test_opening_applies_the_shipped_migrations_once(database_url: str) -> None:
    with Registry(database_url):
        pass
    engine = create_engine(database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    with Registry(database_url) as again:  # a second open finds nothing to do
        assert again.list_models() == []


def test_versions_get_sequential_labels_and_registering_the_same_file_is_idempotent(
    registry: Registry,
) -> None:
    registry.ensure_model("mamba", architecture="MambaForCausalLM", family="mamba")
    assert add(registry, "mamba", "f16", quantization="F16") == "v1"
    assert add(registry, "mamba", "q4", reference="v1", source_uri="hf://x/y") == "v2"
    assert add(registry, "mamba", "q4") == "v2"  # same sha256: the same version
    versions = registry.list_versions("mamba")
    assert [v.label for v in versions] == ["v1", "v2"]
    assert versions[1].reference == "v1"
    assert versions[1].source_uri == "hf://x/y"
    assert registry.get_model("mamba").architecture == "MambaForCausalLM"
    actions = [e.action for e in registry.events("mamba")]
    assert actions == ["model.created", "version.registered", "version.registered"]


def test_unknown_names_get_errors_that_list_what_exists(registry: Registry) -> None:
    with pytest.raises(UnknownModelError, match="registered: none"):
        registry.get_version("nope", "v1")
    registry.ensure_model("mamba")
    add(registry, "mamba", "a")
    with pytest.raises(UnknownVersionError, match="versions: v1; aliases: none"):
        registry.get_version("mamba", "v9")
    with pytest.raises(ValueError, match="no '@'"):
        registry.ensure_model("mamba@v1")
    with pytest.raises(ValueError, match="sha256"):
        registry.add_version(
            "mamba", sha256="xyz", storage_uri="file:///x", quantization="F16", size_bytes=1
        )


def test_aliases_resolve_and_move_with_events_and_hooks(registry: Registry) -> None:
    seen: list[LifecycleEvent] = []
    registry.on_event.append(seen.append)
    registry.ensure_model("mamba")
    v1, v2 = add(registry, "mamba", "a"), add(registry, "mamba", "b")
    first = registry.move_alias("mamba", STABLE, v1, expected_row_version=None, reason="first")
    assert (first.version, first.row_version) == ("v1", 1)
    assert registry.get_version("mamba", STABLE).label == "v1"
    second = registry.move_alias("mamba", STABLE, v2, expected_row_version=1, actor="alice")
    assert (second.version, second.row_version, second.updated_by) == ("v2", 2, "alice")
    assert registry.get_version("mamba", "stable").sha256 == sha("b")
    moves = [e for e in seen if e.action == "alias.moved"]
    assert [(e.details["from"], e.details["to"]) for e in moves] == [(None, "v1"), ("v1", "v2")]
    assert moves[0].reason == "first" and moves[1].actor == "alice"
    assert registry.events("mamba")[-1] == moves[1]


def test_a_stale_expected_row_version_is_a_conflict_and_changes_nothing(
    registry: Registry,
) -> None:
    registry.ensure_model("mamba")
    v1, v2 = add(registry, "mamba", "a"), add(registry, "mamba", "b")
    registry.move_alias("mamba", STABLE, v1, expected_row_version=None)
    with pytest.raises(AliasConflictError, match="moved since it was read"):
        registry.move_alias("mamba", STABLE, v2, expected_row_version=7)
    with pytest.raises(AliasConflictError, match="created meanwhile"):
        registry.move_alias("mamba", STABLE, v2, expected_row_version=None)
    assert registry.get_version("mamba", STABLE).label == v1
    with pytest.raises(ValueError, match="alias"):
        registry.move_alias("mamba", "v3", v2)


def test_a_retired_version_cannot_be_promoted(registry: Registry) -> None:
    registry.ensure_model("mamba")
    v1 = add(registry, "mamba", "a")
    registry.update_version("mamba", v1, action="version.retired", status="retired")
    with pytest.raises(RegistryError, match="retired; restore it"):
        registry.move_alias("mamba", STABLE, v1)


def test_evaluations_are_stored_with_tool_versions(registry: Registry) -> None:
    registry.ensure_model("mamba")
    v1 = add(registry, "mamba", "a")
    registry.record_evaluations(
        "mamba",
        v1,
        [
            EvaluationResult("perplexity", "perplexity", 12.5, None, None, {"llama": "1"}),
            EvaluationResult("hemlock", "pass_rate", 0.97, 0.95, True, {"demigod": "0.1"}),
        ],
        details={"text": "held-out"},
    )
    results = registry.evaluations("mamba", "v1")
    assert [(r.suite, r.metric, r.value, r.passed) for r in results] == [
        ("perplexity", "perplexity", 12.5, None),
        ("hemlock", "pass_rate", 0.97, True),
    ]
    assert results[0].tool_versions == {"llama": "1"}
    assert results[1].details == {"text": "held-out"}


@pytest.mark.parametrize("round_", range(3))
def test_two_racing_promotions_one_wins_the_other_gets_a_conflict(
    registry: Registry, database_url: str, round_: int
) -> None:
    registry.ensure_model("mamba")
    v1, v2, v3 = (add(registry, "mamba", c) for c in "abc")
    registry.move_alias("mamba", STABLE, v1, expected_row_version=None)
    read = registry.alias("mamba", STABLE)
    assert read is not None
    # Two processes' worth of connections: each promoter has its own Registry (pool).
    promoters = [Registry(database_url, actor=f"p{i}", migrate=False) for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def promote(promoter: Registry, target: str) -> None:
        barrier.wait()
        try:
            outcomes[target] = promoter.move_alias(
                "mamba", STABLE, target, expected_row_version=read.row_version
            )
        except AliasConflictError as exc:
            outcomes[target] = exc

    threads = [
        threading.Thread(target=promote, args=(promoters[0], v2)),
        threading.Thread(target=promote, args=(promoters[1], v3)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for promoter in promoters:
        promoter.close()
    errors = [o for o in outcomes.values() if isinstance(o, AliasConflictError)]
    winners = [label for label, o in outcomes.items() if not isinstance(o, Exception)]
    assert len(errors) == 1 and len(winners) == 1, outcomes
    assert registry.get_version("mamba", STABLE).label == winners[0]
    moves = [e for e in registry.events("mamba") if e.action == "alias.moved"]
    assert [e.details["to"] for e in moves] == ["v1", winners[0]]
    assert registry.alias("mamba", STABLE).row_version == 2  # type: ignore[union-attr]
