import plotly.express as px
import streamlit as st
from cl_ui import filters, human, labels, q, table

from carbonledger.reporting import runs

st.title("Efficiency")
team, model = filters(model=True)
keys = q(runs.metric_keys, team=team)
if not keys:
    st.info("No MLflow metric other than carbon ones in this period (the ETL keeps them).")
    st.stop()
metric = st.selectbox("Metric", keys, index=keys.index("accuracy") if "accuracy" in keys else 0)
higher = (
    st.radio("Better is", ["higher", "lower"], horizontal=True, index=1 if "loss" in metric else 0)
    == "higher"
)
group = st.radio("Colour by", ["experiment", "model_name"], horizontal=True, format_func=human)
df = q(runs.efficiency, metric=metric, team=team, model_name=model, higher_is_better=higher)
st.metric("Runs on the Pareto front", f"{int(df.on_front.sum())} of {len(df)}")
if len(df):
    shown = df.assign(on_front=df.on_front.map({True: "on the front", False: "dominated"}))
    fig = px.scatter(
        shown,
        x="co2e_location_kg",
        y="metric_value",
        color=group,
        symbol="on_front",
        hover_data=["run_name", "team"],
        labels=labels(shown) | {"metric_value": metric},
    )
    front = df[df.on_front].sort_values("co2e_location_kg")
    fig.add_scatter(
        x=front.co2e_location_kg, y=front.metric_value, mode="lines", name="Pareto front"
    )
    fig.update_layout(xaxis_title="CO2e per run (kg CO2e)", yaxis_title=f"{metric} (as logged)")
    st.plotly_chart(fig, key="pareto")
table(df, "efficiency")
