"""`demigod compliance report`: the EU AI Act Annex IV technical documentation inputs the
system can state about itself — models and versions served, their evaluations and the
gates they passed, lifecycle events, logging coverage (Article 12) and retention.

It gathers facts; it does not judge conformity. Parts that are not set up are reported
as such ("registry not configured"), never invented.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demigod import __version__
from demigod.compliance.article12 import ARTICLE_12, MIN_RETENTION_DAYS
from demigod.config import Settings
from demigod.security.audit.layout import find_chains, list_segments
from demigod.security.audit.records import AuditRecord, RecordFormatError
from demigod.security.audit.store import audit_root

EVENT_LIMIT = 200


@dataclass
class ComplianceReport:
    generated_at: str
    system: dict[str, Any]
    configured_models: list[dict[str, Any]]
    registry: dict[str, Any]
    gates: dict[str, Any]
    logging: dict[str, Any]
    article_12: list[dict[str, Any]]
    retention: dict[str, Any]
    gaps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_report(settings: Settings, *, verify: bool = False) -> ComplianceReport:
    """Collect what the configuration, the registry and the audit log say."""
    gaps: list[str] = []
    registry = _registry_facts(settings, gaps)
    logging_facts = _logging_facts(settings, gaps, verify=verify)
    retention_days = settings.audit.retention_days
    retention = {
        "audit_retention_days": retention_days,
        "minimum_days": MIN_RETENTION_DAYS,
        "meets_minimum": retention_days >= MIN_RETENTION_DAYS,
        "checkpoints_kept": "always (they anchor the records kept after pruning)",
    }
    if retention_days < MIN_RETENTION_DAYS:
        gaps.append(
            f"audit.retention_days is {retention_days}: below the six months "
            f"({MIN_RETENTION_DAYS} days) of Art. 19(1) / 26(6)"
        )
    return ComplianceReport(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        system={
            "name": "Phoenix DemiGod",
            "demigod_version": __version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "llama_cpp_python": _llama_cpp_version(),
        },
        configured_models=[
            {
                "name": m.name,
                "path": str(m.path),
                "version": m.version,
                "categories": m.categories,
            }
            for m in settings.models
        ],
        registry=registry,
        gates=settings.lifecycle.gates.model_dump(),
        logging=logging_facts,
        article_12=[
            {"article": r.article, "duty": r.duty, "recorded": r.recorded, "kinds": list(r.kinds)}
            for r in ARTICLE_12
        ],
        retention=retention,
        gaps=gaps,
    )


def _llama_cpp_version() -> str | None:
    try:
        import llama_cpp
    except ImportError:
        return None
    return str(llama_cpp.__version__)


def _registry_facts(settings: Settings, gaps: list[str]) -> dict[str, Any]:
    from demigod.registry import Registry, RegistryError, default_database_url

    url = settings.database_url
    if url is None:
        if not (settings.data_dir / "registry.db").is_file():
            gaps.append(
                "registry not configured: models, evaluations and lifecycle events "
                "come from the registry (demigod models register)"
            )
            return {"status": "registry not configured", "models": [], "events": []}
        url = default_database_url(settings.data_dir)
    try:
        registry = Registry(url, migrate=False)
    except (RegistryError, Exception) as exc:  # an unreachable database is a fact to report
        gaps.append(f"registry unavailable: {exc}")
        return {"status": f"registry unavailable: {exc}", "models": [], "events": []}
    try:
        models = []
        for model in registry.list_models():
            aliases = {name: a.version for name, a in registry.aliases(model.name).items()}
            versions = []
            for version in registry.list_versions(model.name):
                evaluations = registry.evaluations(model.name, version.label)
                versions.append(
                    {
                        **{
                            k: version.to_json()[k]
                            for k in (
                                "label",
                                "sha256",
                                "quantization",
                                "size_bytes",
                                "backend",
                                "status",
                                "source_uri",
                                "revision",
                                "created_at",
                            )
                        },
                        "aliases": sorted(n for n, v in aliases.items() if v == version.label),
                        "evaluations": [
                            {
                                k: e.to_json()[k]
                                for k in (
                                    "suite",
                                    "metric",
                                    "value",
                                    "threshold",
                                    "passed",
                                    "tool_versions",
                                    "created_at",
                                )
                            }
                            for e in evaluations
                        ],
                    }
                )
                if not evaluations:
                    gaps.append(f"{model.name}@{version.label} has no recorded evaluation")
            models.append({**model.to_json(), "aliases": aliases, "versions": versions})
        events = [e.to_json() for e in registry.events(limit=EVENT_LIMIT)]
    except Exception as exc:  # e.g. an old schema: report it, do not migrate from a report
        gaps.append(f"registry unreadable: {exc}")
        return {"status": f"registry unreadable: {exc}", "models": [], "events": []}
    finally:
        registry.close()
    if not models:
        gaps.append("the registry holds no models")
    return {"status": "ok", "url": _redact(url), "models": models, "events": events}


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        user = rest.split("@", 1)[0].split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{rest.split('@', 1)[1]}"
    return url


def _chain_facts(chain: Path) -> dict[str, Any]:
    segments = list_segments(chain)
    first = last = None
    if segments:
        first = _edge_record(segments[0][1], first=True)
        last = _edge_record(segments[-1][1], first=False)
    checkpoints = chain / "checkpoints.jsonl"
    count = len(checkpoints.read_bytes().splitlines()) if checkpoints.is_file() else 0
    return {
        "chain": chain.name,
        "segments": len(segments),
        "first_record": None if first is None else {"seq": first.seq, "time": first.time},
        "last_record": None if last is None else {"seq": last.seq, "time": last.time},
        "checkpoints": count,
    }


def _edge_record(path: Path, *, first: bool) -> AuditRecord | None:
    lines = [line for line in path.read_bytes().split(b"\n") if line]
    if not lines:
        return None
    try:
        return AuditRecord.from_line(lines[0] if first else lines[-1])
    except RecordFormatError:
        return None


def _logging_facts(settings: Settings, gaps: list[str], *, verify: bool) -> dict[str, Any]:
    audit = settings.audit
    root = audit_root(settings)
    facts: dict[str, Any] = {
        "enabled": audit.enabled,
        "directory": str(root),
        "format": "JSONL, one record per line, sha256 hash chain; docs/audit.md",
        "request_content": "full request body" if audit.include_text else "sha256 digest only",
        "checkpoints": {
            "every_records": audit.checkpoint_every_records,
            "every_seconds": audit.checkpoint_every_seconds,
            "signature": "Ed25519",
            "timestamp_authority": audit.tsa_url or "none configured",
        },
        "durability": "fsync before the response is sent (group commit)",
        "chains": [],
    }
    if not audit.enabled:
        gaps.append("the audit log is disabled (audit.enabled: false): Art. 12 not met")
        return facts
    if audit.tsa_url is None:
        gaps.append(
            "no RFC 3161 timestamp authority (audit.tsa_url): checkpoints are signed "
            "but not independently timestamped"
        )
    chains = find_chains(root)
    facts["chains"] = [_chain_facts(chain) for chain in chains]
    if not chains:
        gaps.append(f"no audit records yet under {root}")
    if verify and chains:
        from demigod.security.audit.verify import verify_directory

        reports = verify_directory(root)
        facts["verification"] = [
            {
                "chain": r.directory.name,
                "ok": r.ok,
                "first_bad": None if r.first_bad is None else r.first_bad.to_dict(),
            }
            for r in reports
        ]
        for r in reports:
            if not r.ok and r.first_bad is not None:
                gaps.append(
                    f"audit chain {r.directory.name} fails verification at record "
                    f"{r.first_bad.seq}: {r.first_bad.reason}"
                )
    return facts


def to_markdown(report: ComplianceReport) -> str:
    """The report as Markdown, in Annex IV's order where it applies."""
    out: list[str] = []
    add = out.append
    system = report.system
    add("# EU AI Act technical documentation inputs (Annex IV)\n")
    add(
        f"Generated {report.generated_at} by Phoenix DemiGod {system['demigod_version']}. "
        "Facts the system records about itself; the provider completes the rest of "
        "Annex IV.\n"
    )
    add("## 1. General description: software\n")
    add("| component | version |\n|---|---|")
    add(f"| demigod | {system['demigod_version']} |")
    add(f"| llama-cpp-python | {system['llama_cpp_python'] or 'not installed'} |")
    add(f"| Python | {system['python']} |")
    add(f"| platform | {system['platform']} |\n")
    add("## 2. Models and versions served\n")
    if report.configured_models:
        add("Configured in the config file (`models:`):\n")
        add("| model | version | categories | file |\n|---|---|---|---|")
        for m in report.configured_models:
            add(f"| {m['name']} | {m['version']} | {', '.join(m['categories'])} | {m['path']} |")
        add("")
    registry = report.registry
    if registry["status"] != "ok":
        add(f"**Registry: {registry['status']}.**\n")
    else:
        add(f"From the model registry ({registry['url']}):\n")
        add("| model | version | status | aliases | quantization | sha256 | source |")
        add("|---|---|---|---|---|---|---|")
        for model in registry["models"]:
            for v in model["versions"]:
                add(
                    f"| {model['name']} | {v['label']} | {v['status']} | "
                    f"{', '.join(v['aliases']) or '-'} | {v['quantization']} | "
                    f"{v['sha256'][:16]}… | {v['source_uri'] or '-'} |"
                )
        add("")
    add("## 3. Evaluations and promotion gates (Annex IV 2(g))\n")
    add("Gates a version must pass before it becomes `stable` (`lifecycle.gates`):\n")
    for name, value in report.gates.items():
        add(f"- `{name}`: {value}")
    add("")
    if registry["status"] == "ok":
        add("| model@version | suite | metric | value | threshold | passed |")
        add("|---|---|---|---|---|---|")
        rows = 0
        for model in registry["models"]:
            for v in model["versions"]:
                for e in v["evaluations"]:
                    rows += 1
                    add(
                        f"| {model['name']}@{v['label']} | {e['suite']} | {e['metric']} | "
                        f"{e['value']} | {e['threshold']} | {e['passed']} |"
                    )
        if not rows:
            add("| (none recorded) | | | | | |")
        add("")
    else:
        add(f"Evaluations: {registry['status']}.\n")
    add("## 4. Lifecycle events (Annex IV 6)\n")
    if registry["status"] != "ok":
        add(f"{registry['status']}.\n")
    elif not registry["events"]:
        add("No lifecycle events recorded.\n")
    else:
        add("| when | model | version | action | actor | reason |\n|---|---|---|---|---|---|")
        for e in registry["events"]:
            add(
                f"| {e['created_at']} | {e['model']} | {e['version'] or '-'} | {e['action']} | "
                f"{e['actor']} | {e['reason'] or '-'} |"
            )
        add("")
    logging_facts = report.logging
    add("## 5. Record-keeping: logging coverage (Article 12)\n")
    add(
        f"- Audit log: **{'enabled' if logging_facts['enabled'] else 'DISABLED'}**, "
        f"under `{logging_facts['directory']}` ({logging_facts['format']})."
    )
    add(f"- Request content: {logging_facts['request_content']}.")
    checkpoints = logging_facts["checkpoints"]
    add(
        f"- Checkpoints: Merkle root every {checkpoints['every_records']} records or "
        f"{checkpoints['every_seconds']} s, signed {checkpoints['signature']}, timestamped by "
        f"{checkpoints['timestamp_authority']}."
    )
    add(f"- Durability: {logging_facts['durability']}.\n")
    add("| Article | duty | what is recorded | record kinds |\n|---|---|---|---|")
    for r in report.article_12:
        add(f"| {r['article']} | {r['duty']} | {r['recorded']} | {', '.join(r['kinds']) or '-'} |")
    add("")
    if logging_facts["chains"]:
        add(
            "| chain | segments | first record | last record | checkpoints |\n|---|---|---|---|---|"
        )
        for c in logging_facts["chains"]:
            first = c["first_record"] or {}
            last = c["last_record"] or {}
            add(
                f"| {c['chain']} | {c['segments']} | {first.get('seq', '-')} "
                f"({first.get('time', '-')}) | {last.get('seq', '-')} ({last.get('time', '-')}) "
                f"| {c['checkpoints']} |"
            )
        add("")
    for v in logging_facts.get("verification", []):
        where = "" if v["first_bad"] is None else f" at record {v['first_bad']['seq']}"
        add(f"- Verification of `{v['chain']}`: {'ok' if v['ok'] else 'FAILED'}{where}")
    add("## 6. Retention (Articles 19(1), 26(6))\n")
    retention = report.retention
    add(
        f"- Audit records kept {retention['audit_retention_days']} days "
        f"(minimum {retention['minimum_days']}): "
        f"**{'meets' if retention['meets_minimum'] else 'BELOW'}** the six-month "
        "minimum."
    )
    add(f"- Checkpoints: kept {retention['checkpoints_kept']}.\n")
    add("## Gaps\n")
    if report.gaps:
        out.extend(f"- {gap}" for gap in report.gaps)
    else:
        add("None found.")
    return "\n".join(out) + "\n"
