"""Inception branches: one module's four branches, their strongest feature maps and where they fire."""

from __future__ import annotations

import streamlit as st

from dashboard import url
from dashboard.cache import analyses
from dashboard.figures import tables
from dashboard.state import Keys, Selection, open_channel
from dashboard.views.common import chart, download_csv, need_analysis

__all__ = ["render"]


def render(sel: Selection) -> None:
    st.title("Inception branches")
    st.caption(
        "Every Inception module runs four branches side by side on the same input (1x1; 1x1 then 3x3; "
        "1x1 then '5x5'; 3x3 max-pool then 1x1) and concatenates their outputs along channels."
    )
    _, result = need_analysis(sel)
    names = list(result.modules)
    url.restore(url.MODULE, Keys.BRANCH_MODULE, names[0], names.__contains__, what="module (inception3a to 5b)")
    module_name = st.selectbox(
        "Module", names, key=Keys.BRANCH_MODULE, format_func=lambda n: f"{n} ({_shape(result.modules[n])})"
    )
    url.publish(url.MODULE, module_name)
    module = result.modules[module_name]
    figures = analyses.branch_figures(sel.weights, sel.device, sel.digest, module_name, sel.image)
    cells = st.columns(2)
    for i, (branch, stats) in enumerate(module.branches.items()):
        with cells[i % 2], st.container(border=True):
            _branch(module_name, branch, stats, figures[branch])
    _focus(sel, result, module_name)
    st.subheader("Energy share of each branch, across all nine modules")
    chart(
        analyses.energy_figure(sel.weights, sel.device, sel.digest, sel.image),
        "Share of each module's output energy (sum of squared activations) produced by each branch. "
        "Look for the module where the 3x3 and '5x5' branches take over from the 1x1 one, and how it changes with depth.",
    )
    download_csv(tables.branch_stats(result), "Branch statistics, all modules (CSV)", "branch_stats.csv")


def _shape(module) -> str:
    c, h, w = module.output_shape
    return f"{h}x{w}x{c}"


def _branch(module_name: str, branch: str, stats, figures: tuple) -> None:
    st.markdown(f"**{branch}** branch: {stats.channels} channels")
    a, b, c = st.columns(3)
    a.metric("mean activation", f"{stats.mean:.3g}")
    b.metric("zeros (ReLU off)", f"{stats.zero_fraction:.0%}")
    c.metric("energy share", f"{stats.energy_share:.0%}")
    grid, overlay = figures
    chart(grid, "Its most active channels (highest mean), brightest = strongest.", key=f"grid-{module_name}-{branch}")
    chart(overlay, "Where in the image this branch fires on average.", key=f"overlay-{module_name}-{branch}")


def _focus(sel: Selection, result, module_name: str) -> None:
    st.subheader("One channel, large")
    module = result.modules[module_name]
    left, right = st.columns([1, 3])
    with left:
        branches = list(module.branches)
        url.restore(url.BRANCH, Keys.BRANCH_FOCUS, branches[0], branches.__contains__, what="branch")
        branch = st.selectbox("Branch", branches, key=Keys.BRANCH_FOCUS)
        url.publish(url.BRANCH, branch)
        stats = module.branches[branch]
        others = [c for c in range(stats.channels) if c not in stats.top_channels]
        channel_key = f"{Keys.BRANCH_CHANNEL}-{module_name}-{branch}"
        url.restore(url.CHANNEL, channel_key, stats.top_channels[0], lambda c: 0 <= c < stats.channels, parse=int,
                    what=f"channel of {module_name}.{branch} (0 to {stats.channels - 1})")
        channel = st.selectbox(
            "Channel (most active first)", stats.top_channels + others,
            key=channel_key,
            help="Pick any of the branch's channels; the first ones are its most active.",
        )
        url.publish(url.CHANNEL, channel)
        if st.button("What does it look for?", key=Keys.CHANNEL_OPEN, icon=":material/visibility:",
                     help="Open it on the Channels page: its feature visualization, the dataset images that excite "
                     "it most, and what the heads lose when its branch is knocked out."):
            open_channel(module_name, branch, int(channel))
            st.switch_page("routes/channels.py")
    large, over_image = analyses.channel_figures(
        sel.weights, sel.device, sel.digest, f"{module_name}.{branch}:{channel}", sel.image
    )
    with right:
        big, over = st.columns(2)
        with big:
            chart(large, "The channel's activation map; hover for values.")
        with over:
            chart(over_image, "The same map stretched over the image: what it responds to.")
