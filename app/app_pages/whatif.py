import plotly.express as px
import streamlit as st
from cl_ui import filters, kg, q, table

from carbonledger.reporting import methodology, queries, timing

st.title("Carbon-aware what-if")
team, _ = filters()
t = q(queries.totals, team=team)
st.metric("Actual CO2e location-based", kg(t.co2e_location_kg))

st.header("Shift in time")
flex_h = st.slider("Flexibility: start up to this many hours earlier or later", 0, 48, 24)
runs = q(timing.period_savings, flex_h=flex_h, team=team)
by_team = timing.savings_by_team(runs)
actual, best = float(runs.co2e_actual_kg.sum()), float(runs.co2e_best_kg.sum())
c1, c2, c3 = st.columns(3)
c1.metric("Training CO2e as run", kg(actual))
c2.metric("Training CO2e at the cleanest start", kg(best))
c3.metric("Saving from timing", kg(actual - best))
if len(by_team):
    long = by_team.melt(
        id_vars="team", value_vars=["co2e_actual_kg", "co2e_best_kg"], var_name="figure"
    )
    long["figure"] = long.figure.map(
        {"co2e_actual_kg": "As run", "co2e_best_kg": f"Cleanest start within ±{flex_h} h"}
    )
    st.plotly_chart(
        px.bar(
            long,
            x="team",
            y="value",
            color="figure",
            barmode="group",
            labels={"team": "Team", "value": "CO2e (kg)", "figure": "Start"},
        ),
        key="whatif_shift",
    )
table(
    by_team.rename(
        columns={
            "team": "Team",
            "runs": "Training runs",
            "co2e_actual_kg": "CO2e as run (kg)",
            "co2e_best_kg": "CO2e at the cleanest start (kg)",
            "saving_kg": "Saving (kg CO2e)",
            "saving_pct": "Saving (%)",
        }
    ),
    "timing_by_team",
)
methods = runs.intensity_method.value_counts().to_dict() if len(runs) else {}
st.caption(
    "Same zone, same energy profile, moved whole hours; priced with hourly factors where the "
    "hours have them, else the zone's profile estimate (labelled hourly-profile-estimate), "
    "else the yearly factor (no saving possible). Runs by method of the best start: "
    + (", ".join(f"{m}: {n}" for m, n in sorted(methods.items())) or "none")
)

zones = q(timing.hourly_zones, period=False)
if zones:
    used = [z for z in runs.zone.value_counts().index if z in zones] if len(runs) else []
    zone = st.selectbox("Zone for the heatmap", zones, index=zones.index(used[0]) if used else 0)
    heat = q(timing.intensity_heatmap, period=False, zone=zone)
    if len(heat):
        st.plotly_chart(
            px.imshow(
                heat,
                labels={"x": "Hour of day (UTC)", "y": "Month", "color": "gCO2e/kWh"},
                aspect="auto",
                color_continuous_scale="RdYlGn_r",
                title=f"{zone}: mean hourly intensity (gCO2e/kWh) by month and hour",
            ),
            key="whatif_heatmap",
        )

st.header("Same energy in another zone")
zone_table = q(methodology.zone_factors, period=False)
default = [z for z in ("FR", "SE", "NO", "DE", "US-CAL-CISO", "PL") if z in set(zone_table.zone)]
chosen = st.multiselect("Run the same energy in", zone_table.zone.tolist(), default=default)
df = q(methodology.what_if, zones=tuple(chosen), team=team)
if len(df):
    st.plotly_chart(
        px.bar(
            df,
            x="zone",
            y="co2e_location_kg",
            hover_data=["savings_kg"],
            labels={"zone": "Zone", "co2e_location_kg": "CO2e location-based (kg)"},
        ),
        key="whatif",
    )
table(
    df.rename(
        columns={
            "zone": "Zone",
            "year": "Factor year",
            "intensity_g_per_kwh": "Intensity (gCO2e/kWh)",
            "source": "Source",
            "facility_energy_kwh": "Facility energy (kWh)",
            "co2e_location_kg": "CO2e location-based (kg)",
            "savings_kg": "Saving (kg CO2e)",
            "savings_pct": "Saving (%)",
        }
    ),
    "what_if",
)
