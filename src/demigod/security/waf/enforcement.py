"""The screen on the gateway's request path: which parts of a request are read, and what
a tenant's action (block, flag, log) does with the verdict.

An admission step (api/admission.py): runs after authentication and quotas (the
tenant is the authenticated principal's) and before routing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from demigod.api.admission import Admission
from demigod.api.errors import APIError
from demigod.config import WafAction, WafConfig
from demigod.observability.metrics import Metrics
from demigod.protocol import ChatMessage
from demigod.security.waf.rules import RULES_BY_ID
from demigod.security.waf.screen import PromptScreen, Segment, Verdict

log = logging.getLogger(__name__)

WAF_HEADER = "x-demigod-waf"
ERROR_CODE = "prompt_injection"
MODEL_RULE = "model"  # the metric's `rule` label when only the learned model fired


def chat_segments(messages: list[ChatMessage], roles: Iterable[str]) -> list[Segment]:
    """The messages of the screened roles, each a segment named `messages[i]`."""
    screened = set(roles)
    return [
        Segment(f"messages[{index}]", message.text())
        for index, message in enumerate(messages)
        if message.role in screened
    ]


async def request_segments(admission: Admission, roles: Iterable[str]) -> list[Segment]:
    """What the screen reads of a completion request: the screened chat messages, or the
    text prompt. The body was parsed and validated by the route already (cached)."""
    if admission.endpoint == "text":
        return [Segment("prompt", admission.text)]
    body = await admission.request.json()
    messages = [ChatMessage.model_validate(message) for message in body.get("messages", [])]
    return chat_segments(messages, roles)


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
        self.screen = PromptScreen(threshold=config.threshold, max_chars=config.max_chars)
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
        """Records the verdict in `admission.verdicts["screen"]` (allow, block, flag, log);
        a flag adds the `x-demigod-waf` header. Raises APIError(400, code
        prompt_injection) when the tenant's action is block."""
        if not self._config.enabled or not admission.is_completion:
            return
        segments = await request_segments(admission, self._config.roles)
        verdict = await asyncio.to_thread(self.screen.screen, segments)
        admission.request.state.waf_verdict = verdict
        if not verdict.blocked:
            admission.verdicts["screen"] = "allow"
            return
        tenant = admission.principal.tenant
        action = self.action_for(tenant)
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
                block_message(verdict, self.screen.threshold, tenant),
                param=verdict.sources[0].split(":")[0] if verdict.sources else None,
                code=ERROR_CODE,
            )
        for label in labels:
            self._metrics.waf_flagged.labels(label, action).inc()
        if action == "flag":
            admission.response_headers[WAF_HEADER] = flag_header(verdict, self.screen.threshold)
