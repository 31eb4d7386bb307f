"""Overview: the image as the model sees it, the three heads' top-5, and the network's stages."""

from __future__ import annotations

import streamlit as st

import gnet
from dashboard import export
from dashboard.cache import cost
from dashboard.figures import charts, tables
from dashboard.state import Selection
from dashboard.views.common import chart, domain_banner, download_json, need_analysis, untrained_warning

__all__ = ["render"]


def render(sel: Selection) -> None:
    st.title("GoogLeNet Explorer")
    st.caption(
        "GoogLeNet (Inception v1, Szegedy et al. 2014) looked at from the inside: its Inception branches, "
        "its three classifiers, its gradients and its cost. Pick an image and weights in the sidebar."
    )
    loaded, result = need_analysis(sel)
    untrained_warning(loaded)
    domain_banner(sel, loaded)
    left, right = st.columns([1, 3])
    with left:
        st.image(result.image, caption="What the network sees", width="stretch", clamp=True)
        st.caption(
            f"After preprocessing: {result.image.shape[1]} x {result.image.shape[0]} px, "
            f"{_preprocessing(loaded)}."
        )
    with right:
        tops = {h: [(p.label, p.prob) for p in head.top] for h, head in result.heads.items()}
        chart(
            charts.top_k_bars(tops, loaded.card.untrained_heads),
            "The three classifiers' five most likely classes. aux1 reads inception4a, aux2 inception4d, "
            "main the last module: do the early heads already agree with the main one?",
        )
    st.subheader("The network, stage by stage")
    stages = cost.stages(sel.weights, sel.device, loaded.card.input_size)
    chart(
        charts.stage_diagram(stages),
        f"Each block's output (H x W x C) and FLOPs for one {loaded.card.input_size} px image, computed from the "
        "loaded network. Look at how fast the stem shrinks the image, and where the two auxiliary heads branch off.",
    )
    _explanations(stages, loaded, cost.bottleneck(sel.weights, sel.device, loaded.card.input_size))
    st.caption(
        f"Device: {result.device}. Forward pass {result.timing_ms['forward']:.0f} ms, "
        f"total {result.timing_ms['total']:.0f} ms (computed once per image and weights, then cached)."
    )
    with st.container(horizontal=True):  # each button as wide as its label (a 1:4 column cut the first one's)
        _export_button(sel, loaded, result, stages)
        download_json(result.to_dict(), "Analysis (JSON)", "analysis.json")


def _export_button(sel: Selection, loaded: gnet.LoadedModel, result: gnet.Analysis, stages) -> None:
    """One zip with everything needed to check this analysis elsewhere; built only when clicked."""

    def build() -> bytes:
        record = {
            "analysis": result.to_dict(),
            "image": {"name": sel.image_name, "digest_sha256": sel.digest, "size_seen": list(result.image.shape[:2])},
            "weights": {"source": loaded.source, "sha256": loaded.weights_hash, "label": sel.weights_label or None},
            "preprocessing": {"transform": repr(loaded.transform), **loaded.card.normalization},
            "settings": {"device": sel.device, **{k: st.query_params[k] for k in st.query_params}},
        }
        tops = {h: [(p.label, p.prob) for p in head.top] for h, head in result.heads.items()}
        figures = {
            "heads_top5": charts.top_k_bars(tops, loaded.card.untrained_heads),
            "heads_entropy_kl": charts.head_metrics(tables.head_summary(result)),
            "branch_energy_shares": charts.energy_shares(tables.branch_energy(result)),
            "stages": charts.stage_diagram(stages),
        }
        frames = {
            "heads": tables.head_summary(result),
            "branches": tables.branch_stats(result),
            "cost": cost.cost_table(sel.weights, sel.device, loaded.card.input_size),
        }
        return export.analysis_zip(record, figures, frames)

    st.download_button(
        "Export this analysis (zip)", build, file_name=f"googlenet_analysis_{sel.digest[:8]}.zip",
        mime="application/zip", on_click="ignore", icon=":material/folder_zip:",
        help="analysis.json (results, image digest, weights sha256, preprocessing, settings), the figures "
        "(PNG, or HTML when no browser is installed here) and the tables (CSV).",
    )


def _preprocessing(loaded: gnet.LoadedModel) -> str:
    """The card's preprocessing in words, or what is assumed when the card does not say."""
    if "preprocessing" not in loaded.card.details:
        return "normalised as the weights expect"
    return tables.describe_preprocessing(loaded.card.details["preprocessing"])


def _explanations(stages, loaded, saving: tables.Bottleneck) -> None:
    """Why each part is there, with this network's own numbers."""
    num_classes, input_size = len(loaded.classes), loaded.card.input_size
    by_stage = stages.set_index("stage")
    stem_out = by_stage.loc["stem", "out_shape"].split(" x ")
    last = by_stage.loc["inception5b", "out_shape"].split(" x ")
    fc_params = int(last[0]) * num_classes
    dense_params = int(last[0]) * int(last[1]) * int(last[2]) * num_classes
    one, two = st.columns(2)
    with one:
        st.markdown(
            "**The stem shrinks height and width early.** A stride-2 7x7 convolution and two stride-2 max-poolings "
            f"take the {input_size} x {input_size} image down to {stem_out[1]} x {stem_out[2]} before the first "
            "Inception module, so the expensive multi-branch modules work on small maps."
        )
        st.markdown(_bottleneck_text(saving))
    with two:
        st.markdown(
            f"**Global average pooling instead of large fully connected layers.** The last module's "
            f"{last[1]} x {last[2]} x {last[0]} output is averaged to {last[0]} numbers, so the classifier "
            f"has {fc_params:,} weights; a dense layer on the whole map would need {dense_params:,}."
        )
        st.markdown(
            "**Auxiliary classifiers.** Two small heads on inception4a and inception4d add their loss "
            "(weight 0.3) during training, to push useful gradient into the middle of a deep network. "
            "At test time the paper drops them; here they are kept so you can compare them (Heads page)."
        )
    st.page_link("routes/design.py", label="Test these choices: flip the stem, the 1x1 bottlenecks, global average "
                 "pooling or the aux heads in the Design lab", icon=":material/science:")


def _bottleneck_text(saving: tables.Bottleneck) -> str:
    """The 1x1 reduction's saving in inception3a's '5x5' branch, counted with the reduction's own cost."""
    k = saving.kernel
    torchvision = "; torchvision's is 3x3, pytorch/vision#906" if k == 3 else ""
    kernel = "the paper's 5x5 kernel" if k == 5 else f"a {k}x{k} kernel (the paper's is 5x5{torchvision})"
    return (
        "**1x1 bottlenecks.** Inside each Inception module, a 1x1 convolution first reduces the channels "
        "before the 3x3 and '5x5' convolutions (and projects the pooling branch). This network's '5x5' branch "
        f"uses {kernel}. In {saving.module}, on {saving.height} x {saving.width} maps, a {k}x{k} "
        f"convolution straight from the module's {saving.in_channels} channels to {saving.out_channels} would take "
        f"{_millions(saving.direct_macs)} multiply-adds; reducing to {saving.reduce_channels} channels first takes "
        f"{_millions(saving.reduce_macs)} for the 1x1 plus {_millions(saving.conv_macs)} for the {k}x{k}: "
        f"**{saving.ratio:.1f}x fewer** in all, not the {saving.in_channels / saving.reduce_channels:.0f}x the channel "
        "counts alone suggest (see the Cost page)."
    )


def _millions(macs: int) -> str:
    return f"{macs / 1e6:.1f} M" if macs >= 1e6 else f"{macs / 1e3:.0f} k"
