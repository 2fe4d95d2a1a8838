import plotly.express as px
import streamlit as st
from cl_ui import filters, q, table

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
group = st.radio("Colour by", ["experiment_id", "model_name"], horizontal=True)
df = q(runs.efficiency, metric=metric, team=team, model_name=model, higher_is_better=higher)
st.metric("Runs on the Pareto front", f"{int(df.on_front.sum())} of {len(df)}")
if len(df):
    fig = px.scatter(
        df,
        x="co2e_location_kg",
        y="metric_value",
        color=group,
        symbol="on_front",
        hover_data=["run_id", "run_name"],
    )
    front = df[df.on_front].sort_values("co2e_location_kg")
    fig.add_scatter(
        x=front.co2e_location_kg, y=front.metric_value, mode="lines", name="Pareto front"
    )
    fig.update_layout(xaxis_title="kg CO2e per run", yaxis_title=metric)
    st.plotly_chart(fig, key="pareto")
table(df, "efficiency")
