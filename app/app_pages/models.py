import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from cl_ui import filters, kg, labels, options, q, scopes, table

from carbonledger.reporting import embodied, lifecycle, runs

st.title("Models")
_, model = filters(team=False, model=True)
models = options()["models"]
if not models:
    st.info("No registered model or model-tagged run in the ledger yet.")
    st.stop()
if model is None:
    model = models[0]
    st.caption(f"No model chosen in the sidebar: showing {model}.")
st.header(model)
link = q(runs.model_mlflow_url, period=False, model_name=model)
if link:
    st.link_button("Open the model in MLflow", link)
lc = q(lifecycle.lifecycle, period=False, model_name=model)
cols = st.columns(4)
cols[0].metric("Training CO2e", kg(lc.training_co2e_kg))
cols[1].metric("Inference CO2e", kg(lc.inference_co2e_kg))
cols[2].metric("Lifecycle CO2e", kg(lc.co2e_kg))
cols[3].metric("Training runs", f"{lc.training_runs:,}")
scopes(model=model, period=False)

monthly = q(lifecycle.lifecycle_by_month, period=False, model_name=model)
st.subheader("Lifecycle: training vs cumulative inference")
if len(monthly):
    fig = go.Figure()
    fig.add_bar(x=monthly.month, y=monthly.training_co2e_location_kg, name="training")
    fig.add_bar(x=monthly.month, y=monthly.inference_co2e_location_kg, name="inference")
    fig.add_scatter(x=monthly.month, y=monthly.cumulative_co2e_location_kg, name="cumulative")
    fig.update_layout(barmode="stack", xaxis_title="Month", yaxis_title="kg CO2e (location-based)")
    st.plotly_chart(fig, key="lifecycle")
table(monthly, "model_lifecycle")

st.subheader("Budget burn-down")
budgets = q(lifecycle.budgets, period=False, model_name=model)
if budgets.empty:
    st.caption("No lifecycle budget for this model (`carbonledger budgets`).")
for row in budgets.itertuples():
    thresholds = row.thresholds_pct
    st.metric(f"Budget used ({row.basis})", f"{row.used_pct:.1f} %", kg(row.limit_co2e_kg))
    if len(monthly):
        fig = go.Figure()
        fig.add_scatter(
            x=monthly.month,
            y=row.limit_co2e_kg - monthly.cumulative_co2e_location_kg,
            name="remaining",
        )
        fig.update_layout(xaxis_title="Month", yaxis_title="Remaining budget (kg CO2e)")
        for pct_ in thresholds:
            fig.add_hline(
                y=row.limit_co2e_kg * (1 - pct_ / 100.0),
                line_dash="dot",
                annotation_text=f"{pct_:g} %",
            )
        st.plotly_chart(fig, key=f"burn{row.budget_id}")
    st.write(f"Projected exhaustion: **{row.projected_exhaustion}**")

st.subheader("CO2e per 1,000 requests")
per = q(lifecycle.per_1000_requests, model_name=model)
if len(per):
    st.plotly_chart(  # fmt: skip
        px.line(
            per,
            x="day",
            y="co2e_g_per_1000_requests",
            color="model_version",
            labels=labels(per),
        ),
        key="per1000",
    )
table(per, "per_1000_requests")
st.subheader("SCI per request (Green Software Foundation)")
table(q(embodied.sci_by_version, period=False, model_name=model), "sci_per_request")
st.caption("SCI = (operational + embodied CO2e of serving) / requests, location-based.")
st.subheader("Versions")
table(q(lifecycle.versions, period=False, model_name=model), "versions")
