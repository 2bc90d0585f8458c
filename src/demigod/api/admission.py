"""Admission: the ordered steps every API request passes before it is routed.

The request path is auth -> quota -> screen -> route (design.md). Each step is an async
callable that reads and updates one `Admission` (who is asking, for what, and what each
step decided) and refuses by raising `APIError`. `create_app` builds the pipeline; a
feature plugs in with one line there:

    admission.add("screen", waf.screen)                   # runs after the steps already in
    admission.add("screen", waf.screen, before="quota")   # or before a named one
    admission.add_routed("screen-tokens", waf.tokens)     # once the model is chosen
    admission.on_finish(audit.record)                     # sees every request's outcome

Steps added with `add_routed` run after routing (the gateway's front door calls
`admit_routed`), for what needs the chosen model: a prompt given as token ids is text
only to the model that reads them (`Admission.read_tokens`).

`AdmissionMiddleware` runs the finish callbacks once the response has been sent (streams
included), whatever the status, and adds `Admission.response_headers` to the response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from demigod.api.principal import ANONYMOUS, Principal

log = logging.getLogger(__name__)

# What the request asks for: a completion (chat/text) costs quota; the others only need auth.
Endpoint = Literal["chat", "text", "route", "tokenize", "models", "admin"]
COMPLETION_ENDPOINTS: frozenset[str] = frozenset({"chat", "text"})


@dataclass
class Outcome:
    """How a request ended: its HTTP status and, for completions, the tokens it used."""

    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0


FinishCallback = Callable[["Admission", Outcome], Awaitable[None]]
# The chosen model's reading of token ids as text. Raises APIError (ids it cannot read).
TokenReader = Callable[[Sequence[int]], Awaitable[str]]


@dataclass
class Admission:
    """What the admission steps know and decided about one request.

    Available to route handlers and later steps as `request.state.admission`; the
    principal is also `request.state.principal`.
    """

    request: Request
    endpoint: Endpoint
    model: str  # as the client named it (may be "auto")
    text: str  # what screens read: the messages or prompt, oldest first
    principal: Principal = ANONYMOUS
    # Added to the response, whatever its status (a WAF flag, the auth-off notice).
    response_headers: dict[str, str] = field(default_factory=dict)
    # Step name -> verdict ("allow", "block", "flag", ...), for logs and the audit record.
    verdicts: dict[str, str] = field(default_factory=dict)
    # The model and version the router picked, once it has, and how that model reads
    # token ids (None for a request that several models answer).
    routed_model: str | None = None
    routed_version: str | None = None
    read_tokens: TokenReader | None = None
    outcome: Outcome | None = None
    _finishers: list[FinishCallback] = field(default_factory=list)

    @property
    def is_completion(self) -> bool:
        return self.endpoint in COMPLETION_ENDPOINTS

    def on_finish(self, callback: FinishCallback) -> None:
        """Run `callback` once this request's response has been sent (e.g. release a slot)."""
        self._finishers.append(callback)

    def record_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Called by the completion runner when generation ends."""
        self.outcome = Outcome(0, prompt_tokens, completion_tokens)


AdmissionStep = Callable[[Admission], Awaitable[None]]


class AdmissionPipeline:
    """The named, ordered admission steps, and the callbacks that see every outcome."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, AdmissionStep]] = []
        self._routed_steps: list[tuple[str, AdmissionStep]] = []
        self._finishers: list[FinishCallback] = []

    @property
    def step_names(self) -> list[str]:
        return [name for name, _ in self._steps]

    def add_routed(self, name: str, step: AdmissionStep) -> None:
        """Append `step` to those run after routing (`admit_routed`). Raises ValueError
        for a duplicate name."""
        if name in self.step_names or name in dict(self._routed_steps):
            raise ValueError(f"admission step {name!r} is already registered")
        self._routed_steps.append((name, step))

    def add(self, name: str, step: AdmissionStep, *, before: str | None = None) -> None:
        """Append `step` (or insert it before the step named `before`). Raises ValueError
        for a duplicate name or an unknown `before`."""
        if name in self.step_names:
            raise ValueError(f"admission step {name!r} is already registered")
        if before is None:
            self._steps.append((name, step))
            return
        if before not in self.step_names:
            raise ValueError(f"no admission step named {before!r}; have {self.step_names}")
        self._steps.insert(self.step_names.index(before), (name, step))

    def on_finish(self, callback: FinishCallback) -> None:
        """Run `callback` after every admitted or refused request's response is sent."""
        self._finishers.append(callback)

    async def admit(self, request: Request, endpoint: Endpoint, model: str, text: str) -> Admission:
        """Run every step in order; raises the first step's `APIError` refusal."""
        admission = Admission(request=request, endpoint=endpoint, model=model, text=text)
        admission._finishers.extend(self._finishers)
        request.state.admission = admission
        for _, step in self._steps:
            await step(admission)
        return admission

    async def admit_routed(self, admission: Admission) -> None:
        """Run the steps that need the chosen model, in order, once the router has set
        `admission.routed_model` (and `read_tokens`); raises the first refusal."""
        for _, step in self._routed_steps:
            await step(admission)


class AdmissionMiddleware:
    """Adds each request's admission headers to its response and runs its finish callbacks
    after the last byte (plain ASGI, so streams are finished when the callbacks run)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                admission = scope.get("state", {}).get("admission")
                if isinstance(admission, Admission):
                    headers = MutableHeaders(scope=message)
                    for name, value in admission.response_headers.items():
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            admission = scope.get("state", {}).get("admission")
            if isinstance(admission, Admission):
                await _finish(admission, status)


async def _finish(admission: Admission, status: int) -> None:
    used = admission.outcome or Outcome(status)
    admission.outcome = Outcome(status, used.prompt_tokens, used.completion_tokens)
    for callback in admission._finishers:
        try:
            await callback(admission, admission.outcome)
        except Exception:  # one failing callback must not skip the others (slot releases)
            log.exception("admission finish callback failed")
