"""`carbonledger measure -- CMD`: runs the command, reports energy and CO2e, keeps its code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carbonledger.cli import app

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["measure", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_report_of_a_python_command() -> None:
    code, _, err = _invoke(
        "--json", "--intensity", "500", "--pue", "1.2", "--", sys.executable, "-c", BUSY
    )
    assert code == 0, err
    report = json.loads(err)
    assert report["command"][1:] == ["-c", BUSY]
    assert report["exit_code"] == 0
    assert report["duration_s"] >= 0.4
    assert set(report["components"]) == {"cpu", "ram"}  # no GPU on this machine
    cpu = report["components"]["cpu"]
    assert cpu["method"] == "tdp-utilisation-estimate" and cpu["measured"] is False
    assert 0 < cpu["avg_power_w"] <= cpu["peak_power_w"]
    assert report["energy_kwh"] == pytest.approx(
        sum(c["energy_kwh"] for c in report["components"].values())
    )
    assert report["pue"] == 1.2 and report["pue_source"] == "explicit"
    assert report["facility_energy_kwh"] == pytest.approx(report["energy_kwh"] * 1.2)
    assert report["intensity_g_per_kwh"] == 500.0
    assert report["intensity_resolved_by"] == "explicit"
    assert report["co2e_kg"] == pytest.approx(report["energy_kwh"] * 1.2 * 500 / 1000)
    assert report["methods"] == "cpu=tdp-utilisation-estimate;ram=ram-w-per-gb-estimate"
    assert report["hardware"]["carbon.gpu_count"] == "0"
    assert any("no RAPL zones" in n for n in report["notes"])


def test_exit_code_is_the_commands() -> None:
    code, _, err = _invoke("--json", "--", sys.executable, "-c", "import sys; sys.exit(7)")
    assert code == 7
    assert json.loads(err)["exit_code"] == 7


def test_command_not_found_exits_127_with_a_report() -> None:
    code, _, err = _invoke("--", "no-such-command-carbonledger")
    assert code == 127
    assert "command not found: no-such-command-carbonledger" in err


def test_table_report_names_components_methods_and_factors(tmp_path: Path) -> None:
    code, _, err = _invoke("--country", "DE", "--", sys.executable, "-c", "pass")
    assert code == 0, err
    for text in ("cpu", "ram", "tdp-utilisation-estimate", "(estimate)", "total (IT)", "PUE 1.00"):
        assert text in err
    assert "gCO2e/kWh" in err and ":DE" in err and "by country" in err
    assert "CO2e" in err and "facility energy" in err


def test_process_attribution_records_the_share() -> None:
    code, _, err = _invoke("--json", "--attribution", "process", "--", sys.executable, "-c", BUSY)
    assert code == 0, err
    report = json.loads(err)
    assert report["attribution"] == "process"
    assert 0 < report["components"]["cpu"]["share"] <= 1
    assert 0 < report["components"]["ram"]["share"] < 1


def test_unknown_zone_fails_before_running_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code, _, err = _invoke("--zone", "NOT-A-ZONE", "--", "touch", str(marker))
    assert code == 2
    assert "NOT-A-ZONE" in err
    assert not marker.exists()


def test_missing_command_is_a_usage_error() -> None:
    code, _, _ = _invoke("--json")
    assert code == 2


def test_end_to_end_in_a_real_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = {**os.environ, "CARBONLEDGER_INTENSITY_G_PER_KWH": "100"}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("carbonledger")),
            "measure",
            "--json",
            "-o",
            str(out),
            "--",
            sys.executable,
            "-c",
            "print('hello from the command')",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from the command\n"  # the command's stdout stays clean
    report = json.loads(out.read_text())
    assert report["intensity_g_per_kwh"] == 100.0
    assert report["co2e_kg"] == pytest.approx(report["facility_energy_kwh"] * 0.1)


def test_a_place_option_beats_the_environment_intensity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONLEDGER_INTENSITY_G_PER_KWH", "900")
    code, _, err = _invoke("--json", "--country", "DE", "--", sys.executable, "-c", "pass")
    assert code == 0, err
    report = json.loads(err)
    assert report["intensity_resolved_by"] == "country"
    assert report["intensity_g_per_kwh"] != 900.0
    code, _, err = _invoke("--json", "--", sys.executable, "-c", "pass")
    assert json.loads(err)["intensity_g_per_kwh"] == 900.0


def test_measure_reports_the_range_and_the_embodied_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "product_name").write_text("m5.2xlarge\n")
    monkeypatch.setenv("CARBONLEDGER_DMI_ROOT", str(dmi))
    monkeypatch.setenv("CARBONLEDGER_CLOUD_PROVIDER", "aws")
    from carbonledger.measure.host import read_dmi

    read_dmi.cache_clear()
    code, _, err = _invoke("--json", "--intensity", "500", "--", sys.executable, "-c", "pass")
    assert code == 0, err
    report = json.loads(err)
    rng = report["co2e_range"]
    # TDP estimate (35%) for the CPU, 0.3725 W/GB (50%) for RAM, explicit intensity (30%)
    kg = {c: report["components"][c]["energy_kwh"] * 0.5 for c in ("cpu", "ram")}
    sigma = (
        (0.35 * kg["cpu"]) ** 2 + (0.5 * kg["ram"]) ** 2 + (0.3 * sum(kg.values())) ** 2
    ) ** 0.5
    assert rng["relative_uncertainty"] == pytest.approx(sigma / sum(kg.values()))
    assert rng["co2e_low_kg"] < report["co2e_kg"] < rng["co2e_high_kg"]
    emb = report["embodied"]
    assert report["hardware"]["carbon.instance_type"] == "m5.2xlarge"
    assert emb["host_key"] == "ccf:aws:m5.2xlarge" and emb["resource"] == "vcpu"
    assert emb["resources_host"] == 96 and emb["lifetime_years"] == 4
    assert emb["embodied_co2e_kg"] > 0


def test_measure_table_prints_the_range_and_the_embodied_line() -> None:
    code, _, err = _invoke("--intensity", "500", "--", sys.executable, "-c", "pass")
    assert code == 0, err
    assert "CO2e range" in err and "uncertainty" in err
    assert "embodied" in err and "lifetime" in err


def test_the_cli_log_handler_writes_to_the_stderr_of_the_moment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A CLI runner swaps and closes sys.stderr: a later record must not hit the closed one."""
    import io
    import logging

    from carbonledger.cli import etl_cmd

    old = sys.stderr
    first = io.StringIO()
    sys.stderr = first
    try:
        with etl_cmd._log_to_stderr(verbose=False):
            sys.stderr = old
            first.close()
            logging.getLogger("carbonledger.test").warning("after the runner closed its stream")
    finally:
        sys.stderr = old
    assert "warning: after the runner closed its stream" in capsys.readouterr().err
    logging.getLogger("carbonledger.test").warning("after the command")  # handler gone
    assert "after the command" not in capsys.readouterr().err
