"""carbonledger: energy and carbon of ML, per team, model and run (read-only on the ledger).

Run with ``carbonledger app`` or ``streamlit run app/streamlit_app.py``; the ledger is
CARBONLEDGER_LEDGER_URL.
"""

import streamlit as st

st.set_page_config(page_title="carbonledger", page_icon=":seedling:", layout="wide")

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", default=True),
    st.Page("app_pages/cut.py", title="Cut"),
    st.Page("app_pages/teams.py", title="Teams"),
    st.Page("app_pages/models.py", title="Models"),
    st.Page("app_pages/runs.py", title="Runs"),
    st.Page("app_pages/efficiency.py", title="Efficiency"),
    st.Page("app_pages/whatif.py", title="Carbon-aware what-if"),
    st.Page("app_pages/methodology.py", title="Methodology"),
]

st.navigation(PAGES).run()
