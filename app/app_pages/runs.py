import plotly.express as px
import streamlit as st
from cl_ui import filters, kg, kwh, labels, q, table

from carbonledger.reporting import runs as run_queries

st.title("Runs")
team, model = filters(model=True)
c1, c2 = st.columns(2)
status = c1.selectbox("Status", ["All", "FINISHED", "FAILED", "RUNNING", "KILLED"])
linked = st.query_params.get("run")  # a link from the Cut page: ?run=<run id>
search = c2.text_input("Run name or id contains")
runs = q(
    run_queries.runs_table,
    team=team,
    model_name=model,
    status=None if status == "All" else status,
    search=search or None,
)
st.caption(f"{len(runs)} runs (newest first, at most 500)")
table(runs.drop(columns=["experiment_id"]), "runs")
if runs.empty:
    st.stop()
names = dict(zip(runs.run_id, runs.run_name.fillna(""), strict=True))
ids = runs.run_id.tolist()
if linked and linked not in ids:  # a linked run outside the filters still opens
    ids.insert(0, linked)
    names[linked] = ""
run_id = st.selectbox(
    "Run detail",
    ids,
    index=ids.index(linked) if linked in ids else 0,
    format_func=lambda r: f"{names[r] or 'unnamed'} ({r[:8]})",
)
st.query_params["run"] = run_id
d = q(run_queries.run_detail, period=False, run_id=run_id)
st.subheader(f"{d['run_name'] or run_id}")
cols = st.columns(4)
# Shown alone, a run shows MLflow's figure: a parent's includes its nested runs.
cols[0].metric("Run CO2e location-based", kg(d["inclusive_co2e_location_kg"] or 0.0))
cols[1].metric("Run CO2e market-based", kg(d["inclusive_co2e_market_kg"] or 0.0))
cols[2].metric("Facility energy", kwh(d["inclusive_facility_energy_kwh"]))
cols[3].metric("PUE", f"{d['pue'] or 0:.3f}")
st.write(
    f"Team {d['team']}, model {d['model_name'] or '-'}, status {d['status']}. Hardware: "
    f"{d['gpu_count'] or 0} x {d['gpu_model'] or 'no GPU'}, {d['cpu_count'] or '?'} x "
    f"{d['cpu_model'] or '?'} CPU, {d['ram_gb'] or '?'} GB RAM. Methods: `{d['methods'] or '-'}`."
)
st.write(
    f"Intensity: {d['location_intensity_g_per_kwh']} g CO2e/kWh for zone {d['zone']} "
    f"({d['location_factor_source']}, {d['factor_year']}, version "
    f"{d['location_factor_version']}); plugin's source: {d['plugin_intensity_source'] or '-'}. "
    f"IT energy {kwh(d['energy_kwh'])}, facility energy {kwh(d['facility_energy_kwh'])} "
    f"(own part); estimated components: {kwh(d['estimated_energy_kwh'])}."
)
if d["nested_runs"]:
    st.caption(
        f"This run holds {d['nested_runs']} nested runs: the figures above include them; its "
        f"own part is {kg(d['co2e_location_kg'] or 0.0)} (what team and model totals count)."
    )
if d["mlflow_url"]:
    st.link_button("Open the run in MLflow", d["mlflow_url"])
left, right = st.columns(2)
energy = d["energy"]
if len(energy):
    left.plotly_chart(
        px.bar(energy, x="component", y="energy_kwh", color="method", labels=labels(energy),
               title="Energy by component (kWh)"),
        key="energy",
    )  # fmt: skip
history = d["energy_history"]
if len(history):
    right.plotly_chart(
        px.line(history, x="time", y="energy_kwh", labels={"time": "Time (UTC)",
                "energy_kwh": "Cumulative IT energy (kWh)"}, title="Energy over time"),
        key="energy_time",
    )  # fmt: skip
else:
    right.caption("No energy history for this run (the ETL keeps it for metered runs).")
table(energy, "run_energy")
