"""RAPL powercap trees built in tmp_path: sockets, DRAM, psys, wraparound, permissions."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from carbonledger.errors import RaplError, RaplPermissionError
from carbonledger.measure import (
    METHOD_CPU_ESTIMATE,
    METHOD_RAM_ESTIMATE,
    METHOD_RAM_RAPL,
    METHOD_RAPL,
    Meter,
    detect_sources,
    rapl,
)
from carbonledger.settings import Settings
from carbonledger.testing import FakeClock


def _set(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


def _add(zone: Path, delta_uj: int) -> None:
    _set(zone, int((zone / "energy_uj").read_text()) + delta_uj)


def _zone(path: Path, name: str, energy_uj: int, max_range_uj: int = 262_143_328_850) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(f"{name}\n")
    _set(path, energy_uj)
    (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return path


def _settings(root: Path, **kw: Any) -> Settings:
    return Settings(rapl_root=root, **kw)


def test_discovers_packages_of_both_sockets_and_their_dram(
    two_socket_tree: dict[str, Path],
) -> None:
    topo = rapl.discover(two_socket_tree["root"])
    assert [d.label for d in topo.packages] == ["package-0", "package-1"]
    assert [d.label for d in topo.dram] == ["dram-0", "dram-1"]
    assert [d.name for d in topo.psys] == ["psys"]
    assert topo.cpu_domains == topo.packages  # psys is never added on top of packages
    assert "core" in topo.ignored


def test_cpu_energy_is_the_sum_of_packages_without_psys_or_core(
    two_socket_tree: dict[str, Path],
) -> None:
    topo = rapl.discover(two_socket_tree["root"])
    cpu = rapl.RaplSource(topo.cpu_domains, component="cpu")
    ram = rapl.RaplSource(topo.dram, component="ram")
    cpu.start()
    ram.start()
    _add(two_socket_tree["pkg0"], 30_000_000)  # 30 J
    _add(two_socket_tree["pkg1"], 12_500_000)  # 12.5 J
    _add(two_socket_tree["core0"], 20_000_000)  # inside package-0: not added again
    _add(two_socket_tree["psys"], 90_000_000)  # whole platform: not added on top
    _add(two_socket_tree["dram0"], 3_000_000)
    _add(two_socket_tree["dram1"], 1_000_000)
    assert cpu.energy_j() == pytest.approx(42.5)
    assert ram.energy_j() == pytest.approx(4.0)
    assert cpu.method == METHOD_RAPL and ram.method == METHOD_RAM_RAPL
    assert cpu.devices == ("package-0", "package-1")


def test_detect_uses_rapl_for_cpu_and_dram_when_readable(two_socket_tree: dict[str, Path]) -> None:
    sources, notes = detect_sources(_settings(two_socket_tree["root"]))
    by_component = {s.component: s for s in sources}
    assert by_component["cpu"].method == METHOD_RAPL
    assert by_component["ram"].method == METHOD_RAM_RAPL
    assert notes == []


def test_meter_window_over_a_two_socket_tree(two_socket_tree: dict[str, Path]) -> None:
    clock = FakeClock()
    meter = Meter(settings=_settings(two_socket_tree["root"]), clock=clock)
    window = meter.open_window()
    _add(two_socket_tree["pkg0"], 100_000_000)
    _add(two_socket_tree["pkg1"], 100_000_000)
    _add(two_socket_tree["dram1"], 20_000_000)
    clock.advance(10.0)
    result = window.close()
    meter.close()
    assert result.components["cpu"].avg_power_w == pytest.approx(20.0)
    assert result.components["ram"].avg_power_w == pytest.approx(2.0)
    assert result.methods == "cpu=rapl;ram=rapl-dram"
    assert all(c.measured for c in result.components.values())


def test_psys_alone_is_used_when_there_is_no_package(tmp_path: Path) -> None:
    _zone(tmp_path / "intel-rapl:0", "psys", 5)
    sources, notes = detect_sources(_settings(tmp_path))
    cpu = next(s for s in sources if s.component == "cpu")
    assert cpu.method == METHOD_RAPL and cpu.devices == ("psys-0",)
    assert any("psys" in n for n in notes)
    ram = next(s for s in sources if s.component == "ram")
    assert ram.method == METHOD_RAM_ESTIMATE  # no DRAM zone: estimate


def test_amd_rapl_naming_is_read_the_same_way(tmp_path: Path) -> None:
    p0 = _zone(tmp_path / "amd-rapl:0", "package-0", 0)
    p1 = _zone(tmp_path / "amd-rapl:1", "package-1", 0)
    topo = rapl.discover(tmp_path)
    source = rapl.RaplSource(topo.cpu_domains)
    source.start()
    _add(p0, 1_000_000)
    _add(p1, 2_000_000)
    assert source.energy_j() == pytest.approx(3.0)


def test_a_wrap_between_two_reads_is_added_back(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "intel-rapl:0", "package-0", 900_000, max_range_uj=1_000_000)
    source = rapl.RaplSource(rapl.discover(tmp_path).packages)
    source.start()
    _set(zone, 100_000)  # 900k -> wrap at 1M -> 100k: 0.2 J
    assert source.energy_j() == pytest.approx(0.2)


def test_watcher_reads_keep_successive_wraps_from_going_unseen(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "intel-rapl:0", "package-0", 0, max_range_uj=1_000_000)
    source = rapl.RaplSource(rapl.discover(tmp_path).packages)
    source.start()
    script = [600_000, 200_000, 800_000, 400_000, 0]  # wraps twice; 0.6 J per step (0.4 at end)
    for value in script:
        _set(zone, value)
        source.sample()  # what the watcher thread does every sample_period_s
    assert source.energy_j() == pytest.approx(0.6 * 4 + 0.6)


def test_watch_period_is_short_enough_that_no_counter_wraps_twice(tmp_path: Path) -> None:
    _zone(tmp_path / "intel-rapl:0", "package-0", 0)  # the usual 262 kJ range
    _zone(tmp_path / "intel-rapl:1", "package-1", 0, max_range_uj=65_536_000_000)  # 65.5 kJ
    topo = rapl.discover(tmp_path)
    period = rapl.watch_period_s(topo.packages)
    # At the highest power a domain could draw, a counter advances less than its range.
    shortest_range_j = min(d.max_energy_range_uj for d in topo.packages) / 1e6
    assert period * rapl.MAX_DOMAIN_POWER_W < shortest_range_j
    assert 0 < period <= rapl.MAX_WATCH_PERIOD_S
    tiny = rapl.RaplDomain("package-0", tmp_path, 10_000_000, 0)  # 10 J: wraps in 10 ms at 1 kW
    assert rapl.watch_period_s((tiny,)) * rapl.MAX_DOMAIN_POWER_W < 10.0


def test_the_meter_runs_the_watcher_on_a_thread(tmp_path: Path) -> None:
    _zone(tmp_path / "intel-rapl:0", "package-0", 0, max_range_uj=100_000_000)  # 100 J
    meter = Meter(settings=_settings(tmp_path))
    meter.start()
    assert meter.sampling
    cpu = next(s for s in meter.sources if s.component == "cpu")
    assert cpu.sample_period_s is not None and cpu.sample_period_s <= 0.05
    meter.close()
    assert not meter.sampling


def test_permission_denied_warns_once_and_falls_back_to_the_estimate(
    two_socket_tree: dict[str, Path], enforce_file_modes: None, caplog: pytest.LogCaptureFixture
) -> None:
    for key in ("pkg0", "pkg1", "dram0", "dram1", "psys", "core0"):
        os.chmod(two_socket_tree[key] / "energy_uj", 0o200)  # root-only read since Linux 5.10
    caplog.set_level(logging.WARNING, logger="carbonledger")
    settings = _settings(two_socket_tree["root"])
    for _ in range(3):  # detected again and again (shared meter, CLI...): still one warning
        sources, notes = detect_sources(settings)
        methods = {s.component: s.method for s in sources}
        assert methods == {"cpu": METHOD_CPU_ESTIMATE, "ram": METHOD_RAM_ESTIMATE}
        assert any("permission denied" in n and "CARBONLEDGER_CPU_METHOD" in n for n in notes)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "root-only since Linux 5.10" in warnings[0].getMessage()
    meter = Meter(settings=settings)
    meter.start()
    assert any("permission denied" in n for n in meter.notes)
    meter.close()


def test_permission_denied_is_an_error_when_rapl_is_required(
    two_socket_tree: dict[str, Path], enforce_file_modes: None
) -> None:
    os.chmod(two_socket_tree["pkg1"] / "energy_uj", 0o200)
    with pytest.raises(RaplPermissionError, match="run as root, grant read access"):
        detect_sources(_settings(two_socket_tree["root"], cpu_method="rapl"))


def test_no_rapl_tree_falls_back_with_a_note_or_fails_when_required(tmp_path: Path) -> None:
    sources, notes = detect_sources(_settings(tmp_path / "absent"))
    assert {s.method for s in sources} == {METHOD_CPU_ESTIMATE, METHOD_RAM_ESTIMATE}
    assert any("no RAPL zones" in n for n in notes)
    with pytest.raises(RaplError, match="CARBONLEDGER_RAPL_ROOT"):
        detect_sources(_settings(tmp_path / "absent", cpu_method="rapl"))


def test_estimate_requested_skips_a_readable_tree(two_socket_tree: dict[str, Path]) -> None:
    sources, notes = detect_sources(_settings(two_socket_tree["root"], cpu_method="estimate"))
    assert {s.method for s in sources} == {METHOD_CPU_ESTIMATE, METHOD_RAM_ESTIMATE}
    assert any("by request" in n for n in notes)


def test_garbage_in_a_counter_is_a_rapl_error(tmp_path: Path) -> None:
    zone = _zone(tmp_path / "intel-rapl:0", "package-0", 0)
    source = rapl.RaplSource(rapl.discover(tmp_path).packages)
    source.start()
    (zone / "energy_uj").write_text("not a number\n")
    with pytest.raises(RaplError, match="powercap"):
        source.energy_j()
