import streamlit as st
from cl_ui import filters, kg, kwh, q, table

from carbonledger.reporting import advice

st.title("Cut")
st.caption(
    "What each team can change, ranked by the CO2e it saves per year at the current rate "
    "(the window runs from the first month chosen to the ledger's latest activity). "
    "Kinds can overlap, so the total is an upper bound; docs/recommendations.md has each "
    "formula."
)
team, _ = filters()
recs = q(advice.recommendations, team=team)
cols = st.columns(3)
cols[0].metric("Potential saving per year", kg(float(recs.saving_co2e_kg_per_year.sum())))
cols[1].metric("Energy saved per year", kwh(float(recs.saving_energy_kwh_per_year.sum())))
cols[2].metric("Recommendations", f"{int((recs.saving_co2e_kg_per_year > 0).sum()):,}")
if recs.empty:
    st.info("Nothing to cut in this window: no idle serving, failed runs, sweeps or dirty places.")
    st.stop()
for r in recs.head(10).itertuples():
    with st.container(border=True):
        left, right = st.columns([3, 1])
        left.markdown(f"**{r.title}**")
        scope = f"{r.kind.replace('-', ' ').capitalize()} · team {r.team}"
        left.caption(scope + (f" · model {r.model_name}" if r.model_name else ""))
        right.metric("Saving per year", kg(r.saving_co2e_kg_per_year), r.confidence)
        st.markdown(f"**How.** {r.how}")
        st.markdown(f"**Evidence.** {r.evidence}")
        st.caption(f"Saving: {r.method}.")
        links = st.columns(4)
        if r.run_ids:
            first = r.run_ids.split(", ")[0]
            links[0].page_link(
                "app_pages/runs.py", label="Open the run", query_params={"run": first}
            )
        if r.model_name:
            links[1].page_link(
                "app_pages/models.py", label="Open the model", query_params={"model": r.model_name}
            )
st.subheader("All recommendations")
table(recs.drop(columns=["how"]), "recommendations")
