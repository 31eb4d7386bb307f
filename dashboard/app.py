"""GoogLeNet Explorer: the router. Page setup, the page list and the sidebar every page shares.

Run from the repository root: ``streamlit run dashboard/app.py``.
"""

import sys
from pathlib import Path

# Streamlit puts only this file's folder on sys.path; the repository root holds gnet and dashboard.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from dashboard import state  # noqa: E402
from dashboard.views import sidebar  # noqa: E402

st.set_page_config(page_title="GoogLeNet Explorer", page_icon=":material/hub:", layout="wide")
page = st.navigation(
    [
        st.Page("routes/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("routes/branches.py", title="Inception branches", icon=":material/account_tree:"),
        st.Page("routes/heads.py", title="Heads", icon=":material/compare_arrows:"),
        st.Page("routes/gradients.py", title="Gradients", icon=":material/trending_down:"),
        st.Page("routes/cost.py", title="Cost", icon=":material/calculate:"),
        st.Page("routes/attributions.py", title="Attributions", icon=":material/center_focus_strong:"),
    ]
)
state.set_selection(sidebar.render())
page.run()
