"""Energy per model: `demigod_energy_joules_total{model,source}`.

A source gives the host's cumulative joules: RAPL package counters (`/sys/class/powercap`,
source="rapl"), the NVML GPU counter (source="nvml"), or, where no counter is readable, an
estimate of this process's CPU-seconds x a configured watts-per-core (source="estimate").
At every scrape the joules spent since the previous one are split across the models that
were busy (had a request in flight) in proportion to their busy seconds. Energy spent while
no model was busy is not attributed; for RAPL it sets the idle draw, which is subtracted from
busy intervals so a model is charged for what it added, not for the idle machine.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from demigod.observability.gpu import NvmlEnergySource

# Top-level RAPL zones are whole packages (`intel-rapl:0`); `intel-rapl:0:1` are their parts.
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")
# How much each idle interval moves the idle-power estimate (exponential moving average).
_IDLE_SMOOTHING = 0.3


class EnergySource(Protocol):
    """A cumulative energy counter for this host (or process)."""

    name: str
    # True where the counter sees the whole machine, so idle draw is there to subtract.
    subtract_idle: bool

    def joules(self) -> float:
        """Joules since an arbitrary origin; never decreases."""
        ...


class RaplSource:
    """Sum of the RAPL package counters under `powercap_dir`, with counter wraps undone."""

    name = "rapl"
    subtract_idle = True

    def __init__(self, zones: list[Path]) -> None:
        self._zones = zones
        self._last_uj = [self._read(zone) for zone in zones]
        self._total_uj = 0

    @classmethod
    def find(cls, powercap_dir: Path) -> RaplSource | None:
        """The package zones under `powercap_dir`, or None when none is readable (often only
        root may read `energy_uj`)."""
        zones = sorted(
            path
            for path in powercap_dir.glob("intel-rapl:*")
            if _PACKAGE_ZONE.match(path.name) and (path / "energy_uj").is_file()
        )
        try:
            return cls(zones) if zones else None
        except (OSError, ValueError):
            return None

    @staticmethod
    def _read(zone: Path) -> int:
        return int((zone / "energy_uj").read_text())

    def joules(self) -> float:
        for index, zone in enumerate(self._zones):
            now = self._read(zone)
            delta = now - self._last_uj[index]
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                delta += int((zone / "max_energy_range_uj").read_text())
            self._total_uj += delta
            self._last_uj[index] = now
        return self._total_uj / 1e6


class CpuEstimateSource:
    """This process's CPU-seconds (every thread) x `watts_per_core`."""

    name = "estimate"
    subtract_idle = False

    def __init__(self, watts_per_core: float, cpu_seconds: Callable[[], float] = time.process_time):
        self._watts_per_core = watts_per_core
        self._cpu_seconds = cpu_seconds

    def joules(self) -> float:
        return self._cpu_seconds() * self._watts_per_core


class _Account:
    """What one source has attributed so far."""

    def __init__(self, source: EnergySource) -> None:
        self.source = source
        self.last_joules = source.joules()
        self.idle_watts: float | None = None  # unknown until an idle interval is seen
        self.totals: dict[str, float] = {}

    def split(self, busy: dict[str, float], interval: float) -> None:
        joules = self.source.joules()
        spent, self.last_joules = joules - self.last_joules, joules
        total_busy = sum(busy.values())
        if total_busy <= 0:
            if self.source.subtract_idle and interval > 0:
                watts = spent / interval
                self.idle_watts = (
                    watts
                    if self.idle_watts is None
                    else self.idle_watts + _IDLE_SMOOTHING * (watts - self.idle_watts)
                )
            return
        if self.source.subtract_idle and self.idle_watts is not None:
            spent = max(0.0, spent - self.idle_watts * interval)
        for model, seconds in busy.items():
            self.totals[model] = self.totals.get(model, 0.0) + spent * seconds / total_busy


class EnergyMeter(Collector):
    """Attributes each source's joules to models by their busy time; exported at scrape."""

    def __init__(
        self, sources: list[EnergySource], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._accounts = [_Account(source) for source in sources]
        self._clock = clock
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = {}
        self._busy: dict[str, float] = {}
        self._tick = clock()
        self._last_split = self._tick

    def declare(self, models: Iterable[str]) -> None:
        """Export 0 J for `models` until they spend some (a series from the start)."""
        with self._lock:
            for account in self._accounts:
                for model in models:
                    account.totals.setdefault(model, 0.0)

    def begin(self, model: str) -> None:
        """A request for `model` started."""
        with self._lock:
            self._advance()
            self._inflight[model] = self._inflight.get(model, 0) + 1

    def end(self, model: str) -> None:
        """A request for `model` finished (however it ended)."""
        with self._lock:
            self._advance()
            self._inflight[model] = max(0, self._inflight.get(model, 0) - 1)

    def totals(self) -> dict[tuple[str, str], float]:
        """Joules per (model, source) so far; splits what was spent since the last call."""
        with self._lock:
            self._advance()
            busy, self._busy = self._busy, {}
            interval, self._last_split = self._tick - self._last_split, self._tick
            for account in self._accounts:
                account.split(busy, interval)
            return {
                (model, account.source.name): joules
                for account in self._accounts
                for model, joules in account.totals.items()
            }

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "demigod_energy_joules",
            "Energy attributed to each model, by where the figure comes from",
            labels=["model", "source"],
        )
        for (model, source), joules in sorted(self.totals().items()):
            family.add_metric([model, source], joules)
        yield family

    def _advance(self) -> None:
        # Busy time accrues to every model with a request in flight since the last event.
        now = self._clock()
        elapsed = now - self._tick
        for model, count in self._inflight.items():
            if count:
                self._busy[model] = self._busy.get(model, 0.0) + elapsed
        self._tick = now


def host_energy_sources(powercap_dir: Path, watts_per_core: float) -> list[EnergySource]:
    """RAPL when its counters are readable, else the CPU-seconds estimate; plus NVML's GPU
    counter when a GPU is present."""
    cpu: EnergySource = RaplSource.find(powercap_dir) or CpuEstimateSource(watts_per_core)
    gpu = NvmlEnergySource.find()
    return [cpu] if gpu is None else [cpu, gpu]
