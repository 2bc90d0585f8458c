"""Stable/candidate split: by weight, sticky per session, pinned across weight changes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demigod.errors import UnknownVersionError
from demigod.routing.versions import (
    VersionRouter,
    choose_alias,
    session_fraction,
    split_pinned,
    split_versions,
)


@dataclass(frozen=True)
class Model:
    name: str
    version: str


STABLE, CANDIDATE = Model("chat", "v1"), Model("chat", "v2")


def router(weight: float, **kwargs: int) -> VersionRouter[Model]:
    versions = VersionRouter({"chat": CANDIDATE}, seed=0, **kwargs)
    versions.set_weight("chat", weight)
    return versions


@given(st.text(min_size=1), st.floats(0, 1), st.floats(0, 1))
def test_a_session_on_the_candidate_stays_there_as_the_weight_rises(
    session: str, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    fraction = session_fraction("chat", session)
    assert 0 <= fraction < 1
    if choose_alias(fraction, low) == "candidate":
        assert choose_alias(fraction, high) == "candidate"
    assert choose_alias(fraction, 0.0) == "stable"
    assert choose_alias(fraction, 1.0) == "candidate"


def test_the_split_follows_the_weight() -> None:
    versions = router(0.25)
    sessions = [versions.choose(STABLE, f"s{i}").served for i in range(4000)]
    share = sessions.count(CANDIDATE) / len(sessions)
    assert 0.22 < share < 0.28
    random = [versions.choose(STABLE, None).served for _ in range(4000)]
    assert 0.22 < random.count(CANDIDATE) / len(random) < 0.28


def test_sessions_keep_their_version_when_the_weight_changes() -> None:
    versions = router(0.5)
    first = {f"s{i}": versions.choose(STABLE, f"s{i}").served for i in range(200)}
    versions.set_weight("chat", 0.9)  # more sessions would hash to the candidate now
    assert {s: versions.choose(STABLE, s).served for s in first} == first
    assert versions.choose(STABLE, "s0").reason.endswith("session pinned")
    # A rollback moves everybody to stable: the candidate no longer serves.
    versions.set_weight("chat", 0.0)
    assert {versions.choose(STABLE, s).served for s in first} == {STABLE}


def test_every_process_places_a_session_alike_without_pins() -> None:
    one, other = router(0.5, max_pins=0), router(0.5, max_pins=0)
    for i in range(100):
        assert one.choose(STABLE, f"s{i}").served == other.choose(STABLE, f"s{i}").served


def test_pins_are_bounded() -> None:
    versions = router(0.5, max_pins=10)
    for i in range(100):
        versions.choose(STABLE, f"s{i}")
    assert len(versions._pins) == 10


def test_models_without_a_candidate_always_answer_stable() -> None:
    other = Model("code", "v7")
    choice = router(1.0).choose(other, "s")
    assert choice.served == other and choice.alias == "stable" and choice.reason == ""


def test_an_explicit_version_is_served_or_refused() -> None:
    versions = router(0.0)
    assert split_pinned("chat@v2") == ("chat", "v2")
    assert split_pinned("chat") == ("chat", None)
    assert versions.pinned(STABLE, "v2") == CANDIDATE
    assert versions.pinned(STABLE, "v1") == STABLE
    with pytest.raises(UnknownVersionError, match="available: v1, v2"):
        versions.pinned(STABLE, "v3")
    assert versions.pinned(STABLE, "candidate") == CANDIDATE
    assert versions.pinned(STABLE, "stable") == STABLE
    assert versions.pinned(STABLE, "beta", {"beta": "v2"}) == CANDIDATE


def test_split_versions_takes_the_first_entry_as_stable() -> None:
    stable, candidates = split_versions([STABLE, Model("code", "a"), CANDIDATE])
    assert stable == [STABLE, Model("code", "a")] and candidates == [CANDIDATE]
    with pytest.raises(ValueError, match="twice"):
        split_versions([STABLE, STABLE])
    with pytest.raises(ValueError, match="more than two"):
        split_versions([STABLE, CANDIDATE, Model("chat", "v3")])
