"""`carbonledger doctor` reports what the plugin would detect here, and why."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner


def _app() -> typer.Typer:
    from carbonledger.cli import plugin_cmd

    app = typer.Typer()
    app.command("noop")(lambda: None)
    plugin_cmd.register(app)
    return app


def test_doctor_json_reports_devices_methods_intensity_pue_and_uri(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARBONLEDGER_COUNTRY", "FR")
    monkeypatch.delenv("CARBONLEDGER_INTENSITY_G_PER_KWH")
    monkeypatch.delenv("CARBONLEDGER_PUE")
    from carbonledger.settings import get_settings

    get_settings.cache_clear()
    result = CliRunner().invoke(_app(), ["doctor", "--json", "--sample-s", "0.2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["plugin"]["entry_point_declared"] is True
    assert report["mlflow"]["tracking_uri"] == mlflow_uri
    assert report["mlflow"]["hooks_installed"] is True
    # this machine: no GPU, no readable RAPL (empty powercap root) -> estimates
    measurement = report["measurement"]
    assert "cpu=" in measurement["methods"] and "ram=" in measurement["methods"]
    assert measurement["hardware"]["carbon.gpu_count"] == "0"
    assert report["intensity"]["resolved_by"] == "country"
    assert report["intensity"]["location"]["country"] == "FR"
    assert report["pue"]["source"] == "default" and report["pue"]["why"]
    assert report["journal"]["pending_batches"] == 0


def test_doctor_text_has_a_section_per_topic(mlflow_uri: str) -> None:
    result = CliRunner().invoke(_app(), ["doctor", "--sample-s", "0"])
    assert result.exit_code == 0, result.output
    for section in ("[plugin]", "[measurement]", "[intensity]", "[pue]", "[mlflow]", "[journal]"):
        assert section in result.output
