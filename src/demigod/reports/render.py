"""The one-pager as HTML or PDF (A4, one page). Both are laid out from one list of
headline figures and sections, so the two say the same thing in the same words."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from demigod.extras import require
from demigod.reports.energy import RECORDED, EnergyRow
from demigod.reports.one_pager import P95_TARGET_SECONDS, OnePager

GAPS_SHOWN = 4  # the rest are counted; `demigod compliance report` lists them all


@dataclass(frozen=True)
class Headline:
    figure: str
    label: str
    detail: str


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: list[list[str]] = field(default_factory=list)  # the first row is the header
    bullets: list[str] = field(default_factory=list)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def joules(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def ratio(value: float) -> str:
    return f"{value:.1f}x"


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def headlines(page: OnePager) -> list[Headline]:
    mesh, energy, policies = page.mesh, page.energy, page.policies
    top = energy.headline
    met = page.meets_p95_target
    return [
        Headline(
            seconds(mesh.p95_seconds),
            "p95 latency",
            f"{mesh.requests:,.0f} requests; target < {P95_TARGET_SECONDS:g} s: "
            + {True: "met", False: "not met", None: "no requests yet"}[met],
        ),
        Headline(
            ratio(top.decode_j_per_token),
            "less energy per decoded token",
            f"Mamba against a Transformer at {top.context:,} tokens of context; "
            f"decoding {ratio(top.decode_tok_s)} faster; "
            f"{ratio(top.prefill_j_per_token)} less energy per prompt token"
            + ("; joules estimated from CPU time" if energy.estimated else ""),
        ),
        Headline(
            f"{len(policies.article_12) if policies.audit_log else 0}/{len(policies.article_12)}",
            "AI Act record-keeping duties covered",
            f"audit log {'on' if policies.audit_log else 'OFF'}, kept "
            f"{policies.retention_days} days (minimum {policies.retention_minimum_days}); "
            f"{len(policies.gaps)} gap(s) reported",
        ),
    ]


def sections(page: OnePager) -> list[Section]:
    mesh, energy, policies = page.mesh, page.energy, page.policies
    latency = Section(
        "Latency and energy of the running mesh",
        paragraphs=[f"Read from {mesh.source}."],
        table=[
            ["model", "requests", "p95", "p95 first token", "5xx", "J / output token"],
            *[
                [
                    m.model,
                    f"{m.requests:,.0f}",
                    seconds(m.p95_seconds),
                    seconds(m.p95_first_token_seconds),
                    share(m.server_error_ratio),
                    f"{joules(m.joules_per_output_token)} ({', '.join(m.energy_sources) or '-'})",
                ]
                for m in mesh.models
            ],
        ],
    )
    ratios = {r.context: r for r in energy.ratios}

    def speed(row: EnergyRow) -> str:
        cross = " / ".join(
            rate(row.llama_bench_decode_tok_s[fa]) for fa in sorted(row.llama_bench_decode_tok_s)
        )
        return f"{rate(row.decode_tok_s)} ({cross})" if cross else rate(row.decode_tok_s)

    comparison_rows = []
    for context in sorted(ratios):
        mamba, llama = energy.row("mamba", context), energy.row("llama", context)
        comparison_rows.append(
            [
                f"{context:,}",
                joules(mamba.decode_j_per_token),
                joules(llama.decode_j_per_token),
                ratio(ratios[context].decode_j_per_token),
                speed(mamba),
                speed(llama),
                joules(mamba.prefill_j_per_token),
                joules(llama.prefill_j_per_token),
            ]
        )
    machine = energy.machine
    comparison = Section(
        "Energy: Mamba against a Transformer of the same size",
        paragraphs=[
            f"{energy.basis}. Measured {energy.date[:10]} on {machine.get('cpus')} x "
            f"{machine.get('processor')}, {energy.threads} thread(s), medians of "
            f"{energy.repeats} paired repeats, {energy.output_tokens} decoded tokens "
            "(bench/energy.py). Decode and prefill apart: the Transformer's decoding slows "
            "with every token of context, the Mamba's state has a fixed size. In brackets: "
            "llama-bench's decode speed on the same file at the same depth (flash attention "
            "off / on), a cross-check of the server's.",
        ],
        table=[
            [
                "context",
                "decode J/token Mamba",
                "Transformer",
                "ratio",
                "decode tok/s Mamba (llama-bench)",
                "Transformer (llama-bench)",
                "prefill J/token Mamba",
                "Transformer",
            ],
            *comparison_rows,
        ],
    )
    shown = policies.gaps[:GAPS_SHOWN]
    more = len(policies.gaps) - len(shown)
    stable = ", ".join(
        f"{v.model}@{v.version} ({v.evaluations} evaluations, {v.failed} failed)"
        for v in policies.stable_versions
    )
    articles = "; ".join(f"{a['article']} {a['duty']}" for a in policies.article_12)
    compliance = Section(
        "EU AI Act policies (demigod compliance report)",
        bullets=[
            f"Record-keeping: audit log {'enabled' if policies.audit_log else 'DISABLED'}, "
            f"hash-chained, signed checkpoints, timestamps by "
            f"{policies.timestamp_authority}; request content: {policies.request_content}. "
            f"Covers Art. {articles}.",
            f"Retention: {policies.retention_days} days, "
            f"{'meets' if policies.retention_meets_minimum else 'BELOW'} the "
            f"{policies.retention_minimum_days}-day minimum of Art. 19(1) and 26(6).",
            f"Access: authentication {policies.authentication}; prompt-injection screen "
            f"{policies.prompt_injection_screen}.",
            "Promotion gates before a version serves: "
            + ", ".join(f"{k} {v}" for k, v in policies.promotion_gates.items())
            + (f". Stable: {stable}." if stable else ". No registered stable version."),
            "Gaps: "
            + ("; ".join(shown) if shown else "none found")
            + (f"; and {more} more" if more else "")
            + ".",
        ],
    )
    recorded = (
        f"the run shipped with demigod {page.demigod_version}"
        if Path(energy.file) == RECORDED
        else energy.file
    )
    sources = Section(
        "Sources",
        paragraphs=[
            f"Mesh: {mesh.source}. Energy comparison: {recorded} (rerun: python "
            "bench/energy.py --record FILE). Policies: demigod compliance report on this "
            "host's configuration, registry and audit log. This page: demigod report "
            "one-pager --out FILE.pdf (or .html).",
        ],
    )
    return [latency, comparison, compliance, sources]


def title(page: OnePager) -> tuple[str, str]:
    return (
        "Phoenix DemiGod: an inference mesh for attention-free language models",
        f"One-pager generated {page.generated_at} by demigod {page.demigod_version}",
    )


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ heading }}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; max-width: 52em; margin: 2em auto; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0; } h2 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
.sub { color: #666; font-size: 0.85em; }
.headlines { display: flex; gap: 1em; margin: 1em 0; }
.headline { flex: 1; border: 1px solid #ccc; border-radius: 4px; padding: 0.5em 0.7em; }
.figure { font-size: 1.6em; font-weight: bold; } .label { font-weight: bold; }
.detail, p, li { font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { width: 100%; }
</style></head><body>
<h1>{{ heading }}</h1><div class="sub">{{ subheading }}</div>
<div class="headlines">{% for h in headlines %}<div class="headline">
<div class="figure">{{ h.figure }}</div><div class="label">{{ h.label }}</div>
<div class="detail">{{ h.detail }}</div></div>{% endfor %}</div>
<img alt="J per decoded token against context; p95 latency per model"
 src="data:image/png;base64,{{ png }}">
{% for s in sections %}<h2>{{ s.title }}</h2>
{% for p in s.paragraphs %}<p>{{ p }}</p>{% endfor %}
{% if s.table %}<table><tr>{% for c in s.table[0] %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in s.table[1:] %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
{% if s.bullets %}<ul>{% for b in s.bullets %}<li>{{ b }}</li>{% endfor %}</ul>{% endif %}
{% endfor %}</body></html>
"""


def to_html(page: OnePager, png: bytes) -> str:
    """The one-pager as one self-contained HTML file (the figure inline)."""
    import jinja2

    heading, subheading = title(page)
    template = jinja2.Environment(autoescape=True).from_string(HTML)
    return template.render(
        heading=heading,
        subheading=subheading,
        headlines=headlines(page),
        sections=sections(page),
        png=base64.b64encode(png).decode("ascii"),
    )


def to_pdf(page: OnePager, png: bytes) -> bytes:
    """The one-pager as a one-page A4 PDF. Raises MissingExtraError without reportlab."""
    require("reportlab", "the one-pager as PDF")
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import (
        Flowable,
        Image,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=7.5, leading=9.5)
    small = ParagraphStyle("small", parent=body, fontSize=6.5, leading=8)
    cell = ParagraphStyle("cell", parent=body, fontSize=6.5, leading=7.5)
    figure_style = ParagraphStyle("figure", parent=body, fontSize=15, leading=17)
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontSize=13, leading=15, spaceAfter=1)
    h2 = ParagraphStyle(
        "h2", parent=styles["Heading2"], fontSize=9.5, leading=11, spaceBefore=5, spaceAfter=2
    )
    grid = colors.HexColor("#bbbbbb")
    width = A4[0] - 2.4 * cm

    def text(value: str, style: ParagraphStyle) -> Paragraph:
        return Paragraph(escape(value), style)

    heading, subheading = title(page)
    story: list[Flowable] = [text(heading, h1), text(subheading, small), Spacer(1, 5)]
    boxes = [
        [
            [
                text(h.figure, figure_style),
                Paragraph(f"<b>{escape(h.label)}</b>", body),
                text(h.detail, small),
            ]
            for h in headlines(page)
        ]
    ]
    headline_table = Table(boxes, colWidths=[width / 3] * 3)
    headline_table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, grid),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, grid),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [headline_table, Spacer(1, 4)]
    from demigod.reports.plot import HEIGHT_INCHES, WIDTH_INCHES

    story.append(Image(io.BytesIO(png), width=width, height=width * HEIGHT_INCHES / WIDTH_INCHES))
    for section in sections(page):
        story.append(text(section.title, h2))
        story += [text(p, body) for p in section.paragraphs]
        if section.table:
            rows = [[text(c, cell) for c in row] for row in section.table]
            table = Table(rows, repeatRows=1, hAlign="LEFT")
            table.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.4, grid),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                        ("TOPPADDING", (0, 0), (-1, -1), 1),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                    ]
                )
            )
            story += [Spacer(1, 2), table]
        story += [Paragraph(escape(b), body, bulletText="\u2022") for b in section.bullets]
    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=1.2 * cm,
        rightMargin=1.2 * cm,
        topMargin=1.0 * cm,
        bottomMargin=1.0 * cm,
        title=heading,
        author="Phoenix DemiGod",
    )
    document.build(story)
    return out.getvalue()
