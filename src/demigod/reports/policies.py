"""The EU AI Act policies a one-pager states: what the compliance report
(demigod.compliance) finds about record-keeping, retention and model promotion, and the
request-path controls the configuration turns on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from demigod.compliance.report import ComplianceReport
from demigod.config import Settings


@dataclass(frozen=True)
class ServedVersion:
    """A registered model's stable version and the evaluations recorded for it."""

    model: str
    version: str
    evaluations: int
    failed: int  # evaluations with a threshold that did not pass


@dataclass(frozen=True)
class Policies:
    audit_log: bool
    request_content: str
    timestamp_authority: str
    retention_days: int
    retention_minimum_days: int
    retention_meets_minimum: bool
    authentication: str
    prompt_injection_screen: str
    promotion_gates: dict[str, Any]
    stable_versions: list[ServedVersion]
    article_12: list[dict[str, str]]  # article and duty, each covered by the audit log
    gaps: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def policies(report: ComplianceReport, settings: Settings) -> Policies:
    """The one-pager's policies from a compliance report and the settings it was built on."""
    logging_facts = report.logging
    retention = report.retention
    waf = settings.waf
    stable = []
    for model in report.registry.get("models", []):
        for version in model["versions"]:
            if "stable" in version["aliases"]:
                evaluations = version["evaluations"]
                stable.append(
                    ServedVersion(
                        model=model["name"],
                        version=version["label"],
                        evaluations=len(evaluations),
                        failed=sum(1 for e in evaluations if e["passed"] is False),
                    )
                )
    return Policies(
        audit_log=bool(logging_facts["enabled"]),
        request_content=str(logging_facts["request_content"]),
        timestamp_authority=str(logging_facts["checkpoints"]["timestamp_authority"]),
        retention_days=int(retention["audit_retention_days"]),
        retention_minimum_days=int(retention["minimum_days"]),
        retention_meets_minimum=bool(retention["meets_minimum"]),
        authentication=settings.security.auth,
        prompt_injection_screen=f"on, {waf.default_action}" if waf.enabled else "off",
        promotion_gates=dict(report.gates),
        stable_versions=stable,
        article_12=[{"article": r["article"], "duty": r["duty"]} for r in report.article_12],
        gaps=list(report.gaps),
    )
