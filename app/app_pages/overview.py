import plotly.express as px
import streamlit as st
from cl_ui import filters, kg, kwh, labels, pct, q, scopes, table

from carbonledger.reporting import advice, queries

st.title("Overview")
team, _ = filters()
t = q(queries.totals, team=team)
saving = q(advice.potential_saving_kg_per_year, team=team)
# Two rows of three: at 1400 px every tile shows its whole figure.
top, bottom = st.columns(3), st.columns(3)
top[0].metric("CO2e location-based", kg(t.co2e_location_kg))
top[1].metric("CO2e market-based", kg(t.co2e_market_kg))
top[2].metric("Potential saving per year", kg(saving), help="Sum of the Cut page's savings.")
bottom[0].metric("Facility energy", kwh(t.facility_energy_kwh))
bottom[1].metric("Estimated share", pct(t.estimated_share))
bottom[2].metric("Inference share", pct(t.inference_share))
scopes(team=team)
st.page_link("app_pages/cut.py", label="Where to cut: the ranked recommendations")

trend = q(queries.monthly_trend, team=team)
st.subheader("Trend by month")
if len(trend):
    st.plotly_chart(
        px.bar(
            trend, x="month", y="co2e_location_kg", color="activity", barmode="stack",
            labels=labels(trend),
        ),
        key="trend",
    )  # fmt: skip
table(trend, "monthly_trend")

st.subheader("By team")
teams = q(queries.by_team)
if len(teams):
    st.plotly_chart(
        px.bar(teams, x="team", y="co2e_location_kg", labels=labels(teams)), key="teams"
    )
table(teams, "by_team")

left, right = st.columns(2)
split = {
    "Measured": t.measured_co2e_location_kg,
    "Estimated": t.estimated_co2e_location_kg,
}
left.plotly_chart(
    px.pie(names=list(split), values=list(split.values()), title="Measured vs estimated (kg CO2e)"),
    key="measured",
)
activity = {"Training": t.training_co2e_location_kg, "Inference": t.inference_co2e_location_kg}
right.plotly_chart(
    px.pie(
        names=list(activity), values=list(activity.values()),
        title="Training vs inference (kg CO2e)",
    ),
    key="activity",
)  # fmt: skip
