"""GoogLeNet Explorer: the router. Page setup, the page list and the sidebar every page shares.

Served by :mod:`dashboard.serve` (``streamlit run dashboard/serve.py``, what run.sh does); running this file
directly works too, without the warm-up.
"""

import sys
from pathlib import Path

from PIL import Image

# Streamlit puts only this file's folder on sys.path; the repository root holds gnet and dashboard.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from dashboard import state  # noqa: E402
from dashboard.views import sidebar  # noqa: E402
from dashboard.views.common import error_boundary  # noqa: E402

# A local image, served by this server: a Material-icon favicon would be fetched from outside.
ICON = Path(__file__).resolve().parent.parent / "assets" / "icon.png"
st.set_page_config(page_title="GoogLeNet Explorer", page_icon=Image.open(ICON), layout="wide")
# File pages, not callables: AppTest.switch_page, which the app tests use, opens only file pages.
page = st.navigation(
    [
        st.Page("routes/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("routes/branches.py", title="Inception branches", icon=":material/account_tree:"),
        st.Page("routes/channels.py", title="Channels", icon=":material/visibility:"),
        st.Page("routes/heads.py", title="Heads", icon=":material/compare_arrows:"),
        st.Page("routes/gradients.py", title="Gradients", icon=":material/trending_down:"),
        st.Page("routes/cost.py", title="Cost", icon=":material/calculate:"),
        st.Page("routes/design.py", title="Design lab", icon=":material/science:"),
        st.Page("routes/attributions.py", title="Attributions", icon=":material/center_focus_strong:"),
    ]
)
selection = state.Selection(weights=state.default_weights(), device="cpu", weights_error="The sidebar could not be drawn: see the message in it.")
with error_boundary("the sidebar"):
    selection = sidebar.render()
state.set_selection(selection)
with error_boundary(f"the {page.title} page"):
    page.run()
