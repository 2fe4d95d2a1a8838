import plotly.express as px
import streamlit as st
from cl_ui import filters, kg, labels, options, q, scopes, table

from carbonledger.reporting import embodied, lifecycle, queries, runs

st.title("Teams")
team, _ = filters()
if team is None:
    team = options()["teams"][0]
    st.caption(f"No team chosen in the sidebar: showing {team}.")
st.header(team)
t = q(queries.totals, team=team)
cols = st.columns(3)
cols[0].metric("Team CO2e location-based", kg(t.co2e_location_kg))
cols[1].metric("Team CO2e market-based", kg(t.co2e_market_kg))
cols[2].metric("Team training runs", f"{t.training_runs:,}")
scopes(team=team)

st.subheader("Models")
table(q(queries.by_model, team=team), "team_models")
st.subheader("Embodied CO2e (Scope 3)")
mine = q(embodied.embodied_by_team)
table(mine[mine.team == team], "team_embodied")
st.subheader("Budgets")
table(
    q(lifecycle.budgets, period=False, team=team).drop(columns=["thresholds_pct"]), "team_budgets"
)
st.subheader("Trend")
trend = q(queries.monthly_trend, team=team)
if len(trend):
    st.plotly_chart(
        px.bar(trend, x="month", y="co2e_location_kg", color="activity", labels=labels(trend)),
        key="t",
    )
table(trend, "team_trend")
st.subheader("Latest runs")
table(q(runs.runs_table, team=team, limit=100), "team_runs")
