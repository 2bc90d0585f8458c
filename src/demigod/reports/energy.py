"""The recorded energy comparison of a Mamba and a Transformer (bench/energy.py --record):
decode and prefill apart, per context length, with the llama-bench cross-check. The
package ships the latest run (energy_comparison.json); a run on other hardware is read
from its own file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).with_name("energy_comparison.json")
ESTIMATE = "estimate"


class EnergyRecordError(Exception):
    """The file is not a record written by bench/energy.py --record."""


@dataclass(frozen=True)
class EnergyRow:
    """One model at one context length (medians over the run's repeats)."""

    model: str
    context: int
    prefill_tok_s: float
    prefill_j_per_token: float
    decode_tok_s: float
    decode_j_per_token: float
    source: str
    # llama-bench's decode tokens/s on the same file at the same depth: "fa0", "fa1"
    llama_bench_decode_tok_s: dict[str, float] = field(default_factory=dict)
    # the decode completion's whole joules (prompt included) over its output tokens
    request_j_per_output_token: float | None = None


@dataclass(frozen=True)
class EnergyRatio:
    """At one context length, medians of the per-repeat ratios: the Transformer's joules
    over the Mamba's, the Mamba's speed over the Transformer's."""

    context: int
    decode_j_per_token: float
    prefill_j_per_token: float
    decode_tok_s: float
    prefill_tok_s: float
    request_j_per_output_token: float | None = None


@dataclass(frozen=True)
class EnergyComparison:
    date: str
    machine: dict[str, Any]
    threads: int
    output_tokens: int
    repeats: int
    watts_per_core: float
    models: dict[str, str]
    rows: list[EnergyRow]
    ratios: list[EnergyRatio]
    file: str

    @classmethod
    def load(cls, path: Path = RECORDED) -> EnergyComparison:
        """Read a record. Raises EnergyRecordError (or OSError for an unreadable file)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                date=data["date"],
                machine=data["machine"],
                threads=int(data["threads"]),
                output_tokens=int(data["output_tokens"]),
                repeats=int(data["repeats"]),
                watts_per_core=float(data["watts_per_core"]),
                models=data["models"],
                rows=[
                    EnergyRow(**{k: row[k] for k in EnergyRow.__dataclass_fields__ if k in row})
                    for row in data["rows"]
                ],
                ratios=[EnergyRatio(**ratio) for ratio in data["ratios"]],
                file=str(path),
            )
        except KeyError as exc:
            raise EnergyRecordError(f"{path}: not an energy record (no {exc})") from exc
        except (ValueError, TypeError) as exc:
            raise EnergyRecordError(f"{path}: not an energy record ({exc})") from exc

    @property
    def headline(self) -> EnergyRatio:
        """The ratios at the longest context measured."""
        return max(self.ratios, key=lambda ratio: ratio.context)

    def row(self, model: str, context: int) -> EnergyRow:
        return next(r for r in self.rows if r.model == model and r.context == context)

    @property
    def estimated(self) -> bool:
        """True when every joule is the CPU-time estimate, none a power counter's."""
        return {row.source for row in self.rows} == {ESTIMATE}

    @property
    def basis(self) -> str:
        """What the joules are: the sentence that goes next to every figure."""
        if self.estimated:
            return (
                f"Estimate: CPU-seconds of the serving process x {self.watts_per_core:g} W per "
                "core (no power counter was readable), so a ratio of joules is a ratio of CPU "
                "time; random-init toy models, on a CPU"
            )
        sources = ", ".join(sorted({row.source for row in self.rows}))
        return f"Measured with {sources} counters, idle draw subtracted"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
