"""The lifecycle steps as functions over the registry: pull, convert, quantize, validate,
ship. The CLI (`demigod models ...`) is a thin layer over these.

Each step reads its input version from the registry, verifies its sha256, writes its
output atomically and registers it; a re-run after a crash finds the finished output
(same content, same version) and goes on from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demigod.config import Settings
from demigod.errors import UnknownModelError, UnknownVersionError
from demigod.evaluation.hemlock import load_suite, run_suite
from demigod.evaluation.result import EvaluationResult
from demigod.lifecycle.architectures import detect
from demigod.lifecycle.artefacts import file_uri, is_alive, local_path, verify
from demigod.lifecycle.lm_eval import run_lm_eval
from demigod.lifecycle.pull import pull as fetch_source
from demigod.lifecycle.register import register_artefact
from demigod.registry import Registry, RegistryError, VersionInfo

SOURCES_DIR = "sources"
WORK_DIR = "work"
VALIDATION_SERVER_TIMEOUT = 120.0

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Pulled:
    path: Path
    source_uri: str
    revision: str | None


def pull(
    settings: Settings, source: str, *, revision: str | None = None, endpoint: str | None = None
) -> Pulled:
    """Fetch `source` (hub repo id, local folder, s3:// URI) into data_dir/sources (a local
    folder is used where it is). Raises PullError."""
    pulled = fetch_source(
        source, settings.data_dir / SOURCES_DIR, revision=revision, endpoint=endpoint
    )
    return Pulled(Path(pulled.path), str(pulled.source_uri), pulled.revision)


def convert(
    registry: Registry,
    settings: Settings,
    name: str,
    hf_dir: Path,
    *,
    source_uri: str | None = None,
    revision: str | None = None,
    categories: list[str] | None = None,
    licence: str | None = None,
    progress: Progress = _quiet,
) -> VersionInfo:
    """Convert the HF folder to an F16 GGUF and register it (no alias: it is the reference
    quantizations are measured against). A model only the transformers backend runs is
    registered as an HF-native version instead (slower; see docs/lifecycle.md)."""
    from demigod.lifecycle.convert import convert_hf_to_gguf
    from demigod.lifecycle.toolkit import ensure_toolkit

    family, architecture, backend = _architecture(hf_dir)
    parameter_count = _parameter_count(hf_dir)
    common: dict[str, Any] = {
        "source_uri": source_uri or file_uri(hf_dir),
        "revision": revision,
        "architecture": architecture,
        "family": family,
        "parameter_count": parameter_count,
        "categories": categories,
        "licence": licence,
    }
    if backend == "transformers":
        progress("registering as an HF-native version (transformers backend: slower)")
        return register_artefact(
            registry,
            settings.data_dir,
            name,
            hf_dir,
            backend="transformers",
            candidate=False,
            details={"note": "served by the transformers engine: slower than llama.cpp"},
            **common,
        )
    progress("converting to GGUF F16 (llama.cpp converter)")
    toolkit = ensure_toolkit(settings.data_dir)
    with _work_dir(settings) as work:
        gguf = convert_hf_to_gguf(hf_dir, work / f"{name}.F16.gguf", toolkit)
        progress("registering F16")
        return register_artefact(registry, settings.data_dir, name, gguf, candidate=False, **common)


def quantize(
    registry: Registry,
    settings: Settings,
    name: str,
    version: str,
    qtype: str,
    *,
    progress: Progress = _quiet,
) -> tuple[VersionInfo, float]:
    """Quantize `version` (an F16/F32/BF16 GGUF) to `qtype`, register the result with
    `version` as its reference and point `candidate` at it. Returns it and its size
    ratio to the source."""
    from demigod.lifecycle.quantize import quantize_gguf

    source = registry.get_version(name, version)
    if source.backend != "llama.cpp":
        raise RegistryError(f"{source.ref} is {source.backend}-native; only GGUF quantizes")
    path = verify(local_path(source.storage_uri), source.sha256)
    progress(f"quantizing {source.ref} ({source.quantization}) to {qtype}")
    with _work_dir(settings) as work:
        out = work / f"{name}.{qtype}.gguf"
        result = quantize_gguf(path, out, qtype, threads=settings.engine.n_threads)
        progress("registering")
        quantized = register_artefact(
            registry,
            settings.data_dir,
            name,
            out,
            quantization=qtype,
            source_uri=source.source_uri,
            revision=source.revision,
            reference=source.label,
            details={"size_ratio": round(result.ratio, 4), "quantized_from": source.label},
        )
    return quantized, result.ratio


@dataclass
class ValidationReport:
    version: VersionInfo
    results: list[EvaluationResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    hemlock_failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "version": self.version.label,
            "results": [
                {
                    "suite": r.suite,
                    "metric": r.metric,
                    "value": r.value,
                    "threshold": r.threshold,
                    "passed": r.passed,
                    "tool_versions": r.tool_versions,
                }
                for r in self.results
            ],
            "skipped": self.skipped,
            "seconds": self.seconds,
            "hemlock_failures": self.hemlock_failures,
        }


def validate(
    registry: Registry,
    settings: Settings,
    name: str,
    version: str,
    *,
    hemlock: bool = True,
    lm_eval: bool = True,
    progress: Progress = _quiet,
) -> ValidationReport:
    """Measure `version`: perplexity (and delta, KL, top-1 agreement vs its F16
    reference), the Hemlock suite and lm-evaluation-harness against the product's own
    server running the version. Results go into the registry; a measure that does not
    apply (perplexity of a non-GGUF version) is reported in `skipped`."""
    target = registry.get_version(name, version)
    path = verify(local_path(target.storage_uri), target.sha256)
    reference_path: Path | None = None
    if target.reference is not None:
        reference = registry.get_version(name, target.reference)
        reference_path = verify(local_path(reference.storage_uri), reference.sha256)
    report = ValidationReport(target)
    config = settings.lifecycle
    text = _validation_text(settings)
    started = time.perf_counter()
    if target.backend == "llama.cpp":
        progress("perplexity" + (f" vs {target.reference}" if reference_path else ""))
        report.results += _perplexity_results(settings, path, reference_path, text)
        report.seconds["perplexity"] = round(time.perf_counter() - started, 2)
    else:
        report.skipped["perplexity"] = "perplexity is measured on GGUF versions only"
    if hemlock or lm_eval:
        with _served(settings, name, path) as base_url:
            if hemlock:
                progress("Hemlock suite")
                started = time.perf_counter()
                suite = load_suite(config.hemlock_suite)  # None: the shipped suite
                hemlock_report = asyncio.run(run_suite(suite, base_url, name))
                report.results += list(
                    hemlock_report.results(min_pass_rate=config.gates.min_hemlock_pass_rate)
                )
                report.hemlock_failures = [
                    {"id": case.id, "failures": case.failures, "error": case.error}
                    for case in hemlock_report.failed
                ]
                report.seconds["hemlock"] = round(time.perf_counter() - started, 2)
            if lm_eval:
                progress("lm-evaluation-harness")
                started = time.perf_counter()
                report.results += list(run_lm_eval(base_url, name, config.lm_eval_tasks))
                report.seconds["lm_eval"] = round(time.perf_counter() - started, 2)
    registry.record_evaluations(
        name,
        target.label,
        report.results,
        details={"skipped": report.skipped, "hemlock_failures": report.hemlock_failures},
    )
    return report


def _perplexity_results(
    settings: Settings, path: Path, reference: Path | None, text: str
) -> list[EvaluationResult]:
    from demigod.lifecycle.validation import validate_gguf

    config = settings.lifecycle
    return validate_gguf(
        path,
        reference,
        text=text,
        n_ctx=config.validation_n_ctx,
        stride=config.validation_stride,
        max_tokens=config.validation_max_tokens,
        threads=settings.engine.n_threads,
        max_perplexity_delta=config.gates.max_perplexity_delta if reference else None,
    )


def _validation_text(settings: Settings) -> str:
    configured = settings.lifecycle.validation_text
    if configured is not None:
        return configured.read_text(encoding="utf-8")
    from demigod.lifecycle.corpora import load_corpus

    return load_corpus("prose", max_train_chars=0, max_held_out_chars=30_000).held_out_text()


@contextlib.contextmanager
def _served(settings: Settings, name: str, gguf: Path) -> Iterator[str]:
    """`demigod serve` for just this file on a free port; yields its base URL."""
    from demigod.processes import ServerNotReadyError, free_port, wait_until_ready

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="demigod-validate-") as scratch:
        log = Path(scratch) / "server.log"
        env = {
            **os.environ,
            "DEMIGOD_DATA_DIR": str(Path(scratch) / "data"),
            # A private loopback server for the suites: no tenants, no keys.
            "DEMIGOD_SECURITY__AUTH": "off",
        }
        if settings.engine.n_threads is not None:
            env["DEMIGOD_ENGINE__N_THREADS"] = str(settings.engine.n_threads)
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*_serve_command(port), "--model", f"{name}={gguf}"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=scratch,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(process, f"{base_url}/readyz", timeout=VALIDATION_SERVER_TIMEOUT)
        except ServerNotReadyError as exc:
            raise RegistryError(f"validation server failed: {exc}\n{log.read_text()}") from exc
        try:
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "demigod", "serve", "--port", str(port)]


@contextlib.contextmanager
def _work_dir(settings: Settings) -> Iterator[Path]:
    """Scratch space on the data dir's filesystem (so the store can hard-link)."""
    root = settings.data_dir / WORK_DIR
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("*-*"):  # left by a killed step: PID-prefixed, process gone
        pid = stale.name.split("-", 1)[0]
        if pid.isdigit() and not is_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f"{os.getpid()}-") as work:
        yield Path(work)


def _architecture(hf_dir: Path) -> tuple[str | None, str | None, str]:
    """(family, HF class, backend) of the checkpoint."""
    found = detect(hf_dir)
    return found.family, found.hf_class, found.backend


def _parameter_count(hf_dir: Path) -> int | None:
    """Parameters in the checkpoint's safetensors files (their headers only)."""
    import json
    import struct

    total = 0
    files = sorted(hf_dir.glob("*.safetensors"))
    for file in files:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for key, tensor in header.items():
            if key == "__metadata__":
                continue
            count = 1
            for dim in tensor["shape"]:
                count *= int(dim)
            total += count
    return total or None


@dataclass
class ShipReport:
    """What `ship` did: each step's output and seconds, and where it stopped."""

    name: str
    steps: dict[str, float] = field(default_factory=dict)
    reference: VersionInfo | None = None
    version: VersionInfo | None = None
    size_ratio: float | None = None
    validation: ValidationReport | None = None
    promoted: bool = False
    stopped_at: str = "candidate"
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reference": self.reference.label if self.reference else None,
            "version": self.version.label if self.version else None,
            "quantization": self.version.quantization if self.version else None,
            "size_bytes": self.version.size_bytes if self.version else None,
            "size_ratio": self.size_ratio,
            "validation": self.validation.to_json() if self.validation else None,
            "promoted": self.promoted,
            "stopped_at": self.stopped_at,
            "refused": self.refused,
            "step_seconds": self.steps,
        }


def ship(
    registry: Registry,
    settings: Settings,
    source: str,
    *,
    name: str | None = None,
    qtype: str = "Q4_K_M",
    revision: str | None = None,
    endpoint: str | None = None,
    promote_to_stable: bool = False,
    categories: list[str] | None = None,
    hemlock: bool = True,
    lm_eval: bool = True,
    progress: Progress = _quiet,
) -> ShipReport:
    """pull -> convert -> quantize -> validate -> (promote). Stops at `candidate` unless
    `promote_to_stable` and every gate passes (a refusal is reported, not raised)."""
    from demigod.lifecycle.promote import PromotionRefused, promote

    model = name or _default_name(source)
    report = ShipReport(model)

    def step(label: str) -> Any:
        class _Timer:
            def __enter__(self) -> None:
                progress(label)
                self.started = time.perf_counter()

            def __exit__(self, *exc: object) -> None:
                report.steps[label] = round(time.perf_counter() - self.started, 2)

        return _Timer()

    with step("pull"):
        pulled = pull(settings, source, revision=revision, endpoint=endpoint)
    with step("convert"):
        report.reference = convert(
            registry,
            settings,
            model,
            pulled.path,
            source_uri=pulled.source_uri,
            revision=pulled.revision,
            categories=categories,
            progress=progress,
        )
    if report.reference.backend == "llama.cpp":
        with step("quantize"):
            report.version, report.size_ratio = quantize(
                registry, settings, model, report.reference.label, qtype, progress=progress
            )
    else:
        report.version = report.reference
        registry.move_alias(model, "candidate", report.version.label, reason="shipped")
    with step("validate"):
        report.validation = validate(
            registry,
            settings,
            model,
            report.version.label,
            hemlock=hemlock,
            lm_eval=lm_eval,
            progress=progress,
        )
    if promote_to_stable:
        with step("promote"):
            try:
                promote(
                    registry,
                    settings.data_dir,
                    settings.lifecycle.gates,
                    model,
                    report.version.label,
                    reason=f"ship {source}",
                )
                report.promoted, report.stopped_at = True, "stable"
            except PromotionRefused as exc:
                report.refused = str(exc)
    return report


def _default_name(source: str) -> str:
    stem = source.rstrip("/").rsplit("/", 1)[-1]
    return stem.removesuffix("-hf") or "model"


DEMO_FORCE_REASON = "demo model: trained in minutes on this machine, gates recorded not enforced"


def register_demo_models(
    registry: Registry,
    settings: Settings,
    demos: list[Any],
    *,
    progress: Progress = _quiet,
) -> list[VersionInfo]:
    """Put built demo models (lifecycle.demo.DemoModel) through the pipeline: register
    the F16 and the quantized GGUF, validate, promote to stable. A demo whose stable
    already is this file is left alone. The toy models miss real quality gates, so a
    refused promotion is forced with DEMO_FORCE_REASON (recorded as forced)."""
    from demigod.lifecycle.artefacts import sha256_file
    from demigod.lifecycle.promote import PromotionRefused, promote
    from demigod.registry import STABLE

    stable: list[VersionInfo] = []
    for demo in demos:
        sha256 = sha256_file(demo.gguf_path)
        with contextlib.suppress(RegistryError, UnknownModelError, UnknownVersionError):
            current = registry.get_version(demo.name, STABLE)
            if current.sha256 == sha256 and current.status == "ready":
                stable.append(current)
                continue
        progress(f"{demo.name}: register")
        f16 = demo.gguf_path.with_name(f"{demo.name}.F16.gguf")
        common: dict[str, Any] = {
            "categories": [demo.category],
            "licence": "Apache-2.0",
            "source_uri": f"demigod-demo:{demo.name}",
        }
        reference = (
            register_artefact(
                registry, settings.data_dir, demo.name, f16, candidate=False, **common
            )
            if f16.is_file()
            else None
        )
        version = register_artefact(
            registry,
            settings.data_dir,
            demo.name,
            demo.gguf_path,
            reference=reference.label if reference else None,
            **common,
        )
        progress(f"{demo.name}: validate")
        validate(registry, settings, demo.name, version.label, lm_eval=False, progress=progress)
        progress(f"{demo.name}: promote")
        gates = settings.lifecycle.gates
        try:
            promote(registry, settings.data_dir, gates, demo.name, version.label)
        except PromotionRefused:
            promote(
                registry,
                settings.data_dir,
                gates,
                demo.name,
                version.label,
                force=True,
                reason=DEMO_FORCE_REASON,
            )
        stable.append(registry.get_version(demo.name, STABLE))
    return stable
