"""Consensus aggregation: normalisers, the vote (hypothesis), the judge, timeouts."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demigod.gateway.consensus import (
    Answer,
    ConsensusConfigError,
    MemberReply,
    ask_all,
    conclude,
    json_field_normaliser,
    majority_quorum,
    normalise_exact,
    normalise_numbers,
    normaliser_named,
    parse_judge,
    parse_members,
    vote,
)


def answers(*texts: str | None) -> list[Answer]:
    return [
        Answer(f"m{i}", text, None if text is not None else "failed")
        for i, text in enumerate(texts)
    ]


def test_normalisers() -> None:
    assert normalise_exact("  The Answer  is\n42. ") == normalise_exact("the answer is 42")
    assert normalise_exact("   ") is None
    assert normalise_exact(" ::: ") == ":::"
    assert normalise_numbers("It is 1,000.50 dollars") == normalise_numbers("1000.5")
    assert normalise_numbers("x = 42") == normalise_numbers("42.0") == "42"
    assert normalise_numbers("no digits here") is None
    field = json_field_normaliser("result.value")
    assert field('Sure! {"result": {"value": 3}} done') == field('{"result":{"value":3.0}}')
    assert field('{"result": {}}') is None and field("not json {") is None
    assert normaliser_named("json:a")('{"a": "x"}') == '"x"'
    with pytest.raises(ConsensusConfigError, match="unknown normaliser"):
        normaliser_named("fuzzy")
    with pytest.raises(ConsensusConfigError):
        normaliser_named("json:")


def test_member_lists() -> None:
    assert parse_members("consensus:a, b,c") == ["a", "b", "c"]
    assert parse_members("tiny") is None
    with pytest.raises(ConsensusConfigError, match="at least two"):
        parse_members("consensus:a")
    with pytest.raises(ConsensusConfigError, match="twice"):
        parse_members("consensus:a,a")


def test_the_majority_wins_and_failures_do_not_vote() -> None:
    verdict = vote(answers("42", "forty-two", "42.", None), normalise_exact, 2)
    assert verdict.reached and verdict.winner == 0
    assert verdict.agreement == 0.5
    assert verdict.keys == ["42", "forty-two", "42", None]
    split = vote(answers("1", "2", "3"), normalise_exact, 2)
    assert not split.reached and split.winner is None and split.agreement == pytest.approx(1 / 3)
    assert not vote(answers(None, None), normalise_exact, 1).reached


@given(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=9), st.integers(1, 9))
def test_vote_properties(texts: list[str | None], quorum: int) -> None:
    verdict = vote(answers(*texts), normalise_exact, quorum)
    counts = {t: texts.count(t) for t in set(texts) if t is not None}
    largest = max(counts.values(), default=0)
    # Reached exactly when the largest group meets the quorum, and the winner is in it.
    assert verdict.reached == (largest >= quorum and largest > 0)
    assert verdict.agreement == pytest.approx(largest / len(texts))
    if verdict.winner is not None:
        assert counts[texts[verdict.winner]] == largest
        # Ties go to the group that answered first.
        first_of_largest = min(texts.index(t) for t, n in counts.items() if n == largest)
        assert verdict.winner == first_of_largest
    # Unanimity always reaches any quorum up to the member count.
    if texts and all(t == "a" for t in texts) and quorum <= len(texts):
        assert verdict.reached


@given(st.integers(1, 50))
def test_majority_quorum_is_more_than_half(members: int) -> None:
    quorum = majority_quorum(members)
    assert quorum > members / 2 and quorum - 1 <= members / 2


def test_the_judge_names_a_valid_answer() -> None:
    listed = answers("a", None, "c")
    assert parse_judge("Best answer: 3", listed) == 2
    assert parse_judge("2", listed) is None  # that member failed
    assert parse_judge("7", listed) is None and parse_judge("none", listed) is None


def test_conclude_with_a_judge_overrides_the_vote_and_counts_its_usage() -> None:
    replies = [MemberReply(a, "v1", 3, 1) for a in answers("x", "x", "y")]

    async def judge(prompt: str) -> MemberReply:
        assert "Answer 3: y" in prompt
        return MemberReply(Answer("j", "3"), "v1", 10, 1)

    report, winner, counted = asyncio.run(
        conclude("q?", replies, normaliser="exact", quorum=2, judge="j", ask_judge=judge)
    )
    assert (winner, report.winner, report.method) == (2, "m2", "judge")
    assert [a.agrees for a in report.answers] == [False, False, True]
    assert sum(r.prompt_tokens for r in counted) == 19


def test_ask_all_turns_failures_and_timeouts_into_answers() -> None:
    async def ask(name: str) -> MemberReply:
        if name == "slow":
            await asyncio.sleep(5)
        if name == "broken":
            raise RuntimeError("engine fell over")
        return MemberReply(Answer(name, "ok"))

    replies = asyncio.run(ask_all(["fast", "slow", "broken"], ask, timeout=0.2))
    assert [r.answer.text for r in replies] == ["ok", None, None]
    assert replies[1].answer.error == "no answer within 0.2s"
    assert replies[2].answer.error == "engine fell over"
