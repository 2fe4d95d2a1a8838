"""`carbonledger import inference`: request counts of models served outside Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from carbonledger.cli import app
from carbonledger.intensity.factors import GridFactor
from carbonledger.ledger.repositories import seed_emission_factors


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "usage.csv"
    path.write_text(body)
    return path


def test_bloom_deployment_worked_example_through_the_ledger(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    # BLOOM's API (Luccioni et al. 2022): 18 days, 230,768 requests, 914 kWh, 394 g/kWh.
    with ledger.begin() as conn:
        seed_emission_factors(
            conn, factors=[GridFactor(394.0, "bloom-paper", year=2022, zone="BLOOM-DC")]
        )
    usage = write(
        tmp_path,
        "time,model,version,requests,energy_kwh,duration_s\n"
        "2022-11-01T00:00:00Z,bloom,1,230768,914,1555200\n",
    )

    out = cli(
        "import", "inference", str(usage), "--zone", "BLOOM-DC", "--pue", "1.0",
        "--ledger-url", ledger_url,
    )  # fmt: skip

    assert out.exit_code == 0, out.output
    assert "loaded 1, updated 0 windows (0 estimated" in out.output
    [v] = rows(ledger, "SELECT * FROM inference_co2e")
    assert v.metering == "imported" and not v.any_component_estimated
    assert v.wh_per_request == pytest.approx(3.96, abs=0.005)
    assert v.co2e_location_g_per_request == pytest.approx(1.56, abs=0.005)
    assert v.co2e_location_kg == pytest.approx(914 * 0.394)
    from carbonledger.budgets import model_lifecycle

    with ledger.connect() as conn:
        lc = model_lifecycle(conn, model_name="bloom")
    assert lc.inference_g_per_request == pytest.approx(1.56, abs=0.005)


def test_rows_without_energy_are_estimated_from_wh_per_request_and_flagged(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    usage = write(
        tmp_path,
        "time,model,version,requests,energy_kwh,team\n"
        "2024-06-01,ranker,4,10000,,search\n"
        "2024-06-02T00:00:00+02:00,ranker,4,20000,5.0,search\n",
    )

    out = cli(
        "import", "inference", str(usage), "--wh-per-request", "0.5", "--zone", "DE",
        "--pue", "1.1", "--ledger-url", ledger_url,
    )  # fmt: skip

    assert out.exit_code == 0, out.output
    first, second = rows(ledger, "SELECT * FROM inference_windows ORDER BY window_start")
    assert first.energy_kwh == pytest.approx(5.0) and first.any_component_estimated
    assert first.methods == "requests-x-bench-wh:0.5" and first.team == "search"
    assert first.facility_energy_kwh == pytest.approx(5.5)
    assert str(first.window_end)[:10] == "2024-06-02"  # one day by default
    assert second.energy_kwh == pytest.approx(5.0) and not second.any_component_estimated
    assert str(second.window_start)[:19] == "2024-06-01 22:00:00"  # stored in UTC

    again = cli(
        "import", "inference", str(usage), "--wh-per-request", "0.5", "--zone", "DE",
        "--ledger-url", ledger_url,
    )  # fmt: skip
    assert "loaded 0, updated 2" in again.output
    assert rows(ledger, "SELECT count(*) FROM inference_windows")[0][0] == 2


def test_the_bench_json_gives_the_wh_per_request(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"wh_per_request": 0.25, "requests": 100}))
    usage = write(tmp_path, "time,model,version,requests\n2024-06-01,m,1,400\n")

    out = cli("import", "inference", str(usage), "--bench", str(bench), "--ledger-url", ledger_url)

    assert out.exit_code == 0, out.output
    [w] = rows(
        ledger, "SELECT energy_kwh, any_component_estimated, grid_zone FROM inference_windows"
    )
    assert w.energy_kwh == pytest.approx(0.1) and w.any_component_estimated
    assert w.grid_zone == "DE"  # CARBONLEDGER_GRID_ZONE when the row and --zone have none
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    refused = cli(
        "import", "inference", str(usage), "--bench", str(bad), "--ledger-url", ledger_url
    )
    assert refused.exit_code == 1 and "inference-bench" in refused.output


def test_bad_rows_go_to_quarantine_with_the_reason_and_line(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    usage = write(
        tmp_path,
        "time,model,version,requests,energy_kwh,zone\n"
        "2024-06-01,m,1,100,,DE\n"  # no energy and no --wh-per-request
        "2024-06-01,m,x,100,1,DE\n"  # version not a number
        "yesterday,m,1,100,1,DE\n"  # not ISO 8601
        "2024-06-02,m,1,-5,1,DE\n"  # negative
        "2024-06-03,m,1,5,1,MARS\n"  # unknown zone
        "9999-12-31T23:59:59Z,m,1,5,1,DE\n"  # its 1-day window ends after year 9999
        "9999-12-31T23:00:00-05:00,m,1,5,1,DE\n"  # in UTC that is year 10000
        "2024-06-04,m,1,5,1,DE\n",  # fine
    )

    out = cli("import", "inference", str(usage), "--ledger-url", ledger_url)

    assert out.exit_code == 0, out.output
    assert "loaded 1" in out.output and "quarantined 7" in out.output
    reasons = dict(rows(ledger, "SELECT reason, count(*) FROM quarantine GROUP BY reason"))
    assert reasons == {"missing-field": 1, "invalid-field": 4, "negative": 1, "unknown-zone": 1}
    details = [r.detail for r in rows(ledger, "SELECT detail FROM quarantine")]
    [detail] = [d for d in details if "MARS" in d]
    assert detail.startswith("line 6:")
    [detail] = [d for d in details if "23:59:59Z" in d]
    assert detail.startswith("line 7:") and "ends after 9999" in detail
    [detail] = [d for d in details if "-05:00" in d]
    assert detail.startswith("line 8:") and "outside the years 1-9999 in UTC" in detail


def test_a_file_that_is_not_a_usage_csv_is_refused(ledger_url: str, tmp_path: Path) -> None:
    usage = write(tmp_path, "when,what\n1,2\n")
    from carbonledger.ledger import create_ledger_engine, migrate

    migrate.upgrade(create_ledger_engine(ledger_url))

    out = cli("import", "inference", str(usage), "--ledger-url", ledger_url)

    assert out.exit_code == 1
    assert "lacks the columns ['time', 'model', 'version', 'requests']" in out.output


def test_a_file_that_is_not_utf8_is_refused_with_the_fix(ledger_url: str, tmp_path: Path) -> None:
    usage = tmp_path / "usage.csv"
    usage.write_bytes("time,model,version,requests\n2024-06-01,modèle,1,5\n".encode("latin-1"))
    from carbonledger.ledger import create_ledger_engine, migrate

    migrate.upgrade(create_ledger_engine(ledger_url))

    out = cli("import", "inference", str(usage), "--ledger-url", ledger_url)

    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "is not UTF-8 text: save it as a UTF-8 CSV" in out.output


def test_a_window_without_a_zone_uses_the_world_factor(ledger: Engine) -> None:
    with ledger.begin() as conn:
        conn.execute(text("INSERT INTO tracking_sources (uri, kind) VALUES ('s', 'x')"))
    from datetime import UTC, datetime

    from carbonledger.etl.inference import upsert_windows

    with ledger.begin() as conn:
        upsert_windows(
            conn,
            [
                {
                    "source_id": 1,
                    "run_id": "r",
                    "window_start": datetime(2024, 1, 1, tzinfo=UTC),
                    "window_end": datetime(2024, 1, 2, tzinfo=UTC),
                    "activity_year": 2024,
                    "requests": 0,
                    "energy_kwh": 1.0,
                    "facility_energy_kwh": 1.0,
                }
            ],
            update=False,
        )
    [v] = rows(ledger, "SELECT zone, co2e_location_kg, wh_per_request FROM inference_co2e")
    assert v.zone == "WORLD" and v.co2e_location_kg == pytest.approx(0.475)
    assert v.wh_per_request is None  # no requests: no per-request figure
