"""Energy per model: RAPL counters (wraps undone, idle draw subtracted), the CPU estimate,
attribution by busy time; and a server exporting it, with background deep probes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from demigod.observability.energy import (
    CpuEstimateSource,
    EnergyMeter,
    RaplSource,
    host_energy_sources,
)
from demigod.observability.gpu import GpuCollector
from tests.conftest import Server, start_server, stop_server
from tests.gateway.test_health_and_metrics import scrape
from tests.observability.test_live_stack import completion, wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeSource:
    name = "rapl"
    subtract_idle = True

    def __init__(self) -> None:
        self.total = 0.0

    def joules(self) -> float:
        return self.total


def powercap(root: Path, packages: dict[int, int], max_range: int = 1_000_000) -> Path:
    """A /sys/class/powercap look-alike: one zone per package, plus a sub-zone to ignore."""
    for package, microjoules in packages.items():
        zone = root / f"intel-rapl:{package}"
        (zone / f"intel-rapl:{package}:0").mkdir(parents=True, exist_ok=True)
        (zone / "energy_uj").write_text(f"{microjoules}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
        (zone / f"intel-rapl:{package}:0" / "energy_uj").write_text("999999\n")
    return root


def test_rapl_sums_packages_and_undoes_wraps(tmp_path: Path) -> None:
    root = powercap(tmp_path, {0: 900_000, 1: 100_000})
    source = RaplSource.find(root)
    assert source is not None
    assert source.joules() == 0
    powercap(root, {0: 950_000, 1: 300_000})
    assert source.joules() == pytest.approx(0.25)
    powercap(root, {0: 50_000, 1: 300_000})  # package 0 wrapped at 1 J: 0.05 + 0.05 more
    assert source.joules() == pytest.approx(0.35)


def test_no_readable_rapl_means_the_estimate(tmp_path: Path) -> None:
    assert RaplSource.find(tmp_path) is None
    sources = host_energy_sources(tmp_path, watts_per_core=12.0)
    assert [source.name for source in sources][:1] == ["estimate"]
    cpu_seconds = iter([2.0, 5.0])
    estimate = CpuEstimateSource(12.0, cpu_seconds=lambda: next(cpu_seconds))
    assert estimate.joules() == 24.0 and estimate.joules() == 60.0


def test_energy_is_split_by_busy_time_with_idle_draw_subtracted() -> None:
    clock, source = FakeClock(), FakeSource()
    meter = EnergyMeter([source], clock=clock)
    clock.now, source.total = 10.0, 50.0  # 10 s idle at 5 W: sets the idle draw
    assert meter.totals() == {}
    meter.begin("a")
    clock.now = 11.0
    meter.begin("b")
    clock.now = 13.0
    meter.end("a")  # a busy 3 s, b busy 2 s so far
    clock.now = 14.0
    meter.end("b")  # b busy 3 s in all
    source.total += 4 * 5.0 + 12.0  # 4 s of idle draw plus 12 J of work
    totals = meter.totals()
    assert totals == {("a", "rapl"): pytest.approx(6.0), ("b", "rapl"): pytest.approx(6.0)}
    clock.now, source.total = 20.0, source.total + 30.0  # idle again: nothing attributed
    assert meter.totals() == totals


def test_estimate_source_charges_everything_to_the_busy_model() -> None:
    clock = FakeClock()
    cpu = iter([0.0, 3.0])
    meter = EnergyMeter([CpuEstimateSource(10.0, cpu_seconds=lambda: next(cpu))], clock=clock)
    meter.begin("m")
    clock.now = 1.0
    meter.end("m")
    assert meter.totals() == {("m", "estimate"): 30.0}


@pytest.fixture(scope="module")
def rapl_server(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    """A server reading a fake RAPL tree (returned too), deep-probing idle models every 0.2 s."""
    root = tmp_path_factory.mktemp("powercap")
    powercap(root, {0: 1_000_000}, max_range=10**12)
    running = start_server(
        [f"tiny={tiny_model}"],
        tmp_path_factory.mktemp("rapl-server"),
        env={
            "DEMIGOD_OBSERVABILITY__POWERCAP_DIR": str(root),
            "DEMIGOD_OBSERVABILITY__DEEP_PROBE_INTERVAL_SECONDS": "0.2",
        },
    )
    yield running, root
    stop_server(running)


def test_server_exports_rapl_energy_per_model(rapl_server: tuple[Server, Path]) -> None:
    server, root = rapl_server
    key = 'demigod_energy_joules_total{model="tiny",source="rapl"}'
    scrape(server)  # an idle interval with a still counter: idle draw 0 W
    completion(server, "energy-1")
    powercap(root, {0: 3_000_000}, max_range=10**12)  # the package spent 2 J meanwhile
    assert scrape(server)[key] == pytest.approx(2.0)


def test_idle_models_are_deep_probed_in_the_background(rapl_server: tuple[Server, Path]) -> None:
    server, _ = rapl_server

    def probed() -> float | None:
        return scrape(server).get('demigod_probe_success{model="tiny"}')

    assert wait_for("background probe", probed) == 1.0
    samples = scrape(server)
    assert samples['demigod_probe_duration_seconds{model="tiny"}'] > 0
    assert samples['demigod_model_load_seconds{model="tiny"}'] > 0
    assert len([k for k in samples if k.startswith("demigod_build_info{")]) == 1
    assert any(k.startswith("process_cpu_seconds_total") for k in samples)
    # GPU series exist exactly where NVML sees a GPU: absent, never zeros, on CPU hosts.
    has_gpu_series = any(k.startswith("demigod_gpu_") for k in samples)
    assert has_gpu_series == (GpuCollector.find() is not None)


def test_deep_probe_endpoint_sets_probe_success(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz/deep", timeout=60).status_code == 200
    assert scrape(server)['demigod_probe_success{model="tiny"}'] == 1.0
