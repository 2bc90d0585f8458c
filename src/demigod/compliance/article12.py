"""What the audit log records, mapped to EU AI Act Article 12 (record-keeping) and the
log retention duties of Articles 19(1) and 26(6). Kept as data, so the report and
docs/audit.md say the same thing."""

from __future__ import annotations

from dataclasses import dataclass

MIN_RETENTION_DAYS = 183  # "at least six months" (Art. 19(1), Art. 26(6))


@dataclass(frozen=True)
class Requirement:
    article: str
    duty: str
    recorded: str  # what the system records for it
    kinds: tuple[str, ...]  # the audit record kinds that carry it


ARTICLE_12 = (
    Requirement(
        "12(1)",
        "automatic recording of events over the lifetime of the system",
        "one hash-chained record per API request (answered or refused) and per lifecycle "
        "and admin event, sealed by signed, RFC 3161-timestamped Merkle checkpoints",
        ("request", "gateway.start", "gateway.stop", "lifecycle.*", "key.*"),
    ),
    Requirement(
        "12(2)(a)",
        "identify situations that may present a risk or a substantial modification",
        "refusals with their reason (auth, quota, prompt-injection screen verdicts, error "
        "code), server errors (status 5xx), model promotions, rollbacks and retirements",
        ("request", "lifecycle.*"),
    ),
    Requirement(
        "12(2)(b)",
        "facilitate post-market monitoring (Art. 72)",
        "model and version of every answer, its status and timestamps; `demigod audit "
        "export` hands a verifiable time range to the provider or an auditor",
        ("request",),
    ),
    Requirement(
        "12(2)(c)",
        "monitor the operation by deployers (Art. 26(5))",
        "who asked (subject, tenant, auth method), which route was taken, when the "
        "request arrived and was decided; start and stop of every gateway process",
        ("request", "gateway.start", "gateway.stop"),
    ),
    Requirement(
        "12(3)(a)",
        "period of each use (remote biometric identification systems only)",
        "gateway.start / gateway.stop records and each request's timestamps",
        ("gateway.start", "gateway.stop", "request"),
    ),
    Requirement(
        "12(3)(c)",
        "input data (remote biometric identification systems only)",
        "sha256 of every request body; the body itself only with audit.include_text",
        ("request",),
    ),
    Requirement(
        "19(1), 26(6)",
        "keep automatically generated logs at least six months",
        "segments are deleted only after audit.retention_days (default 183) and only "
        "once sealed by a checkpoint, which stays to anchor the rest",
        (),
    ),
)
