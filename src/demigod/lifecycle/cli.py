"""`demigod models ...`: the model lifecycle on the command line (docs/lifecycle.md).

Every command is a thin layer over a function in demigod.lifecycle (pipeline, promote,
retire) and demigod.registry; `--json` prints the result for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from demigod.cli_support import ConfigOption, JsonOption, console, settings_or_exit
from demigod.lifecycle.serving import demo_stable_versions, open_registry

models_app = typer.Typer(
    help=(
        "The model lifecycle: pull -> convert -> quantize -> validate -> promote -> retire, "
        "recorded in the registry (docs/lifecycle.md)."
    ),
    no_args_is_help=True,
)

T = TypeVar("T")

NameArgument = Annotated[str, typer.Argument(help="model name")]
VersionArgument = Annotated[str, typer.Argument(help="version label (v3) or alias (candidate)")]
EndpointOption = Annotated[
    str | None,
    typer.Option(help="hub URL (default: HF_ENDPOINT or huggingface.co) or S3 endpoint URL"),
]
QUANT_HELP = "Q4_0, Q4_K_M, Q5_K_M or Q8_0"


def _errors() -> tuple[type[Exception], ...]:
    from demigod.errors import UnknownModelError, UnknownVersionError
    from demigod.evaluation.hemlock import HemlockError
    from demigod.lifecycle.errors import LifecycleError
    from demigod.registry import RegistryError

    return (
        LifecycleError,
        RegistryError,
        UnknownModelError,
        UnknownVersionError,
        HemlockError,
        ValueError,
        OSError,
    )


def run_step(work: Callable[[Callable[[str], None]], T], *, quiet: bool = False) -> T:
    """Run `work(progress)` under a rich progress display; a known failure becomes a red
    message and exit status 1."""
    try:
        with _progress(quiet) as progress:
            return work(progress)
    except _errors() as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str], None]]:
    if quiet or not console.is_terminal:
        yield lambda message: None if quiet else console.print(f"- {message}")
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        current: list[Any] = []

        def update(message: str) -> None:
            if current:
                bar.update(current[-1], completed=1, total=1)
            current.append(bar.add_task(message, total=None))

        yield update
        if current:
            bar.update(current[-1], completed=1, total=1)


def emit(data: Any, as_json: bool, table: Callable[[], Table] | None = None) -> None:
    if as_json or table is None:
        typer.echo(json.dumps(data, indent=None if as_json else 2, default=str))
    else:
        Console().print(table())


@models_app.command("list")
def list_models(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Registered models with their aliases and newest version."""
    settings = settings_or_exit(config)

    def work(_: Callable[[str], None]) -> list[dict[str, Any]]:
        with open_registry(settings) as registry:
            rows = []
            for model in registry.list_models():
                versions = registry.list_versions(model.name)
                rows.append(
                    {
                        **model.to_json(),
                        "aliases": {
                            name: alias.version
                            for name, alias in registry.aliases(model.name).items()
                        },
                        "versions": len(versions),
                        "latest": versions[-1].label if versions else None,
                    }
                )
            return rows

    rows = run_step(work, quiet=True)

    def table() -> Table:
        out = Table("name", "family", "aliases", "versions", "latest", "categories")
        for row in rows:
            aliases = ", ".join(f"{k}={v}" for k, v in row["aliases"].items())
            out.add_row(
                row["name"],
                row["family"] or "",
                aliases,
                str(row["versions"]),
                row["latest"] or "",
                ",".join(row["categories"]),
            )
        return out

    emit(rows, as_json, table)


@models_app.command("show")
def show(name: NameArgument, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """A model's versions, aliases, newest evaluations and lifecycle events."""
    settings = settings_or_exit(config)

    def work(_: Callable[[str], None]) -> dict[str, Any]:
        with open_registry(settings) as registry:
            versions = registry.list_versions(name)
            return {
                "model": registry.get_model(name).to_json(),
                "aliases": {k: v.to_json() for k, v in registry.aliases(name).items()},
                "versions": [v.to_json() for v in versions],
                "evaluations": {
                    v.label: [e.to_json() for e in registry.evaluations(name, v.label)]
                    for v in versions
                },
                "events": [e.to_json() for e in registry.events(name, limit=20)],
            }

    data = run_step(work, quiet=True)

    def table() -> Table:
        by_version: dict[str, list[str]] = {}
        for alias, info in data["aliases"].items():
            by_version.setdefault(info["version"], []).append(alias)
        out = Table(
            "version",
            "aliases",
            "quant",
            "size",
            "backend",
            "status",
            "ref",
            "sha256",
            title=f"{name} ({data['model']['architecture'] or 'unknown architecture'})",
        )
        for v in data["versions"]:
            out.add_row(
                v["label"],
                ",".join(by_version.get(v["label"], [])),
                v["quantization"],
                f"{v['size_bytes']:,}",
                v["backend"],
                v["status"],
                v["reference"] or "",
                v["sha256"][:12],
            )
        return out

    emit(data, as_json, table)
    if not as_json:
        events = Table("when", "who", "action", "version", "why", title="recent events")
        for event in data["events"]:
            events.add_row(
                event["created_at"][:19],
                event["actor"],
                event["action"],
                event["version"] or "",
                event["reason"] or "",
            )
        Console().print(events)


@models_app.command("register")
def register(
    name: NameArgument,
    gguf: Annotated[Path, typer.Argument(help="a local GGUF file")],
    category: Annotated[
        list[str] | None, typer.Option(help="request category it serves (repeatable)")
    ] = None,
    source: Annotated[str | None, typer.Option(help="where it came from (URI)")] = None,
    revision: Annotated[str | None, typer.Option(help="upstream revision/commit")] = None,
    licence: Annotated[str | None, typer.Option(help="licence (SPDX id)")] = None,
    reference: Annotated[
        str | None, typer.Option(help="the version it was quantized from (its F16)")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Register a local GGUF file as a new version (and `candidate`) of NAME.

    The file is hard-linked or copied into data_dir/store, verified by sha256, then
    recorded; registering the same file again returns the same version.
    """
    from demigod.lifecycle.register import register_artefact

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        progress(f"registering {gguf}")
        with open_registry(settings) as registry:
            return register_artefact(
                registry,
                settings.data_dir,
                name,
                gguf,
                categories=category,
                source_uri=source,
                revision=revision,
                licence=licence,
                reference=reference,
            ).to_json()

    emit(run_step(work, quiet=as_json), as_json)


@models_app.command("pull")
def pull_command(
    source: Annotated[
        str,
        typer.Argument(
            help="hub repo id, local folder, s3:// URI, or one GGUF of a hub repo: "
            "owner/repo/FILE.gguf or owner/repo:QUANT (as llama-server -hf)"
        ),
    ],
    revision: Annotated[str | None, typer.Option(help="branch, tag or commit")] = None,
    endpoint: EndpointOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Fetch a Hugging Face-format checkpoint, or a GGUF file ready to serve, into
    data_dir/sources (the revision pinned to a commit). Prints where it is: serve a GGUF
    with `demigod serve --model NAME=PATH` or register it (`demigod models register`)."""
    from demigod.lifecycle.pipeline import pull

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        progress(f"pulling {source}")
        pulled = pull(settings, source, revision=revision, endpoint=endpoint)
        return {
            "path": str(pulled.path),
            "source_uri": pulled.source_uri,
            "revision": pulled.revision,
        }

    emit(run_step(work, quiet=as_json), as_json)


@models_app.command("convert")
def convert_command(
    name: NameArgument,
    hf_dir: Annotated[Path, typer.Argument(help="Hugging Face checkpoint folder")],
    category: Annotated[list[str] | None, typer.Option(help="request category")] = None,
    source: Annotated[str | None, typer.Option(help="where it came from (URI)")] = None,
    revision: Annotated[str | None, typer.Option(help="upstream revision/commit")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Convert an HF checkpoint to an F16 GGUF (llama.cpp's converter) and register it.

    Architectures only the transformers backend runs are registered HF-native (slower).
    """
    from demigod.lifecycle.pipeline import convert

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        with open_registry(settings) as registry:
            return convert(
                registry,
                settings,
                name,
                hf_dir,
                source_uri=source,
                revision=revision,
                categories=category,
                progress=progress,
            ).to_json()

    emit(run_step(work, quiet=as_json), as_json)


@models_app.command("quantize")
def quantize_command(
    name: NameArgument,
    version: VersionArgument,
    qtype: Annotated[str, typer.Option("--type", help=QUANT_HELP)] = "Q4_K_M",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Quantize a GGUF version; the result becomes `candidate`, size and ratio recorded."""
    from demigod.lifecycle.pipeline import quantize

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        with open_registry(settings) as registry:
            quantized, ratio = quantize(registry, settings, name, version, qtype, progress=progress)
            return {**quantized.to_json(), "size_ratio": round(ratio, 4)}

    emit(run_step(work, quiet=as_json), as_json)


@models_app.command("validate")
def validate_command(
    name: NameArgument,
    version: VersionArgument,
    hemlock: Annotated[bool, typer.Option(help="run the Hemlock regression suite")] = True,
    lm_eval: Annotated[bool, typer.Option(help="run lm-evaluation-harness")] = True,
    against_recorded: Annotated[
        bool,
        typer.Option(
            "--against-recorded",
            help="compare with what was recorded for VERSION before; exit 1 when a metric "
            "is worse beyond lifecycle.gates' tolerance (the eval-regression workflow)",
        ),
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Perplexity (delta, KL, top-1 vs the F16 reference), Hemlock and lm-eval; results
    are recorded in the registry for the promotion gates."""
    from demigod.lifecycle.pipeline import validate
    from demigod.lifecycle.regression import latest_values, regressions

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        with open_registry(settings) as registry:
            label = registry.get_version(name, version).label
            recorded = latest_values(registry.evaluations(name, label))
            report = validate(
                registry,
                settings,
                name,
                version,
                hemlock=hemlock,
                lm_eval=lm_eval,
                progress=progress,
            )
        found = regressions(recorded, latest_values(report.results), settings.lifecycle.gates)
        return {**report.to_json(), "regressions": [r.to_json() for r in found]}

    report = run_step(work, quiet=as_json)

    def table() -> Table:
        out = Table(
            "suite", "metric", "value", "threshold", "passed", title=f"{name}@{report['version']}"
        )
        for r in report["results"]:
            passed = "" if r["passed"] is None else ("yes" if r["passed"] else "NO")
            threshold = "" if r["threshold"] is None else f"{r['threshold']:.4g}"
            out.add_row(r["suite"], r["metric"], f"{r['value']:.6g}", threshold, passed)
        for suite, why in report["skipped"].items():
            out.add_row(suite, "skipped", why, "", "")
        return out

    emit(report, as_json, table)
    if against_recorded:
        from demigod.lifecycle.regression import Regression

        for regression in report["regressions"]:
            console.print(f"[red]regression[/red] {Regression(**regression).describe()}")
        if report["regressions"]:
            raise typer.Exit(1)


@models_app.command("promote")
def promote_command(
    name: NameArgument,
    version: VersionArgument,
    to: Annotated[str, typer.Option("--to", help="alias to move")] = "stable",
    force: Annotated[bool, typer.Option(help="promote past failing gates")] = False,
    reason: Annotated[str | None, typer.Option(help="why (required with --force)")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Move alias --to (default stable) to VERSION: the only way to promote.

    For stable the gates from config must pass (lifecycle.gates: perplexity delta vs
    F16, Hemlock pass rate, lm-eval vs current stable); a refusal names the failing gate.
    Writes a release note (markdown + JSON) under data_dir/releases.
    """
    from demigod.lifecycle.promote import promote

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        progress(f"verifying and promoting {name}@{version} to {to}")
        with open_registry(settings) as registry:
            return promote(
                registry,
                settings.data_dir,
                settings.lifecycle.gates,
                name,
                version,
                to=to,
                force=force,
                reason=reason,
            ).to_json()

    emit(run_step(work, quiet=as_json), as_json)


@models_app.command("retire")
def retire_command(
    name: Annotated[str | None, typer.Argument(help="model (omit: every version due)")] = None,
    version: Annotated[str | None, typer.Argument(help="version label")] = None,
    ttl_days: Annotated[
        int | None, typer.Option(help="unused this many days [default: lifecycle config]")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="list what would retire")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Snapshot to S3 and delete locally: NAME VERSION now, or every version no alias
    points at that was neither served nor promoted for --ttl-days."""
    from demigod.lifecycle.retire import due_for_retirement, retire

    settings = settings_or_exit(config)
    ttl = ttl_days or settings.lifecycle.retire_after_days

    def work(progress: Callable[[str], None]) -> list[dict[str, Any]]:
        with open_registry(settings) as registry:
            if name is not None:
                if version is None:
                    raise ValueError("name a VERSION to retire, or neither for the TTL sweep")
                due = [registry.get_version(name, version)]
                why = "retired by hand"
            else:
                due = due_for_retirement(registry, ttl)
                why = f"unused for {ttl} days"
            if dry_run:
                return [{"model": v.model, "version": v.label, "dry_run": True} for v in due]
            done = []
            for candidate in due:
                progress(f"retiring {candidate.ref}")
                done.append(retire(registry, settings, candidate, reason=why).to_json())
            return done

    emit(run_step(work, quiet=as_json), as_json)


@models_app.command("restore")
def restore_command(
    name: NameArgument,
    version: VersionArgument,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Bring a retired version back from its snapshot; its sha256 is verified."""
    from demigod.lifecycle.retire import restore

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        progress(f"restoring {name}@{version}")
        with open_registry(settings) as registry:
            return restore(registry, settings, name, version).to_json()

    emit(run_step(work, quiet=as_json), as_json)


@models_app.command("ship")
def ship_command(
    source: Annotated[str, typer.Argument(help="hub repo id, local HF folder or s3:// URI")],
    name: Annotated[str | None, typer.Option(help="model name [default: from SOURCE]")] = None,
    quant: Annotated[str, typer.Option(help=QUANT_HELP)] = "Q4_K_M",
    revision: Annotated[str | None, typer.Option(help="upstream revision")] = None,
    endpoint: EndpointOption = None,
    category: Annotated[list[str] | None, typer.Option(help="request category")] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="promote to stable if every gate passes")
    ] = False,
    hemlock: Annotated[bool, typer.Option(help="run the Hemlock suite")] = True,
    lm_eval: Annotated[bool, typer.Option(help="run lm-evaluation-harness")] = True,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """All steps: pull, convert, quantize, validate, then stop at `candidate` (or, with
    --promote and passing gates, promote to stable). Exit 3 when --promote was refused."""
    from demigod.lifecycle.pipeline import ship

    settings = settings_or_exit(config)

    def work(progress: Callable[[str], None]) -> dict[str, Any]:
        with open_registry(settings) as registry:
            return ship(
                registry,
                settings,
                source,
                name=name,
                qtype=quant,
                revision=revision,
                endpoint=endpoint,
                promote_to_stable=promote,
                categories=category,
                hemlock=hemlock,
                lm_eval=lm_eval,
                progress=progress,
            ).to_json()

    report = run_step(work, quiet=as_json)
    emit(report, as_json)
    if report["refused"]:
        console.print(f"[yellow]stopped at candidate:[/yellow] {report['refused']}")
        raise typer.Exit(3)


@models_app.command("build-demo")
def build_demo(
    force: Annotated[bool, typer.Option(help="rebuild even when cached")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Build the demo models (train, convert, quantize Q4_0) or reuse them, and put them
    through the registry: register, validate, promote to stable."""
    settings = settings_or_exit(config)
    rows = [
        {"name": v.model, "version": v.label, "sha256": v.sha256, "path": v.storage_uri}
        for v in run_step(
            lambda progress: demo_stable_versions(
                settings, force=force, progress=progress, console=console
            )
        )
    ]

    def table() -> Table:
        out = Table("name", "stable", "sha256", "path")
        for row in rows:
            out.add_row(row["name"], row["version"], row["sha256"][:12], row["path"])
        return out

    emit(rows, as_json, table)
