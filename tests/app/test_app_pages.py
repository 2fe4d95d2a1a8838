"""Every page of the app on a seeded ledger, through streamlit's AppTest; the figures shown
equal figures computed independently from the raw tables (tests/reporting/expected.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from expected import totals as expected_totals
from sqlalchemy import Engine, text
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py")
PAGES = ["overview", "cut", "teams", "models", "runs", "efficiency", "whatif", "methodology"]
LOC = "CO2e location-based (kg CO2e)"


@pytest.fixture
def app_ledger(seeded: Engine, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_LEDGER_URL", ledger_url)
    get_settings.cache_clear()
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    return seeded


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _kg(value: float) -> str:
    return f"{value / 1000:,.2f} t CO2e" if abs(value) >= 1000 else f"{value:,.2f} kg CO2e"


pytestmark = pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)


def test_overview_totals_equal_independent_sql(app_ledger: Engine) -> None:
    at = _open("overview")
    want = expected_totals(app_ledger, first="2024-04", last="2024-09")
    shown = _metrics(at)
    assert shown["CO2e location-based"] == _kg(want["loc_kg"])
    assert shown["CO2e market-based"] == _kg(want["mkt_kg"])
    assert shown["Estimated share"] == f"{100 * want['estimated_kg'] / want['loc_kg']:.1f} %"
    assert shown["Inference share"] == f"{100 * want['inference_kg'] / want['loc_kg']:.1f} %"
    teams = at.dataframe[1].value
    for team, loc in zip(teams["Team"], teams[LOC], strict=True):
        team_want = expected_totals(app_ledger, first="2024-04", last="2024-09", team=team)
        assert loc == pytest.approx(team_want["loc_kg"], abs=1e-9)
    assert len(at.get("download_button")) >= 2


def test_filters_carry_across_pages(app_ledger: Engine) -> None:
    at = _open("overview")
    at.sidebar.selectbox[0].select("2024-06").run()
    at.sidebar.selectbox[1].select("2024-06").run()
    at.sidebar.selectbox[2].select("speech").run()
    want = expected_totals(app_ledger, first="2024-06", last="2024-06", team="speech")
    assert _metrics(at)["CO2e location-based"] == _kg(want["loc_kg"])
    at.switch_page("app_pages/teams.py").run()
    assert not at.exception
    assert at.sidebar.selectbox[2].value == "speech"
    assert _metrics(at)["Team CO2e location-based"] == _kg(want["loc_kg"])


def test_teams_page(app_ledger: Engine) -> None:
    at = _open("teams")
    team = at.header[0].value
    want = expected_totals(app_ledger, first="2024-04", last="2024-09", team=team)
    assert _metrics(at)["Team CO2e location-based"] == _kg(want["loc_kg"])
    assert _metrics(at)["Team training runs"] == str(int(want["runs"]))


def test_models_page_lifecycle_and_budget(app_ledger: Engine) -> None:
    at = _open("models")
    at.sidebar.selectbox[2].select("bert-qa").run()
    assert not at.exception
    with app_ledger.connect() as conn:
        row = conn.execute(
            text(
                "SELECT training_co2e_location_kg, inference_co2e_location_kg, "
                "lifecycle_co2e_location_kg FROM v_model_lifecycle WHERE model_name = 'bert-qa'"
            )
        ).one()
        used = conn.execute(
            text("SELECT used_pct FROM v_budget_status WHERE scope = 'model'")
        ).scalar_one()
    shown = _metrics(at)
    assert shown["Training CO2e"] == _kg(row[0])
    assert shown["Inference CO2e"] == _kg(row[1])
    assert shown["Lifecycle CO2e"] == _kg(row[2])
    assert shown["Budget used (location)"] == f"{used:.1f} %"
    assert any("Projected exhaustion" in m.value for m in at.markdown)


def test_runs_page_detail(app_ledger: Engine) -> None:
    at = _open("runs")
    run_id = at.main.selectbox[1].value
    with app_ledger.connect() as conn:
        kg = conn.execute(
            text("SELECT inclusive_co2e_location_kg FROM v_run_emissions WHERE run_id = :r"),
            {"r": run_id},
        ).scalar_one()
    assert _metrics(at)["Run CO2e location-based"] == _kg(kg)
    assert at.get("link_button"), "no link back to the MLflow run"
    at.main.selectbox[0].select("FAILED").run()
    runs = at.dataframe[0].value
    assert len(runs) and set(runs["Status"]) == {"FAILED"}


def test_runs_page_opens_a_linked_run(app_ledger: Engine) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "run0011"
    at.run()
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception
    assert at.main.selectbox[1].value == "run0011"
    assert at.subheader[0].value == "trial-11"


def test_efficiency_page_marks_the_front(app_ledger: Engine) -> None:
    at = _open("efficiency")
    df = at.dataframe[0].value.rename(
        columns={
            LOC: "co2e_location_kg",
            "Metric value": "metric_value",
            "On the Pareto front": "on_front",
        }
    )
    assert set(df.columns) >= {"co2e_location_kg", "metric_value", "on_front", "Experiment"}
    front = df[df.on_front]
    for row in df.itertuples():  # nothing beats a front point
        dominated = front[
            (front.co2e_location_kg <= row.co2e_location_kg)
            & (front.metric_value > row.metric_value)
        ]
        assert row.on_front != bool(len(dominated))


def test_whatif_page(app_ledger: Engine) -> None:
    at = _open("whatif")
    df = at.dataframe[-1].value
    want = expected_totals(app_ledger, first="2024-04", last="2024-09")
    fr = df[df["Zone"] == "FR"].iloc[0]
    saving = want["loc_kg"] - fr["Facility energy (kWh)"] * 50.0 / 1000
    assert fr["Saving (kg CO2e)"] == pytest.approx(saving)
    for frame in at.dataframe:  # human labels with units, no snake_case
        assert not [c for c in frame.value.columns if "_" in str(c)]
    assert at.slider[0].value == 24 and (at.slider[0].min, at.slider[0].max) == (0, 48)


def test_methodology_page(app_ledger: Engine) -> None:
    at = _open("methodology")
    with app_ledger.connect() as conn:
        est, total = conn.execute(
            text(
                "SELECT SUM(CASE WHEN any_component_estimated THEN 1 ELSE 0 END), COUNT(*) "
                "FROM runs"
            )
        ).one()
    assert _metrics(at)["Runs with an estimated component"] == f"{est} of {total}"
    assert any("ODbL" in m.value for m in at.markdown)


def test_empty_ledger_shows_how_to_load(ledger: Engine, ledger_url: str, monkeypatch) -> None:  # noqa: ANN001
    from carbonledger.settings import get_settings

    monkeypatch.setenv("CARBONLEDGER_LEDGER_URL", ledger_url)
    get_settings.cache_clear()
    import streamlit as st

    st.cache_data.clear()
    for page in PAGES:
        at = _open(page)
        assert any("carbonledger etl" in i.value for i in at.info), page


def test_cut_page_ranks_the_advice(app_ledger: Engine) -> None:
    from carbonledger.advise import advise
    from carbonledger.reporting import parse_period

    at = _open("cut")
    want = advise(app_ledger, since=parse_period("2024-04").start)
    total = sum(r.saving_co2e_kg_per_year for r in want)
    assert _metrics(at)["Potential saving per year"] == _kg(total)
    shown = at.dataframe[0].value
    assert list(shown["Kind"]) == [r.kind for r in want]
    assert any(want[0].title in m.value for m in at.markdown)
    assert any(m.value.startswith("**How.**") for m in at.markdown)
    assert _metrics(_open("overview"))["Potential saving per year"] == _kg(total)


def test_deep_link_opens_the_same_view(app_ledger: Engine) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"from": "2024-06", "to": "2024-06", "team": "speech"})
    at.run()
    assert not at.exception
    want = expected_totals(app_ledger, first="2024-06", last="2024-06", team="speech")
    assert _metrics(at)["CO2e location-based"] == _kg(want["loc_kg"])
    assert at.sidebar.selectbox[2].value == "speech"
    at.sidebar.selectbox[2].select("nlp").run()
    assert at.query_params["team"] in ("nlp", ["nlp"])


def _chart_titles(at: AppTest) -> list[str]:
    import json

    titles = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        layout = spec.get("layout", {})
        for axis in ("xaxis", "yaxis"):
            text_ = layout.get(axis, {}).get("title", {}).get("text")
            if text_:
                titles.append(text_)
        legend = layout.get("legend", {}).get("title", {}).get("text")
        if legend:
            titles.append(legend)
    return titles


@pytest.mark.parametrize("page", PAGES)
def test_no_snake_case_on_screen(app_ledger: Engine, page: str) -> None:
    at = _open(page)
    columns = [str(c) for df in at.dataframe for c in df.value.columns]
    assert columns and not [c for c in columns if "_" in c], page
    titles = _chart_titles(at)
    assert not [t for t in titles if "_" in t], (page, titles)


def test_overview_shows_scope_3_apart_and_the_scope_2_range(app_ledger: Engine) -> None:
    at = _open("overview")
    with app_ledger.connect() as conn:
        embodied = conn.execute(
            text(
                "SELECT COALESCE(SUM(embodied_co2e_kg), 0) FROM ("
                "SELECT embodied_co2e_kg, month FROM v_run_embodied WHERE kind <> 'inference' "
                "UNION ALL SELECT embodied_co2e_kg, month FROM v_window_embodied) a "
                "WHERE month BETWEEN '2024-04' AND '2024-09'"
            )
        ).scalar_one()
    shown = _metrics(at)
    assert shown["Embodied CO2e (Scope 3)"] == _kg(float(embodied))
    want = expected_totals(app_ledger, first="2024-04", last="2024-09")
    assert _kg(want["loc_kg"]) == shown["CO2e location-based"]  # the range is beside, not instead
    value, span = shown["Operational CO2e with range (Scope 2)"].rstrip(")").split(" (")
    low, high = (float(x.replace(",", "")) for x in span.split("-"))
    shown_kg = float(value.split()[0].replace(",", ""))
    assert low < shown_kg < high
    assert shown_kg == pytest.approx(want["loc_kg"], rel=5e-3)  # three significant figures
    assert any("never added to Scope 2" in c.value for c in at.caption)


def test_models_page_shows_sci_per_request_of_its_versions(app_ledger: Engine) -> None:
    at = _open("models")
    at.sidebar.selectbox[2].select("bert-qa").run()
    assert not at.exception
    with app_ledger.connect() as conn:
        want = dict(
            conn.execute(
                text(
                    "SELECT model_version, sci_co2e_g_per_unit FROM v_sci "
                    "WHERE functional_unit = 'request' AND model_name = 'bert-qa'"
                )
            ).all()
        )
    frames = [f.value for f in at.dataframe if "SCI CO2e (g CO2e per request)" in f.value.columns]
    assert frames, "no SCI table on the Models page"
    got = dict(zip(frames[0]["Version"], frames[0]["SCI CO2e (g CO2e per request)"], strict=True))
    assert got.keys() == want.keys() and want
    for version, g in want.items():
        assert got[version] == pytest.approx(g, rel=1e-9)
