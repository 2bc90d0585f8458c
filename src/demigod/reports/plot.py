"""The one-pager's figure: joules per decoded token against context for the Mamba and the
Transformer (left), and each served model's p95 latency against the target (right)."""

from __future__ import annotations

import io

from demigod.extras import require
from demigod.reports.energy import EnergyComparison
from demigod.reports.mesh import MeshFigures
from demigod.reports.one_pager import P95_TARGET_SECONDS

LABELS = {"mamba": "Mamba (SSM)", "llama": "Transformer (llama)"}
COLOURS = {"mamba": "#1b7837", "llama": "#b2182b"}
WIDTH_INCHES = 7.2
HEIGHT_INCHES = 2.5
DPI = 200


def figure_png(energy: EnergyComparison, mesh: MeshFigures) -> bytes:
    """The figure as PNG. Raises MissingExtraError without matplotlib (the report extra)."""
    matplotlib = require("matplotlib", "the one-pager's figure")
    matplotlib.use("Agg")  # files only, no display
    pyplot = require("matplotlib.pyplot", "the one-pager's figure")

    figure, (joules, latency) = pyplot.subplots(
        1, 2, figsize=(WIDTH_INCHES, HEIGHT_INCHES), gridspec_kw={"width_ratios": [3, 2]}
    )
    for model, label in LABELS.items():
        rows = sorted((r for r in energy.rows if r.model == model), key=lambda r: r.context)
        joules.plot(
            [r.context for r in rows],
            [r.decode_j_per_token for r in rows],
            marker="o",
            color=COLOURS[model],
            label=label,
        )
    headline = energy.headline
    joules.set_xscale("log", base=2)
    joules.set_yscale("log")
    joules.set_xlabel("context (tokens)", fontsize=8)
    joules.set_ylabel("J per decoded token", fontsize=8)
    joules.set_title(
        f"{headline.decode_j_per_token:.1f}x less energy per token at {headline.context:,}",
        fontsize=9,
    )
    joules.tick_params(labelsize=7)
    joules.grid(alpha=0.3, which="both")
    joules.legend(fontsize=7)

    served = [m for m in mesh.models if m.p95_seconds is not None]
    latency.barh([m.model for m in served], [m.p95_seconds or 0.0 for m in served], color="#2166ac")
    latency.axvline(P95_TARGET_SECONDS, color="#b2182b", linestyle="--", linewidth=1)
    latency.text(
        P95_TARGET_SECONDS, -0.6, f" target {P95_TARGET_SECONDS:g} s", color="#b2182b", fontsize=7
    )
    latency.set_xlabel("p95 latency (s)", fontsize=8)
    latency.set_title("p95 latency per model", fontsize=9)
    latency.tick_params(labelsize=7)
    latency.grid(alpha=0.3, axis="x")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    pyplot.close(figure)
    return out.getvalue()
