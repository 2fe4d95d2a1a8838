import plotly.express as px
import streamlit as st
from cl_ui import filters, kg, q, table

from carbonledger.reporting import methodology, queries
from carbonledger.reporting.methodology import hourly_intensity_available

st.title("Carbon-aware what-if")
team, _ = filters()
t = q(queries.totals, team=team)
st.metric("Actual CO2e location-based", kg(t.co2e_location_kg))
zones = q(methodology.zone_factors, period=False)
default = [z for z in ("FR", "SE", "NO", "DE", "US-CAL-CISO", "PL") if z in set(zones.zone)]
chosen = st.multiselect("Run the same energy in", zones.zone.tolist(), default=default)
df = q(methodology.what_if, zones=tuple(chosen), team=team)
if len(df):
    st.plotly_chart(
        px.bar(df, x="zone", y="co2e_location_kg", hover_data=["savings_kg"]), key="whatif"
    )
table(df, "what_if")
if not hourly_intensity_available():
    st.caption(
        "Time-of-day shifting needs hourly intensities; the ledger holds yearly factors only, "
        "so shifting savings are not shown."
    )
