"""Plot a rendered Grafana dashboard's queries from a Prometheus server into one PNG.

Grafana does not install from the registries these machines reach, so the README's
dashboard picture is drawn from the same PromQL the dashboard runs, over Prometheus's
range-query API. Usage (needs matplotlib: `pip install matplotlib`):

    python docs/plot_dashboard.py --prometheus http://127.0.0.1:9090 \\
        --dashboard deploy/observability/grafana/dashboards/demigod-models.json \\
        --minutes 10 --out docs/img/dashboard-models.png
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

# What Grafana substitutes for its variables when "All" is selected.
VARIABLES = {"$__rate_interval": "1m", '=~"$model"': '=~".+"', '=~"$tenant"': '=~".+"'}
UNIT_LABELS = {"s": "seconds", "reqps": "req/s", "percentunit": "ratio", "J": "joules"}


def expand(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def query_range(prometheus: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": expand(expr), "start": start, "end": end, "step": 5},
        timeout=30,
    )
    reply.raise_for_status()
    return list(reply.json()["data"]["result"])


def plot(prometheus: str, dashboard: dict[str, Any], minutes: float, out: Path) -> None:
    end = time.time()
    start = end - minutes * 60
    panels = dashboard["panels"]
    rows = math.ceil(len(panels) / 3)
    figure, axes = plt.subplots(rows, 3, figsize=(18, 3.6 * rows), squeeze=False)
    for axis, panel in zip(axes.flat, panels, strict=False):
        axis.set_title(panel["title"], fontsize=11, loc="left")
        unit = panel["fieldConfig"]["defaults"].get("unit", "")
        axis.set_ylabel(UNIT_LABELS.get(unit, ""), fontsize=8)
        plotted = 0
        for target in panel["targets"]:
            for series in query_range(prometheus, target["expr"], start, end):
                points = [(float(t) - end, float(v)) for t, v in series["values"]]
                points = [(t / 60, v) for t, v in points if math.isfinite(v)]
                if points:
                    xs, ys = zip(*points, strict=True)
                    axis.plot(xs, ys, label=legend(target["legendFormat"], series["metric"]))
                    plotted += 1
        if plotted:
            axis.legend(fontsize=7, loc="upper left")
        else:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
        axis.set_xlabel("minutes", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(dashboard["title"], fontsize=14, x=0.01, ha="left")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--dashboard", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    plot(args.prometheus, json.loads(args.dashboard.read_text()), args.minutes, args.out)


if __name__ == "__main__":
    main()
