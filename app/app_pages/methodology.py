import pandas as pd
import streamlit as st
from cl_ui import filters, q, table

from carbonledger.reporting import methodology
from carbonledger.reporting.methodology import DEFAULTS, FORMULAS, attribution_text

st.title("Methodology")
team, _ = filters()
st.subheader("Formulas")
table(pd.DataFrame(FORMULAS, columns=["quantity", "formula"]), "formulas")
st.subheader("Defaults applied")
table(pd.DataFrame(DEFAULTS, columns=["when", "default"]), "defaults")
st.subheader("Estimated figures in this period")
e = q(methodology.estimate_counts, team=team)
cols = st.columns(4)
cols[0].metric("Runs with an estimated component", f"{e.runs_with_estimates} of {e.runs}")
cols[1].metric("Unmetered runs", str(e.unmetered_runs))
cols[2].metric("Runs at the world default", str(e.world_default_runs))
cols[3].metric("Market = location fallback", str(e.market_fallback_runs))
st.subheader("Emission factors in use")
table(q(methodology.factors_in_use, team=team), "factors_in_use")
st.subheader("Data sources and licences")
st.markdown(attribution_text())
