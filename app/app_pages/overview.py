import plotly.express as px
import streamlit as st
from cl_ui import filters, kg, kwh, pct, q, table

from carbonledger.reporting import queries

st.title("Overview")
team, _ = filters()
t = q(queries.totals, team=team)
cols = st.columns(5)
cols[0].metric("CO2e location-based", kg(t.co2e_location_kg))
cols[1].metric("CO2e market-based", kg(t.co2e_market_kg))
cols[2].metric("Facility energy", kwh(t.facility_energy_kwh))
cols[3].metric("Estimated share", pct(t.estimated_share))
cols[4].metric("Inference share", pct(t.inference_share))

trend = q(queries.monthly_trend, team=team)
st.subheader("Trend by month")
if len(trend):
    st.plotly_chart(
        px.bar(trend, x="month", y="co2e_location_kg", color="activity", barmode="stack"),
        key="trend",
    )
table(trend, "monthly_trend")

st.subheader("By team")
teams = q(queries.by_team)
if len(teams):
    st.plotly_chart(px.bar(teams, x="team", y="co2e_location_kg"), key="teams")
table(teams, "by_team")

left, right = st.columns(2)
split = {
    "Measured": t.measured_co2e_location_kg,
    "Estimated": t.estimated_co2e_location_kg,
}
left.plotly_chart(
    px.pie(names=list(split), values=list(split.values()), title="Measured vs estimated"),
    key="measured",
)
activity = {"Training": t.training_co2e_location_kg, "Inference": t.inference_co2e_location_kg}
right.plotly_chart(
    px.pie(names=list(activity), values=list(activity.values()), title="Training vs inference"),
    key="activity",
)
