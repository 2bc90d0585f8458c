"""The screen on the gateway's request path: which parts of a request are read, and what
a tenant's action (block, flag, log) does with the verdict.

An admission step (api/admission.py): runs after authentication and quotas (the
tenant is the authenticated principal's) and before routing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from demigod.api.admission import Admission
from demigod.api.errors import APIError
from demigod.config import ScreenedRole, WafAction, WafConfig
from demigod.observability.metrics import Metrics
from demigod.protocol import content_text, readable_prompt, text_of_prompt, token_prompts
from demigod.security.waf.rules import RULES_BY_ID
from demigod.security.waf.screen import PromptScreen, Segment, Verdict

log = logging.getLogger(__name__)

WAF_HEADER = "x-demigod-waf"
ERROR_CODE = "prompt_injection"
MODEL_RULE = "model"  # the metric's `rule` label when only the learned model fired


KNOWN_ROLES = frozenset(get_args(ScreenedRole))
# The JSON Schema keywords whose values are prose or literals a template renders: read.
_SCHEMA_TEXT_KEYS = frozenset({"description", "title", "enum", "const", "default", "examples"})


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def schema_text(schema: object) -> list[str]:
    """The prose of a JSON Schema (a tool's parameters): descriptions, titles, property
    names and literal values (enum, const, default, examples), at any depth."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in _SCHEMA_TEXT_KEYS:
                found += _strings(value)
            if key == "properties" and isinstance(value, dict):
                found += [name for name in value if isinstance(name, str)]
            found += schema_text(value)
    elif isinstance(schema, list):
        found += [text for item in schema for text in schema_text(item)]
    return found


def message_text(message: Mapping[str, Any]) -> str:
    """Everything a chat template may show the model of one message: its name, content
    (every part's text), refusal, and the names and arguments of its tool calls."""
    texts = [*_strings(message.get("name")), content_text(message.get("content"))]
    texts += _strings(message.get("refusal"))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            texts += _strings(function.get("name")) + _strings(function.get("arguments"))
    return "\n".join(text for text in texts if text)


def tool_text(tool: object) -> str:
    """What a template renders of one tool definition: the function's name, description
    and the prose of its parameters' schema."""
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict):
        return ""
    texts = _strings(function.get("name")) + _strings(function.get("description"))
    return "\n".join(texts + schema_text(function.get("parameters")))


def chat_segments(body: Mapping[str, Any], roles: Iterable[str], *, tools: bool) -> list[Segment]:
    """What the screen reads of a chat body (validated or not: the pass-through forwards
    bodies it does not validate): each message of a screened role, or of a role it does
    not know (a legacy `function` result), as `messages[i]`, and with `tools` each tool
    definition as `tools[i]`. Raises APIError 400 for a message whose content it cannot
    read (neither text nor a list of parts)."""
    screened = set(roles)
    messages = body.get("messages")
    segments = []
    for index, message in enumerate(messages if isinstance(messages, list) else ()):
        if not isinstance(message, dict):
            continue  # not a message: refused by whoever validates the body
        role = message.get("role")
        if role in screened or role not in KNOWN_ROLES:
            if not isinstance(message.get("content"), str | list | None):
                where = f"messages[{index}].content"
                raise APIError(400, f"{where}: text or a list of parts is required", param=where)
            segments.append(Segment(f"messages[{index}]", message_text(message)))
    definitions = body.get("tools") if tools else None
    for index, tool in enumerate(definitions if isinstance(definitions, list) else ()):
        segments.append(Segment(f"tools[{index}]", tool_text(tool)))
    return segments


def prompt_segments(body: Mapping[str, Any]) -> list[Segment] | None:
    """What the screen reads of a text completion before routing: the prompt's text;
    None for a prompt holding token ids, which is read (all of it) once the model that
    reads them is chosen. Raises APIError 400 for a prompt the screen cannot read
    (neither text nor token ids)."""
    prompt = body.get("prompt")
    if not readable_prompt(prompt):
        raise APIError(
            400,
            "prompt: a string, token ids, or a list of those is required",
            param="prompt",
        )
    return None if token_prompts(prompt) else [Segment("prompt", text_of_prompt(prompt))]


def rule_labels(verdict: Verdict) -> list[str]:
    return list(verdict.rules) or [MODEL_RULE]


def reasons(verdict: Verdict, threshold: float) -> str:
    """What decided, in words: each matched rule's id and name, or the model's score
    against the threshold; and where in the request."""
    said = [f'{rule} "{RULES_BY_ID[rule].name}"' for rule in verdict.rules if rule in RULES_BY_ID]
    if not said:
        said = [f"model score {verdict.model_score:.2f} >= threshold {threshold:.2f}"]
    where = ", ".join(verdict.sources) or "the request"
    return f"{'; '.join(said)} (in {where}; rule set {verdict.ruleset})"


def block_message(verdict: Verdict, threshold: float, tenant: str) -> str:
    """The 400's message: what blocked, and how an operator serves such requests."""
    return (
        f"request blocked by the prompt-injection screen: {reasons(verdict, threshold)}. "
        f"If this is ordinary work, an operator can serve tenant '{tenant}' with a "
        f"header instead of a block: waf.tenant_actions: {{{tenant}: flag}} (or log) in "
        f'mesh.yaml, or DEMIGOD_WAF__TENANT_ACTIONS=\'{{"{tenant}": "flag"}}\''
    )


def flag_header(verdict: Verdict, threshold: float) -> str:
    """`x-demigod-waf` on a flagged request: the verdict and why, on one header line."""
    why = reasons(verdict, threshold).replace('"', "'")
    return (
        f'flagged; rules={",".join(rule_labels(verdict))}; score={verdict.score:.2f}; why="{why}"'
    )


class RequestScreen:
    """The `screen` admission step: screens a completion request and applies the tenant's
    action (after auth and quota, before routing)."""

    def __init__(self, config: WafConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self.screen = PromptScreen(
            threshold=config.threshold,
            block_threshold=config.block_threshold,
            max_chars=config.max_chars,
        )
        if config.enabled:  # every rule's block count exists from the start, at 0
            for rule in [*RULES_BY_ID, MODEL_RULE]:
                metrics.waf_blocked.labels(rule)

    def warm(self) -> None:
        """Train the model now (startup), not on the first request."""
        if self._config.enabled:
            self.screen.model()

    def action_for(self, tenant: str) -> WafAction:
        return self._config.tenant_actions.get(tenant, self._config.default_action)

    async def admit(self, admission: Admission) -> None:
        """The `screen` step, before routing: screens the messages, tools or prompt text.
        Records the verdict in `admission.verdicts["screen"]` (allow, block, flag, log);
        a flag adds the `x-demigod-waf` header. Raises APIError(400, code
        prompt_injection) when the tenant's action is block, 400 for a prompt it cannot
        read."""
        if not self._config.enabled or not admission.is_completion:
            return
        body = await admission.request.json()
        if admission.endpoint == "chat":
            await self._apply(
                admission, chat_segments(body, self._config.roles, tools=self._config.tools)
            )
        elif (segments := prompt_segments(body)) is not None:
            await self._apply(admission, segments)
        # else token ids: admit_token_prompt screens the whole prompt once routed

    async def admit_token_prompt(self, admission: Admission) -> None:
        """The `screen-tokens` step, once the model is chosen: a prompt given as token ids
        is read as text by that model (admission.read_tokens) and screened as `admit`
        screens text, before any generation. Raises as `admit`, and APIError 400 when
        nothing can read the token ids."""
        if not self._config.enabled or admission.endpoint != "text":
            return
        prompts = token_prompts((await admission.request.json()).get("prompt"))
        if not prompts:
            return
        if admission.read_tokens is None:
            raise APIError(
                400,
                "prompt: token ids can be sent to one model only (they are read as text "
                "for the prompt-injection screen)",
                param="prompt",
            )
        texts = [await admission.read_tokens(tokens) for tokens in prompts]
        admission.text = "\n".join(text for text in [admission.text, *texts] if text)
        await self._apply(admission, [Segment("prompt", admission.text)])

    async def _apply(self, admission: Admission, segments: list[Segment]) -> None:
        verdict = await asyncio.to_thread(self.screen.screen, segments)
        admission.request.state.waf_verdict = verdict
        if not verdict.suspected:
            admission.verdicts["screen"] = "allow"
            return
        tenant = admission.principal.tenant
        action = self.action_for(tenant)
        if action == "block" and not verdict.blocked:
            action = "flag"  # the model alone, below waf.block_threshold: served, with a header
        admission.verdicts["screen"] = action
        labels = rule_labels(verdict)
        log.warning(
            "prompt injection suspected",
            extra={
                "waf_action": action,
                "waf_rules": labels,
                "waf_score": verdict.score,
                "waf_model_score": verdict.model_score,
                "waf_sources": list(verdict.sources),
                "waf_ruleset": verdict.ruleset,
                "tenant": tenant,
            },
        )
        if action == "block":
            for label in labels:
                self._metrics.waf_blocked.labels(label).inc()
            raise APIError(
                400,
                block_message(verdict, self.screen.block_threshold, tenant),
                param=verdict.sources[0].split(":")[0] if verdict.sources else None,
                code=ERROR_CODE,
            )
        for label in labels:
            self._metrics.waf_flagged.labels(label, action).inc()
        if action == "flag":
            admission.response_headers[WAF_HEADER] = flag_header(verdict, self.screen.threshold)
