"""The Hemlock suite: regression cases (YAML) run against a model through the product's
own OpenAI-compatible endpoint. See docs/validation.md for the format.

A case sends a prompt (`/v1/completions`) or messages (`/v1/chat/completions`) with fixed
sampling parameters and checks the reply: `contains`, `not_contains`, `regex`,
`valid_json`, `max_latency_ms`. Cases marked `probe: true` are also what the deep health
probe (`/healthz/deep`) checks its synthetic generations against.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from demigod.evaluation.result import EvaluationResult

SUITE = "hemlock"
PASS_RATE = "pass_rate"
DEFAULT_SUITE_FILE = "default.yaml"
DEFAULT_TIMEOUT_SECONDS = 120.0


class HemlockError(ValueError):
    """A suite file is missing or malformed (the message names the file and the case)."""


class Check(BaseModel):
    """One expectation on a reply; exactly one field is set."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    contains: str | None = Field(default=None, min_length=1)
    not_contains: str | None = Field(default=None, min_length=1, alias="not-contains")
    regex: str | None = Field(default=None, min_length=1)
    valid_json: Literal[True] | None = Field(default=None, alias="json")
    max_latency_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Check:
        set_fields = [name for name, value in self if value is not None]
        if len(set_fields) != 1:
            raise ValueError(
                "a check is exactly one of contains, not_contains, regex, valid_json, "
                f"max_latency_ms (got {', '.join(set_fields) or 'none'})"
            )
        return self

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"bad regex {value!r}: {error}") from error
        return value

    def failure(self, text: str, latency_ms: float) -> str | None:
        """Why `text` (answered in `latency_ms`) fails this check, or None if it passes."""
        if self.contains is not None and self.contains not in text:
            return f"contains {self.contains!r}: not found"
        if self.not_contains is not None and self.not_contains in text:
            return f"not_contains {self.not_contains!r}: found"
        if self.regex is not None and re.search(self.regex, text) is None:
            return f"regex {self.regex!r}: no match"
        if self.valid_json:
            try:
                json.loads(text)
            except ValueError as error:
                return f"valid_json: {error}"
        if self.max_latency_ms is not None and latency_ms > self.max_latency_ms:
            return f"max_latency_ms {self.max_latency_ms:g}: took {latency_ms:.0f} ms"
        return None


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class CaseParams(BaseModel):
    """Sampling parameters sent with the case (the OpenAI fields of the same names)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=32, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=0, ge=0)
    stop: list[str] | None = None


class Case(BaseModel):
    """One regression case: what to send, and what the reply must satisfy."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    prompt: str | None = None
    messages: list[Message] | None = None
    params: CaseParams = Field(default_factory=CaseParams)
    checks: list[Check] = Field(min_length=1)
    probe: bool = False
    description: str | None = None

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt or messages")
        if self.messages is not None and not self.messages:
            raise ValueError("messages must not be empty")
        return self

    def failures(self, text: str, latency_ms: float) -> list[str]:
        """Every check `text` fails (empty: the case passes)."""
        return [f for check in self.checks if (f := check.failure(text, latency_ms)) is not None]


class HemlockSuite(BaseModel):
    """A named list of cases (ids unique)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "hemlock"
    description: str | None = None
    cases: list[Case] = Field(min_length=1)

    @field_validator("cases")
    @classmethod
    def _unique_ids(cls, cases: list[Case]) -> list[Case]:
        seen: set[str] = set()
        for case in cases:
            if case.id in seen:
                raise ValueError(f"case id {case.id!r} appears twice")
            seen.add(case.id)
        return cases

    def probe_cases(self) -> list[Case]:
        """The cases marked `probe: true` (for the deep health probe)."""
        return [case for case in self.cases if case.probe]


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome: `error` is set when no reply came (HTTP or network error)."""

    id: str
    passed: bool
    output: str
    latency_ms: float
    failures: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class HemlockReport:
    suite: str
    model: str
    cases: list[CaseResult]

    @property
    def pass_rate(self) -> float:
        return sum(case.passed for case in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [case for case in self.cases if not case.passed]

    def results(self, min_pass_rate: float | None = None) -> list[EvaluationResult]:
        """pass_rate (gated by `min_pass_rate` when given), cases_total, latency_max_ms."""
        versions = {"suite": self.suite, "httpx": httpx.__version__}
        passed = None if min_pass_rate is None else self.pass_rate >= min_pass_rate
        latencies = [case.latency_ms for case in self.cases if case.error is None]
        return [
            EvaluationResult(SUITE, PASS_RATE, self.pass_rate, min_pass_rate, passed, versions),
            EvaluationResult(SUITE, "cases_total", float(len(self.cases)), None, None, versions),
            EvaluationResult(
                SUITE, "latency_max_ms", max(latencies, default=0.0), None, None, dict(versions)
            ),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "model": self.model,
            "pass_rate": self.pass_rate,
            "cases": [case.__dict__ for case in self.cases],
        }


def default_suite_path() -> Path:
    """The suite shipped with demigod (`hemlock_suites/default.yaml`)."""
    return Path(str(resources.files("demigod.evaluation") / "hemlock_suites" / DEFAULT_SUITE_FILE))


def load_suite(path: Path | str | None = None) -> HemlockSuite:
    """Read and validate a suite file (None: the shipped default suite).

    Raises HemlockError naming the file and what is wrong with it.
    """
    source = Path(path) if path is not None else default_suite_path()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise HemlockError(f"cannot read Hemlock suite {source}: {error}") from error
    except yaml.YAMLError as error:
        raise HemlockError(f"{source} is not valid YAML: {error}") from error
    try:
        return HemlockSuite.model_validate(data)
    except ValidationError as error:
        raise HemlockError(f"{source} is not a valid Hemlock suite:\n{error}") from error


async def run_suite(
    suite: HemlockSuite,
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> HemlockReport:
    """Run every case of `suite`, one after the other, against `model` at `base_url`
    (the server's root, e.g. http://127.0.0.1:8080; a trailing /v1 is accepted).

    A case whose request fails (an OpenAI error object, a timeout) fails with `error` set;
    the run goes on. Never raises for a model's answer.
    """
    root = base_url.rstrip("/").removesuffix("/v1")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(
        base_url=root, headers=headers, timeout=timeout, transport=transport
    ) as client:
        results = [await _run_case(client, case, model) for case in suite.cases]
    return HemlockReport(suite=suite.name, model=model, cases=results)


async def _run_case(client: httpx.AsyncClient, case: Case, model: str) -> CaseResult:
    body: dict[str, Any] = {"model": model, **case.params.model_dump(exclude_none=True)}
    if case.messages is not None:
        path = "/v1/chat/completions"
        body["messages"] = [message.model_dump() for message in case.messages]
    else:
        path = "/v1/completions"
        body["prompt"] = case.prompt
    started = time.perf_counter()
    try:
        response = await client.post(path, json=body)
        latency_ms = (time.perf_counter() - started) * 1000
        reply = response.json()
    except (httpx.HTTPError, ValueError) as error:
        latency_ms = (time.perf_counter() - started) * 1000
        return CaseResult(case.id, False, "", latency_ms, error=f"{type(error).__name__}: {error}")
    if response.status_code != 200:
        message = reply.get("error", {}).get("message") if isinstance(reply, dict) else None
        error_text = f"HTTP {response.status_code}: {message or response.text[:200]}"
        return CaseResult(case.id, False, "", latency_ms, error=error_text)
    try:
        choice = reply["choices"][0]
        text = choice["message"]["content"] if case.messages is not None else choice["text"]
    except (KeyError, IndexError, TypeError):
        return CaseResult(case.id, False, "", latency_ms, error="reply without choices[0] text")
    text = str(text or "")
    failures = case.failures(text, latency_ms)
    return CaseResult(case.id, not failures, text, latency_ms, failures)
