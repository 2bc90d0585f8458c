"""`demigod report one-pager` from a live server, directly and through a real Prometheus:
each figure on the page against its source — Prometheus's own histogram_quantile, the
recorded energy comparison, `demigod compliance report` — and the PDF read back with
poppler (one A4 page, the figures in its text, an image that is not blank)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from demigod.reports.energy import EnergyComparison
from demigod.reports.render import joules, rate, ratio, seconds
from tests.conftest import (
    Server,
    require_binary,
    running_prometheus,
    start_server,
    stop_server,
)

REQUESTS = 12
WAIT = 60.0
CONFIG = """
observability:
  deep_probe_interval_seconds: 0
audit:
  retention_days: 200
"""


@pytest.fixture(scope="module")
def mesh(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own (nothing else sends it requests), after REQUESTS completions of
    different lengths, so the latencies spread over several buckets."""
    workdir = tmp_path_factory.mktemp("one-pager")
    server = start_server([f"tiny={tiny_model}"], workdir, config=CONFIG)
    try:
        send_completions(server, REQUESTS)
        yield server
    finally:
        stop_server(server)


def send_completions(server: Server, count: int) -> None:
    for i in range(count):
        reply = httpx.post(
            f"{server.url}/v1/completions",
            json={"model": "tiny", "prompt": f"figure {i}", "max_tokens": 1 + 4 * i,
                  "ignore_eos": True},
            timeout=60,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text


def wait_for_requests(prometheus: str, count: int) -> None:
    """Until Prometheus has stored `count` requests of the server."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        reply = httpx.get(
            f"{prometheus}/api/v1/query",
            params={"query": "sum(demigod_requests_total)"},
            timeout=10,
        ).json()["data"]["result"]
        if reply and float(reply[0]["value"][1]) == count:
            return
        time.sleep(0.5)
    pytest.fail(f"Prometheus did not store the server's {count} requests")


def environment(server: Server) -> dict[str, str]:
    """The server's own settings (tests.conftest.start_server's), so the compliance part
    reads its config and audit log."""
    (config,) = server.log.parent.glob("mesh-*.yaml")
    return {
        "DEMIGOD_DATA_DIR": str(server.log.parent / "data"),
        "DEMIGOD_CONFIG": str(config),
        "DEMIGOD_SECURITY__AUTH": "off",
    }


def demigod(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "demigod", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_pager(server: Server, out: Path, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        demigod(environment(server), "report", "one-pager", "--out", str(out), "--json", *args)
    )
    return found


def promql(prometheus: str, query: str) -> float:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()
    assert reply["status"] == "success", reply
    (sample,) = reply["data"]["result"]
    return float(sample["value"][1])


@pytest.fixture(scope="module")
def prometheus(mesh: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus scraping the server every second, once it has stored every request."""
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: demigod\n"
        f"    static_configs:\n      - targets: ['{mesh.url.removeprefix('http://')}']\n"
    )
    with running_prometheus(config, workdir, timeout=WAIT) as url:
        wait_for_requests(url, REQUESTS)
        yield url


def pdf_text(pdf: Path) -> str:
    text = subprocess.run(
        [require_binary("pdftotext"), "-raw", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.sub(r"\s+", " ", text)


def shown(value: str, text: str) -> bool:
    """`value` is in `text` as a whole number (0.003 is not found in 0.0032)."""
    return re.search(rf"(?<![\d.,]){re.escape(value)}(?![\d,]|\.\d)", text) is not None


def expected_figures(figures: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """The strings the page must show: the headline and per-model latency, every cell of
    the recorded energy comparison, the compliance facts."""
    energy = EnergyComparison.load()
    (model,) = figures["mesh"]["models"]
    wanted = [
        seconds(figures["mesh"]["p95_seconds"]),
        seconds(model["p95_first_token_seconds"]),
        f"{REQUESTS} requests",
        ratio(energy.headline.decode_j_per_token),
        ratio(energy.headline.decode_tok_s),
        f"{ratio(energy.headline.prefill_j_per_token)} less energy per prompt token",
        f"{energy.headline.context:,} tokens of context",
        f"kept {report['retention']['audit_retention_days']} days",
        f"{len(report['gaps'])} gap(s)",
        "joules estimated from CPU time" if energy.estimated else "counters",
    ]
    for row in energy.rows:
        wanted += [joules(row.decode_j_per_token), rate(row.decode_tok_s)]
        wanted += [joules(row.prefill_j_per_token), f"{row.context:,}"]
        wanted += [rate(tok_s) for tok_s in row.llama_bench_decode_tok_s.values()]
    for r in energy.ratios:
        wanted.append(ratio(r.decode_j_per_token))
    return wanted


def test_the_figures_are_their_sources_and_the_pdf_shows_them(
    mesh: Server, prometheus: str, tmp_path: Path
) -> None:
    figures = one_pager(mesh, tmp_path / "one-pager.pdf", "--url", mesh.url)

    # Latency: Prometheus's own histogram_quantile over the same counters.
    p95 = promql(
        prometheus,
        "histogram_quantile(0.95, sum by (le) (demigod_request_duration_seconds_bucket))",
    )
    first_token = promql(
        prometheus,
        "histogram_quantile(0.95, sum by (le) (demigod_time_to_first_token_seconds_bucket))",
    )
    (model,) = figures["mesh"]["models"]
    assert figures["mesh"]["requests"] == model["requests"] == REQUESTS
    assert figures["mesh"]["p95_seconds"] == model["p95_seconds"] == pytest.approx(p95)
    assert model["p95_first_token_seconds"] == pytest.approx(first_token)
    joules_spent = promql(prometheus, "sum(demigod_energy_joules_total)")
    tokens = promql(prometheus, 'sum(demigod_tokens_total{type="output"})')
    assert model["joules_per_output_token"] == pytest.approx(joules_spent / tokens, rel=0.02)

    # Energy: the recorded comparison, whole.
    recorded = EnergyComparison.load()
    assert figures["energy"]["ratios"] == [vars(r) for r in recorded.ratios]
    assert figures["energy"]["basis"] == recorded.basis

    # Policies: what `demigod compliance report` says about the same host.
    report = json.loads(demigod(environment(mesh), "compliance", "report", "--json"))
    policies = figures["policies"]
    assert policies["audit_log"] is report["logging"]["enabled"] is True
    assert policies["retention_days"] == report["retention"]["audit_retention_days"] == 200
    assert policies["gaps"] == report["gaps"]
    assert [a["article"] for a in policies["article_12"]] == [
        a["article"] for a in report["article_12"]
    ]

    pdf = tmp_path / "one-pager.pdf"
    info = subprocess.run(
        [require_binary("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    assert "595.276 x 841.89 pts (A4)" in info
    text = pdf_text(pdf)
    missing = [value for value in expected_figures(figures, report) if not shown(value, text)]
    assert not missing, f"not on the page: {missing}\n{text}"

    subprocess.run(
        [require_binary("pdftoppm"), "-r", "50", "-png", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    (png,) = tmp_path.glob("page*.png")
    from PIL import Image

    with Image.open(png) as image:
        grey = image.convert("L")
        # An A4 page at 50 dpi, with ink on it: text, tables and the figure.
        assert grey.size == (414, 585)
        dark = sum(grey.histogram()[:128])
        assert dark > 0.01 * grey.size[0] * grey.size[1]


def test_through_prometheus_the_figures_are_the_same(
    mesh: Server, prometheus: str, tmp_path: Path
) -> None:
    direct = one_pager(mesh, tmp_path / "direct.html", "--url", mesh.url)
    through = one_pager(mesh, tmp_path / "through.html", "--prometheus", prometheus)
    (a,), (b,) = direct["mesh"]["models"], through["mesh"]["models"]
    assert b["requests"] == a["requests"] == REQUESTS
    assert b["p95_seconds"] == pytest.approx(a["p95_seconds"])
    assert b["p95_first_token_seconds"] == pytest.approx(a["p95_first_token_seconds"])
    assert through["mesh"]["source"].startswith(prometheus)

    page = (tmp_path / "through.html").read_text()
    assert 'src="data:image/png;base64,' in page
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert seconds(b["p95_seconds"]) in text
    assert ratio(EnergyComparison.load().headline.decode_j_per_token) in text

    # Over a window: what the counters gained in it (the first REQUESTS came before the
    # first scrape, so Prometheus saw them as the series' starting values).
    send_completions(mesh, 3)
    wait_for_requests(prometheus, REQUESTS + 3)
    windowed = one_pager(
        mesh, tmp_path / "windowed.html", "--prometheus", prometheus, "--window", "1h"
    )
    (c,) = windowed["mesh"]["models"]
    assert windowed["mesh"]["window"] == "1h"
    assert 3 <= c["requests"] < REQUESTS  # increase() extrapolates a little


def test_bad_sources_are_clear_errors(mesh: Server, tmp_path: Path) -> None:
    def refused(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "demigod", "report", "one-pager", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        result.stderr = " ".join(result.stderr.split())  # as one line, however rich wrapped it
        return result

    wrong_suffix = refused("--out", str(tmp_path / "page.docx"), "--url", mesh.url)
    assert wrong_suffix.returncode == 2 and ".pdf or .html" in wrong_suffix.stderr
    unreachable = refused("--out", str(tmp_path / "page.pdf"), "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot read the mesh's metrics" in unreachable.stderr
    (tmp_path / "energy.json").write_text('{"bench": "energy"}')
    bad_record = refused(
        "--out", str(tmp_path / "page.pdf"), "--url", mesh.url,
        "--energy", str(tmp_path / "energy.json"),
    )  # fmt: skip
    assert bad_record.returncode == 2 and "not an energy record (no 'date')" in bad_record.stderr
    assert not (tmp_path / "page.pdf").exists()
