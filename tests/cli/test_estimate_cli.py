"""`carbonledger estimate`: ML-CO2-Impact-style estimates, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.intensity import tables

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["estimate", *args])
    return result.exit_code, result.stdout, result.stderr


def _lines(out: str) -> dict[str, str]:
    return {line[:16].strip(): line[16:].strip() for line in out.splitlines() if line.strip()}


def test_acceptance_250_w_for_100_h_at_560_g_is_25_kwh_and_14_kg() -> None:
    code, out, _ = _run("--power-w", "250", "--hours", "100", "--intensity", "560")
    assert code == 0, out
    lines = _lines(out)
    assert lines["energy"] == "25 kWh"
    assert lines["facility energy"] == "25 kWh"
    assert lines["PUE"].startswith("1 (default")
    assert lines["intensity"].startswith("560 gCO2e/kWh (explicit")
    assert lines["CO2e"] == "14 kg"


def test_acceptance_as_json() -> None:
    code, out, _ = _run("--power-w", "250", "--hours", "100", "--intensity", "560", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["energy_kwh"] == pytest.approx(25.0)
    assert data["facility_energy_kwh"] == pytest.approx(25.0)
    assert data["co2e_kg"] == pytest.approx(14.0)
    assert data["pue"]["value"] == 1.0
    assert data["intensity"]["intensity_g_per_kwh"] == 560.0
    assert data["intensity"]["resolved_by"] == "explicit"


def test_acceptance_through_the_installed_script() -> None:
    script = shutil.which("carbonledger", path=str(Path(sys.executable).parent))
    assert script, "the carbonledger console script is not installed in this environment"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLEDGER_")}
    proc = subprocess.run(
        [script, "estimate", "--power-w", "250", "--hours", "100", "--intensity", "560"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    assert (lines["energy"], lines["CO2e"]) == ("25 kWh", "14 kg")


def test_gpu_count_pue_and_zone() -> None:
    code, out, _ = _run(
        "--gpu", "A100", "--count", "8", "--hours", "10", "--zone", "DE", "--pue", "1.2", "--json"
    )
    assert code == 0, out
    data = json.loads(out)
    de = tables.zones()["DE"].intensity_g_per_kwh_by_year[2025]
    assert data["hardware"] == "A100 SXM4"
    assert data["power_w"] == 400.0
    assert data["energy_kwh"] == pytest.approx(400 * 8 * 10 / 1000)  # 32 kWh
    assert data["facility_energy_kwh"] == pytest.approx(32 * 1.2)
    assert data["co2e_kg"] == pytest.approx(32 * 1.2 * de / 1000)
    assert data["intensity"]["zone"] == "DE"
    assert data["pue"]["source"] == "explicit"


def test_cloud_region_gives_intensity_and_pue() -> None:
    code, out, _ = _run(
        "--gpu", "T4", "--hours", "100", "--provider", "azure", "--region", "eastasia", "--json"
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["pue"]["value"] == 1.185
    assert data["intensity"]["resolved_by"] == "cloud-region"
    assert data["intensity"]["country"] == "HK"
    assert data["energy_kwh"] == pytest.approx(7.0)


def test_cpu_model_uses_the_tdp_table() -> None:
    code, out, _ = _run("--cpu", "AMD EPYC 7763", "--hours", "1", "--intensity", "100", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["power_w"] == 280.0
    assert data["co2e_kg"] == pytest.approx(0.028)


def test_country_alpha3_and_datacentre_pue() -> None:
    code, out, _ = _run("--power-w", "1000", "--hours", "1", "--country", "FRA", "--datacentre")
    assert code == 0, out
    lines = _lines(out)
    assert lines["PUE"].startswith("1.56 (default")
    assert lines["facility energy"] == "1.56 kWh"
    assert "electricity-maps-yearly:2025:FR" in lines["intensity"]


def test_unknown_gpu_lists_close_names() -> None:
    code, _, err = _run("--gpu", "A1000", "--hours", "1")
    assert code == 1
    assert "unknown GPU model 'A1000'; closest:" in err
    assert "A100 SXM4" in err and "--power-w" in err


def test_unknown_zone_lists_close_zones() -> None:
    code, _, err = _run("--power-w", "100", "--hours", "1", "--zone", "US-CAL-CSIO")
    assert code == 1
    assert "closest: US-CAL-CISO" in err


@pytest.mark.parametrize(
    "args",
    [
        ("--power-w", "100"),  # no hours
        ("--hours", "1"),  # no power
        ("--gpu", "A100", "--power-w", "300", "--hours", "1"),  # two powers
        ("--power-w", "-1", "--hours", "1"),
    ],
)
def test_usage_errors(args: tuple[str, ...]) -> None:
    code, _, _ = _run(*args)
    assert code == 2


def test_world_default_is_shown_with_its_note() -> None:
    code, out, _ = _run("--power-w", "100", "--hours", "10")
    assert code == 0
    assert "475 gCO2e/kWh" in out and "world average" in out
    assert _lines(out)["CO2e"] == "0.475 kg"


def test_list_zones() -> None:
    code, out, _ = _run("--list-zones")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == sorted(tables.zones())
    assert "US-CAL-CISO" in listed


def test_list_zones_json_and_regions() -> None:
    code, out, _ = _run("--list-zones", "--list-regions", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data["zones"]) == 352
    apeast = next(r for r in data["regions"] if r["region"] == "apeast")
    assert apeast["aliases"] == ["eastasia"]


def test_list_hardware_and_countries() -> None:
    code, out, _ = _run("--list-hardware", "--list-countries")
    assert code == 0
    assert "H100 SXM5" in out and "DE  DEU  Germany" in out


def test_place_on_the_command_line_beats_intensity_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_INTENSITY_G_PER_KWH", "999")
    get_settings.cache_clear()
    code, out, _ = _run("--power-w", "1000", "--hours", "1", "--zone", "FR", "--json")
    assert code == 0, out
    assert json.loads(out)["intensity"]["zone"] == "FR"
    code, out, _ = _run("--power-w", "1000", "--hours", "1", "--json")
    assert json.loads(out)["intensity"]["intensity_g_per_kwh"] == 999.0


def test_estimate_never_asks_the_live_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_LIVE_INTENSITY", "true")
    monkeypatch.setenv("CARBONLEDGER_ELECTRICITYMAPS_TOKEN", "t")
    monkeypatch.setenv("CARBONLEDGER_ELECTRICITYMAPS_URL", "http://127.0.0.1:9/v3")
    get_settings.cache_clear()
    code, out, _ = _run("--power-w", "1000", "--hours", "1", "--zone", "DE", "--json")
    assert code == 0, out
    assert json.loads(out)["intensity"]["resolved_by"] == "zone"


def test_estimate_prints_a_range_and_says_why_there_is_no_embodied_figure() -> None:
    code, out, _ = _run("--power-w", "250", "--hours", "100", "--intensity", "560")
    assert code == 0, out
    lines = _lines(out)
    # rated-power estimate (35%) and an explicit intensity (30%), in quadrature
    u = (0.35**2 + 0.30**2) ** 0.5
    assert lines["CO2e range"].startswith(f"14.0 kg ({14 / (1 + u):.2f}-{14 * (1 + u):.1f})")
    assert lines["embodied"].startswith("none (give --instance-type")


def test_estimate_json_has_the_range_and_the_embodied_share_of_an_instance() -> None:
    code, out, _ = _run(
        "--gpu", "A100", "--count", "2", "--hours", "10", "--intensity", "400",
        "--instance-type", "p4d.24xlarge", "--provider", "aws", "--lifetime-years", "5", "--json",
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    rng = data["range"]
    assert rng["co2e_low_kg"] < data["co2e_kg"] < rng["co2e_high_kg"]
    emb = data["embodied"]
    from carbonledger.embodied import tables as embodied_tables

    te = embodied_tables.instances()[("aws", "p4d.24xlarge")][0].total_kg
    assert emb["embodied_co2e_kg"] == pytest.approx(te * 10 / (5 * 365 * 24) * 2 / 8)
    assert emb["lifetime_years"] == 5
    assert (emb["resource"], emb["resources_reserved"], emb["resources_host"]) == ("gpu", 2, 8)
    assert emb["embodied_co2e_low_kg"] < emb["embodied_co2e_kg"] < emb["embodied_co2e_high_kg"]
    assert "Apache-2.0" in emb["licence"]


def test_estimate_builds_a_host_from_the_gpus_without_an_instance_type() -> None:
    code, out, _ = _run("--gpu", "H100", "--count", "8", "--hours", "1", "--zone", "DE")
    assert code == 0, out
    line = _lines(out)["embodied"]
    assert "8 of 8 GPUs" in line and "components" in line and "4-year lifetime" in line
