"""Consensus across models: ask several, keep the answer most of them agree on.

`model: "consensus:a,b,c"` (an ad hoc group) or the name of a group in `consensus.groups`
fans one chat request out to every member concurrently. Answers are normalised (exact
text, the numbers in it, or one JSON field) and the largest group of equal normalised
answers wins if it holds at least `quorum` members; ties go to the group whose first
member is listed first. With a `judge` model, the judge picks the winner among the
answers instead (the vote is still reported).

Everything here is pure; gateway/serving/consensus.py does the asking.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from demigod.api.errors import APIError
from demigod.config import ConsensusGroup, ConsensusOptions
from demigod.protocol import (
    AssistantMessage,
    ChatChoice,
    ConsensusAnswer,
    ConsensusChatCompletion,
    ConsensusReport,
    Usage,
)

PREFIX = "consensus:"
Normaliser = Callable[[str], str | None]

_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")
_JUDGE_CHOICE = re.compile(r"\d+")


class ConsensusConfigError(ValueError):
    """A consensus request or group that cannot run (unknown member, bad normaliser)."""


def parse_members(requested: str) -> list[str] | None:
    """`consensus:a,b,c` → [a, b, c]; None when `requested` is not an ad hoc group.
    Raises ConsensusConfigError for an empty or repeated member list."""
    if not requested.startswith(PREFIX):
        return None
    members = [m.strip() for m in requested[len(PREFIX) :].split(",") if m.strip()]
    if len(members) < 2:
        raise ConsensusConfigError("consensus needs at least two models: consensus:a,b[,c...]")
    if len(set(members)) != len(members):
        raise ConsensusConfigError(f"consensus lists a model twice: {requested}")
    return members


def normalise_exact(text: str) -> str | None:
    """Unicode NFKC, case-folded, whitespace collapsed, trailing punctuation dropped
    (unless that is all there is); None for blank text."""
    flat = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return flat.rstrip(".!?;:") or flat or None


def normalise_numbers(text: str) -> str | None:
    """The numbers in the text, in order, canonical (`1,000.50` → `1000.5`); None if none."""
    found = []
    for raw in _NUMBER.findall(text):
        cleaned = raw.replace(",", "")
        try:
            value = float(cleaned)
        except ValueError:
            continue
        found.append(repr(int(value)) if value.is_integer() else repr(value))
    return " ".join(found) or None


def json_field_normaliser(path: str) -> Normaliser:
    """The value at dotted `path` of the first JSON object in the text, as canonical JSON."""
    keys = [key for key in path.split(".") if key]
    if not keys:
        raise ConsensusConfigError("json normaliser needs a field: json:FIELD[.SUBFIELD]")

    def normalise(text: str) -> str | None:
        start = text.find("{")
        while start != -1:
            try:
                value, _ = json.JSONDecoder().raw_decode(text[start:])
            except ValueError:
                start = text.find("{", start + 1)
                continue
            for key in keys:
                if not isinstance(value, dict) or key not in value:
                    return None
                value = value[key]
            return json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False)
        return None

    return normalise


def _canonical(value: object) -> object:
    """Integral floats as integers (3.0 == 3), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def normaliser_named(name: str) -> Normaliser:
    """`exact`, `numbers` or `json:FIELD`. Raises ConsensusConfigError for anything else."""
    if name == "exact":
        return normalise_exact
    if name == "numbers":
        return normalise_numbers
    if name.startswith("json:"):
        return json_field_normaliser(name[len("json:") :])
    raise ConsensusConfigError(f"unknown normaliser {name!r}: use exact, numbers or json:FIELD")


def majority_quorum(members: int) -> int:
    """More than half of the members."""
    return members // 2 + 1


@dataclass(frozen=True)
class Answer:
    """One member's reply: its text, or the error that stopped it."""

    model: str
    text: str | None
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The vote over the answers."""

    winner: int | None  # index into the answers; None when no quorum
    agreement: float  # share of all members that gave the winning (or largest) answer
    reached: bool
    keys: list[str | None]  # each answer's normalised form (None: failed or unparseable)
    groups: dict[str, list[int]] = field(default_factory=dict)  # normalised -> answer indexes


def vote(answers: Sequence[Answer], normalise: Normaliser, quorum: int) -> Verdict:
    """Majority vote over normalised answers. The largest group of equal normalised
    answers wins when it has at least `quorum` members; among equally large groups, the
    one whose first answer comes first. Failed and unparseable answers never vote."""
    keys = [None if a.text is None or a.error else normalise(a.text) for a in answers]
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(index)
    if not groups:
        return Verdict(None, 0.0, False, keys, groups)
    best = max(groups.values(), key=lambda members: (len(members), -members[0]))
    agreement = len(best) / len(answers)
    reached = len(best) >= quorum
    return Verdict(best[0] if reached else None, agreement, reached, keys, groups)


def judge_prompt(question: str, answers: Sequence[Answer]) -> str:
    """What the judge model reads: the question and the numbered answers."""
    listed = "\n".join(
        f"Answer {number}: {answer.text}"
        for number, answer in enumerate(answers, start=1)
        if answer.text is not None and not answer.error
    )
    return (
        f"Question: {question}\n\n{listed}\n\n"
        "Which answer is correct? Reply with the number of the best answer only.\nBest answer:"
    )


def parse_judge(reply: str, answers: Sequence[Answer]) -> int | None:
    """The answer index the judge's reply names (its first number, 1-based), if that answer
    exists and did not fail; else None."""
    found = _JUDGE_CHOICE.search(reply)
    if found is None:
        return None
    index = int(found.group()) - 1
    if 0 <= index < len(answers) and answers[index].text is not None and not answers[index].error:
        return index
    return None


@dataclass(frozen=True)
class MemberReply:
    """What asking one model produced: its answer, the version that gave it, its usage."""

    answer: Answer
    version: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


async def ask_all(
    members: Sequence[str], ask: Callable[[str], Awaitable[MemberReply]], timeout: float
) -> list[MemberReply]:
    """Ask every member concurrently; a member that fails or is slower than `timeout`
    seconds gives an error answer instead (it is cancelled), never an exception."""

    async def one(name: str) -> MemberReply:
        try:
            return await asyncio.wait_for(ask(name), timeout)
        except TimeoutError:
            return MemberReply(Answer(name, None, f"no answer within {timeout:g}s"))
        except Exception as exc:  # each member's failure is reported, not raised
            return MemberReply(Answer(name, None, str(exc) or type(exc).__name__))

    return list(await asyncio.gather(*(one(name) for name in members)))


async def conclude(
    question: str,
    replies: Sequence[MemberReply],
    *,
    normaliser: str,
    quorum: int,
    judge: str | None,
    ask_judge: Callable[[str], Awaitable[MemberReply]] | None = None,
) -> tuple[ConsensusReport, int | None, list[MemberReply]]:
    """The vote (and the judge's pick, with a judge) over `replies`: the report, the
    winning reply's index (None: no quorum / no valid pick) and every reply counted in
    the usage (the judge's included)."""
    answers = [reply.answer for reply in replies]
    verdict = vote(answers, normaliser_named(normaliser), quorum)
    winner, counted = verdict.winner, list(replies)
    method: Literal["vote", "judge"] = "vote"
    if judge is not None and ask_judge is not None:
        method = "judge"
        judged = await ask_judge(judge_prompt(question, answers))
        counted.append(judged)
        winner = parse_judge(judged.answer.text or "", answers) if not judged.answer.error else None
    winning_key = verdict.keys[winner] if winner is not None else None
    report = ConsensusReport(
        method=method,
        normaliser=normaliser,
        quorum=quorum,
        reached=winner is not None,
        winner=answers[winner].model if winner is not None else None,
        agreement=(
            sum(key == winning_key for key in verdict.keys) / len(answers)
            if winning_key is not None
            else verdict.agreement
        ),
        judge=judge,
        answers=[
            ConsensusAnswer(
                model=reply.answer.model,
                version=reply.version,
                content=reply.answer.text,
                normalised=key,
                agrees=(winning_key is not None and key == winning_key)
                or (winner is not None and index == winner),
                error=reply.answer.error,
                completion_tokens=reply.completion_tokens,
            )
            for index, (reply, key) in enumerate(zip(replies, verdict.keys, strict=True))
        ],
    )
    return report, winner, counted


@dataclass(frozen=True)
class ConsensusTarget:
    """A resolved consensus request: what the client called it, its members, its options."""

    label: str
    members: list[str]
    options: ConsensusOptions


def resolve_target(
    requested: str,
    groups: Mapping[str, ConsensusGroup],
    overrides: object,
    served: Collection[str],
) -> ConsensusTarget | None:
    """The consensus `requested` names (`consensus:a,b` or a group name), with the
    request's `consensus` extension field (`overrides`) applied; None for a plain model.
    Raises APIError (400/404, naming the field) for what cannot run."""
    try:
        members = parse_members(requested)
    except ConsensusConfigError as exc:
        raise APIError(400, str(exc), param="model") from exc
    if members is not None:
        options = ConsensusOptions()
    elif requested in groups:
        group = groups[requested]
        members, options = (
            list(group.models),
            ConsensusOptions(**group.model_dump(exclude={"models"})),
        )
    else:
        return None
    if overrides is not None:
        try:
            options = ConsensusOptions.model_validate({**options.model_dump(), **dict(overrides)})  # type: ignore[call-overload]
        except (ValidationError, TypeError, ValueError) as exc:
            raise APIError(400, f"consensus: {exc}", param="consensus") from exc
    for name in [*members, *([options.judge] if options.judge else [])]:
        if name not in served:
            raise APIError(
                404,
                f"consensus member {name!r} is not served; available: {', '.join(sorted(served))}",
                type="not_found_error",
                param="model",
                code="model_not_found",
            )
    try:
        normaliser_named(options.normaliser)
    except ConsensusConfigError as exc:
        raise APIError(400, str(exc), param="consensus.normaliser") from exc
    if options.quorum is not None and options.quorum > len(members):
        raise APIError(
            400, f"quorum {options.quorum} exceeds the {len(members)} members", param="consensus"
        )
    return ConsensusTarget(requested, members, options)


async def answer(
    target: ConsensusTarget,
    question: str,
    ask: Callable[[str, str | None], Awaitable[MemberReply]],
) -> ConsensusChatCompletion:
    """Fan out, vote (or judge), and build the completion carrying the winner's answer and
    the report. `ask(model, None)` asks a member the request; `ask(judge, prompt)` asks the
    judge `prompt`. Raises APIError 502 (code consensus_not_reached) without a winner."""
    options = target.options
    quorum = options.quorum or majority_quorum(len(target.members))
    replies = await ask_all(target.members, lambda name: ask(name, None), options.timeout_seconds)
    judge = options.judge

    async def ask_judge(prompt: str) -> MemberReply:
        assert judge is not None
        (reply,) = await ask_all([judge], lambda name: ask(name, prompt), options.timeout_seconds)
        return reply

    report, winner, counted = await conclude(
        question,
        replies,
        normaliser=options.normaliser,
        quorum=quorum,
        judge=judge,
        ask_judge=ask_judge if judge else None,
    )
    if winner is None:
        summary = "; ".join(f"{a.model}: {_describe(a)}" for a in report.answers)
        how = (
            "the judge named no valid answer"
            if judge
            else (f"largest agreement {report.agreement:.0%} is under the quorum of {quorum}")
        )
        raise APIError(
            502,
            f"no consensus: {how} ({summary})",
            type="server_error",
            code="consensus_not_reached",
        )
    text = replies[winner].answer.text or ""
    return ConsensusChatCompletion(
        model=target.label,
        choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason="stop")],
        usage=Usage.of(
            sum(r.prompt_tokens for r in counted), sum(r.completion_tokens for r in counted)
        ),
        demigod_consensus=report,
    )


def route_header(report: ConsensusReport, label: str) -> str:
    """The `x-demigod-route` value of a consensus answer (ASCII only)."""
    reason = (
        f"consensus {report.method} ({report.normaliser}): winner {report.winner}, "
        f"agreement {report.agreement:.2f}"
    )
    return f'category=none; model={label}; version=consensus; reason="{reason}"'


def _describe(answer: ConsensusAnswer) -> str:
    if answer.error:
        return answer.error
    if answer.normalised is None:
        return f"no vote ({(answer.content or '')[:40]!r})"
    return repr(answer.normalised[:40])
