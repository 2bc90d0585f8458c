"""Admission and routing as one step: who is asking, may they, and which model answers.

The embedded routes (gateway.routes) and the pass-through to remote replicas
(gateway.passthrough) both describe a request as an `Ask` (a conversation's text read by
the one `routing_text`) and call `FrontDoor.admit`: the admission steps (auth -> quota ->
screen, demigod.api.admission), then the model (routing policy, then the canary's version
choice or a pinned version), then the check that the principal may use it. The typed
outcome, `Routed`, is kept on the request, so when the pass-through hands a request for an
embedded model to the routes they read it instead of deciding again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Request

from demigod.api.admission import Admission, AdmissionPipeline, Endpoint
from demigod.api.errors import APIError
from demigod.config import ConsensusGroup
from demigod.errors import UnknownModelError, UnknownVersionError
from demigod.gateway.consensus import ConsensusTarget, resolve_target
from demigod.gateway.upstreams import RemoteModel
from demigod.mesh import ServedModel
from demigod.protocol import content_text, text_of_prompt
from demigod.routing.policy import RouteDecision, RoutingPolicy, RuleTargetError
from demigod.routing.versions import VersionRouter, split_pinned
from demigod.security.authenticate import require_model

ROUTE_HEADER = "x-demigod-route"
SESSION_HEADER = "x-session-id"

# What the policy routes to: a model of this process, or one behind remote replicas.
Target = ServedModel | RemoteModel
# How a chosen model reads token ids as text (gateway.token_reader). Raises APIError.
ReadTokens = Callable[[Target, Sequence[int]], Awaitable[str]]


def routing_text(contents: Iterable[object]) -> str:
    """What the classifier and the screens read of a conversation: each message's text
    (demigod.protocol.content_text), oldest first, one per line."""
    return "\n".join(content_text(content) for content in contents)


def request_session(request: Request, user: object) -> str | None:
    """What keeps a conversation on one version: `X-Session-Id`, else the body's `user`."""
    session = request.headers.get(SESSION_HEADER) or user
    return session if isinstance(session, str) and session else None


def route_header(decision: RouteDecision[Target]) -> str:
    """`category=code; model=demigod-code; version=local; reason="..."` (ASCII only)."""
    reason = decision.reason.encode("ascii", "replace").decode().replace('"', "'")
    return (
        f"category={decision.category or 'none'}; model={decision.model.name}; "
        f'version={decision.model.version}; reason="{reason}"'
    )


@dataclass(frozen=True)
class Ask:
    """What admission and routing read of a request."""

    endpoint: Endpoint
    model: str  # as the client named it: a model, `model@version`, `auto`, a consensus group
    text: str  # what the classifier and the screens read: routing_text, a prompt, content
    session: str | None = None  # request_session
    consensus: object = None  # a chat body's `consensus` extension field (option overrides)

    @classmethod
    def of(cls, endpoint: Endpoint, request: Request, payload: object) -> Ask:
        """The ask of a request to `endpoint` whose JSON body is `payload`, read leniently
        (the pass-through does not validate bodies; the routes did already)."""
        body: Mapping[str, Any] = payload if isinstance(payload, dict) else {}
        model = body.get("model")
        if endpoint in ("chat", "route"):
            messages = body.get("messages")
            text = routing_text(
                message.get("content") if isinstance(message, dict) else None
                for message in (messages if isinstance(messages, list) else ())
            )
        elif endpoint == "text":
            text = text_of_prompt(body.get("prompt"))
        else:  # /tokenize: llama-server's `content`, or vLLM's `prompt`
            content = body.get("content", body.get("prompt"))
            text = content if isinstance(content, str) else ""
        return cls(
            endpoint,
            model if isinstance(model, str) else "",
            text,
            request_session(request, body.get("user")),
            body.get("consensus") if endpoint == "chat" else None,
        )


@dataclass(frozen=True)
class ConsensusRoute:
    """The request is answered by several models at once (demigod.gateway.consensus)."""

    target: ConsensusTarget
    category: str | None
    reason: str


class ConsensusRouted(APIError):
    """A routing rule sent `auto` to a consensus group from an endpoint that does not
    answer with several models: the client gets this 400."""

    def __init__(self, route: ConsensusRoute) -> None:
        super().__init__(
            400,
            f"model 'auto' routes to consensus group {route.target.label!r} ({route.reason}), "
            "which answers /v1/chat/completions only",
            param="model",
        )


@dataclass(frozen=True)
class Routed:
    """A request's one admission-and-routing outcome."""

    ask: Ask
    admission: Admission
    decision: RouteDecision[Target] | ConsensusRoute

    def embedded(self) -> RouteDecision[ServedModel]:
        """The decision as the routes that generate need it: an embedded model. Raises
        ConsensusRouted for a consensus group, APIError 400 for a remote model (which only
        the pass-through's endpoints reach)."""
        return embedded(self.decision)


def embedded(decision: RouteDecision[Target] | ConsensusRoute) -> RouteDecision[ServedModel]:
    """`decision` when it names a model of this process; raises as `Routed.embedded`."""
    if isinstance(decision, ConsensusRoute):
        raise ConsensusRouted(decision)
    model = decision.model
    if not isinstance(model, ServedModel):
        raise APIError(
            400, f"model {model.name!r} is served by remote replicas only", param="model"
        )
    return RouteDecision(model, decision.category, decision.reason, decision.confidence)


class FrontDoor:
    """Admits requests and decides where they go; built once at startup."""

    def __init__(
        self,
        admission: AdmissionPipeline,
        policy: RoutingPolicy[Target],
        versions: VersionRouter[Target],
        consensus_groups: Mapping[str, ConsensusGroup],
        embedded: Collection[str],
        read_tokens: ReadTokens,
    ) -> None:
        """`embedded`: the names of the models this process serves (consensus members
        must be among them). `versions`: the candidate versions, embedded or remote.
        `read_tokens`: how a chosen model reads token ids (for the steps after routing)."""
        self._admission = admission
        self._policy = policy
        self._versions = versions
        self._consensus_groups = consensus_groups
        self._embedded = embedded
        self._read_tokens = read_tokens

    async def admit(self, request: Request, ask: Ask) -> Routed:
        """Admit and route `ask`, once per request (a second call returns the first
        outcome): the admission steps, the route, then the steps that need the chosen
        model. Raises the admission steps' refusals (401, 429, 400 ...), APIError 404
        for an unknown model or version, 400 for a consensus request that cannot run or
        consensus options on a request one model answers, 403 when the principal may not
        use the model."""
        if isinstance(done := getattr(request.state, "routed", None), Routed):
            return done
        admission = await self._admission.admit(request, ask.endpoint, ask.model, ask.text)
        tenant = admission.principal.tenant
        decision: RouteDecision[Target] | ConsensusRoute
        if ask.endpoint == "chat" and (target := self._consensus(ask.model, ask.consensus)):
            decision = ConsensusRoute(target, None, "explicit consensus")
        else:
            decision = self._resolve(ask.model, ask.text, tenant, ask.session, ask.consensus)
        if ask.consensus is not None and not isinstance(decision, ConsensusRoute):
            raise APIError(  # a field that would not be honoured: refused, not dropped
                400,
                f"consensus: options of a consensus request, but model "
                f"{decision.model.name!r} answers alone",
                param="consensus",
            )
        routed = Routed(ask, admission, decision)
        request.state.routed = routed
        if isinstance(decision, RouteDecision):
            _keep(request, admission, decision)
            chosen = decision.model
            admission.read_tokens = lambda tokens: self._read_tokens(chosen, tokens)
        await self._admission.admit_routed(admission)
        return routed

    def implicit_model(self) -> str | None:
        """The model a request that names none is for (routing.policy), or None."""
        return self._policy.implicit_model()

    async def identify(self, request: Request, endpoint: Endpoint) -> Admission:
        """Admission alone, for an endpoint that names no model (/v1/models). Raises the
        admission steps' refusals."""
        return await self._admission.admit(request, endpoint, "", "")

    def member(self, request: Request, routed: Routed, name: str) -> RouteDecision[ServedModel]:
        """The decision for consensus member (or judge) `name` of an admitted request, in
        its session. Raises APIError as `admit` does."""
        tenant = routed.admission.principal.tenant
        decision = embedded(self._resolve(name, "", tenant, routed.ask.session, None))
        _keep(request, routed.admission, decision)
        return decision

    def fall_back(self, request: Request, routed: Routed, name: str) -> RouteDecision[Target]:
        """The decision for fallback model `name` of `routed` (no replica of the chosen
        model could serve), kept on the request for the routes. Raises TypeError unless
        `routed` chose one model, and APIError as `admit` does."""
        first = routed.decision
        tenant = routed.admission.principal.tenant
        found = self._resolve(name, "", tenant, routed.ask.session, None)
        if not isinstance(first, RouteDecision) or not isinstance(found, RouteDecision):
            raise TypeError("only a model falls back, and only to a model")
        reason = f"{first.reason}; fallback from {first.model.name}: no replica could serve"
        decision = RouteDecision(found.model, first.category, reason, first.confidence)
        request.state.routed = Routed(routed.ask, routed.admission, decision)
        _keep(request, routed.admission, decision)
        return decision

    def _resolve(
        self, requested: str, text: str, tenant: str, session: str | None, overrides: object
    ) -> RouteDecision[Target] | ConsensusRoute:
        name, pinned = split_pinned(requested)
        try:
            decision = self._policy.resolve(name, text, tenant)
            model = decision.model
            if pinned is not None:
                model = self._versions.pinned(model, pinned, self._policy.aliases(name))
                return replace(decision, model=model, reason="explicit model and version")
            choice = self._versions.choose(model, session)
            if choice.reason:
                reason = f"{decision.reason}; {choice.reason}"
                return replace(decision, model=choice.served, reason=reason)
            return decision
        except (UnknownModelError, UnknownVersionError) as exc:
            raise APIError(
                404, str(exc), type="not_found_error", param="model", code="model_not_found"
            ) from exc
        except RuleTargetError as exc:
            target = self._consensus(exc.target, overrides)
            if target is None:  # RoutingPolicy accepts only models and consensus groups
                raise
            return ConsensusRoute(target, exc.category, exc.reason)

    def _consensus(self, requested: str, overrides: object) -> ConsensusTarget | None:
        return resolve_target(requested, self._consensus_groups, overrides, self._embedded)


def _keep(request: Request, admission: Admission, decision: RouteDecision[Target]) -> None:
    """Keep the decision where the audit record and the refusal metrics read it, then
    refuse (403) a model the principal may not use."""
    request.state.model = decision.model
    request.state.route_decision = decision
    require_model(admission, decision.model.name)
    admission.routed_model = decision.model.name
    admission.routed_version = decision.model.version
