"""Pure tables the dashboard shows: plain data in, a DataFrame or a small dataclass out.

No Streamlit here: views and tests import these directly, and :mod:`dashboard.cache`
caches the ones that are worth caching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gnet.heads.stats import gap_margin
from gnet.net.layers import HEADS, Block, block_of, heads_reaching

if TYPE_CHECKING:
    from gnet.net.cost import CostRow

__all__ = [
    "Bottleneck",
    "agreement_matrix",
    "bottleneck_cost",
    "branch_cost",
    "branch_energy",
    "branch_stats",
    "describe_preprocessing",
    "exit_summary",
    "gallery_item",
    "head_accuracy",
    "head_summary",
    "importance_grid",
    "importance_vs_cost",
    "knockout_changes",
    "knockout_top",
    "per_class_accuracy",
    "stage_summary",
    "table1_reasons",
]


def describe_preprocessing(preprocessing: object) -> str:
    """A model card's preprocessing in words.

    ImageNet cards carry a sentence (kept as it is); cards written by ``gnet.train.loop`` carry a
    dict (grayscale, resize, mean, std, channels, invert), which becomes a short list.
    """
    if not isinstance(preprocessing, dict):
        return str(preprocessing)
    pre = dict(preprocessing)
    parts = []
    if pre.pop("grayscale", False):
        parts.append("grayscale")
    if "resize" in pre:
        parts.append(f"resize {pre.pop('resize')}")
    if "mean" in pre or "std" in pre:
        parts.append(f"mean {_channel_values(pre.pop('mean', []))} / std {_channel_values(pre.pop('std', []))}")
    if "channels" in pre:
        parts.append(f"channels: {pre.pop('channels')}")
    invert = pre.pop("invert", None)
    parts.extend(f"{key}: {value}" for key, value in pre.items())
    if invert not in (None, False, "none"):
        parts.append(f"invert {invert}")
    return ", ".join(parts) or "none recorded"


def _channel_values(values: object) -> str:
    """Per-channel numbers, written once when every channel has the same one."""
    numbers = [float(v) for v in values] if isinstance(values, (list, tuple)) else [float(values)]
    if not numbers:
        return "?"
    if len(set(numbers)) == 1:
        return f"{numbers[0]:.3g}"
    return "(" + ", ".join(f"{v:.3g}" for v in numbers) + ")"


def head_summary(analysis) -> pd.DataFrame:
    """One row per head: top-1, entropy, agreement with and KL divergence to the main head."""
    rows = []
    for head in analysis.heads.values():
        d = head.to_dict()
        rows.append({
            "head": d["name"], "top1": head.top[0].label, "top1_prob": head.top[0].prob,
            "entropy_nats": d["entropy"], "agrees_with_main": d["agrees_with_main"],
            "kl_to_main_nats": d["kl_to_main"], "trained": d["trained"],
        })
    return pd.DataFrame(rows)


def branch_energy(analysis) -> pd.DataFrame:
    """module, branch, energy_share: each branch's share of its module's output energy."""
    return pd.DataFrame(
        [
            {"module": m, "branch": b, "energy_share": r.energy_share}
            for m, module in analysis.modules.items()
            for b, r in module.branches.items()
        ]
    )


def branch_stats(analysis) -> pd.DataFrame:
    """Every branch's statistics, one row per (module, branch), top channels as a space-separated string."""
    rows = []
    for m, module in analysis.modules.items():
        for b, r in module.branches.items():
            stats = r.to_dict()
            stats["top_channels"] = " ".join(map(str, stats["top_channels"]))
            rows.append({"module": m, "branch": b, **stats})
    return pd.DataFrame(rows)


def agreement_matrix(batch: pd.DataFrame) -> pd.DataFrame:
    """Fraction of samples on which two heads pick the same top-1 class (heads x heads)."""
    labels = {h: batch[f"{h}_label"] for h in HEADS}
    return pd.DataFrame(
        [[float((labels[a] == labels[b]).mean()) if len(batch) else np.nan for b in HEADS] for a in HEADS],
        index=list(HEADS),
        columns=list(HEADS),
    )


def head_accuracy(batch: pd.DataFrame) -> pd.DataFrame:
    """Per head: top-1 accuracy over the samples whose true class this model knows."""
    known = batch[batch["true_label"].notna()]
    return pd.DataFrame(
        {
            "head": list(HEADS),
            "labelled_samples": len(known),
            "accuracy": [float((known[f"{h}_label"] == known["true_label"]).mean()) if len(known) else np.nan for h in HEADS],
        }
    )


@dataclass(frozen=True)
class Bottleneck:
    """What the 1x1 reduction saves in one Inception module's 5x5 branch (multiply-adds, one image)."""

    module: str
    kernel: int  # the branch's kxk kernel: 5 in the paper, 3 in torchvision (pytorch/vision#906)
    in_channels: int  # the module's input channels
    reduce_channels: int  # the 1x1 reduction's output channels
    out_channels: int  # the branch's output channels
    height: int
    width: int
    reduce_macs: int  # the 1x1 reduction
    conv_macs: int  # the kxk convolution on the reduced channels
    direct_macs: int  # a kxk convolution straight from in_channels to out_channels, no bottleneck

    @property
    def ratio(self) -> float:
        """How many times cheaper the branch is with its bottleneck than without."""
        return self.direct_macs / (self.reduce_macs + self.conv_macs)


def bottleneck_cost(rows: list[CostRow], kernel: int, module: str = "inception3a") -> Bottleneck:
    """The 5x5 branch of ``module`` with and without its 1x1 reduction, from :func:`gnet.flops` rows.

    The kxk convolution keeps its input's height and width (it is padded), so both versions
    produce the same map; a 1x1 convolution costs in x out x H x W, which gives the module's
    input channels from the reduction's row.
    """
    by_name = {row.name: row for row in rows}
    reduce, conv = by_name[f"{module}.5x5.reduce"], by_name[f"{module}.5x5.conv"]
    reduced, height, width = reduce.out_shape
    out_channels = conv.out_shape[0]
    in_channels = reduce.macs // (reduced * height * width)
    return Bottleneck(
        module=module, kernel=kernel, in_channels=in_channels, reduce_channels=reduced, out_channels=out_channels,
        height=height, width=width, reduce_macs=reduce.macs, conv_macs=conv.macs,
        direct_macs=kernel * kernel * in_channels * out_channels * height * width,
    )


def _stage_of(block: Block) -> str:
    """The diagram's box a block is drawn in: the stem's layers share one, dropout and fc make the classifier."""
    if block.section == "stem":
        return "stem"
    return "classifier" if block.kind == "classifier" else block.name


def stage_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Cost rows (from :func:`cost_table`) grouped into the diagram's blocks, in forward order.

    Columns: stage, kind (stem, inception, pool, aux, classifier), out_shape, params, flops.
    An Inception block's output is its branches' outputs concatenated along channels.
    """
    stages: dict[str, dict] = {}
    for row in rows.itertuples(index=False):
        if row.name == "transform_input":
            continue  # an input rescaling, not a part of the network
        block = block_of(row.name)
        stage = _stage_of(block)
        entry = stages.setdefault(stage, {"stage": stage, "kind": block.kind, "params": 0, "flops": 0, "branch_out": {}})
        entry["params"] += int(row.params)
        entry["flops"] += int(row.flops)
        entry["out_shape"] = row.out_shape
        if row.branch:
            entry["branch_out"][row.branch] = row.out_shape
    for entry in stages.values():
        outs = entry.pop("branch_out")
        if outs:
            shapes = [tuple(int(v) for v in s.split(" x ")) for s in outs.values()]
            entry["out_shape"] = " x ".join(map(str, (sum(s[0] for s in shapes), *shapes[0][1:])))
    return pd.DataFrame(list(stages.values()), columns=["stage", "kind", "out_shape", "params", "flops"])


# ---------------------------------------------------------------- channels: knock-outs and branch importance


def knockout_changes(intact, knocked) -> pd.DataFrame:
    """One row per head: top-1 intact and knocked out, the intact top-1's probability before and after.

    ``intact`` and ``knocked`` are :class:`gnet.inspect.ablation.Ablation` results on the same image.
    """
    rows = []
    for head, c in knocked.change(intact).items():
        rows.append({
            "head": head, "top1_intact": c["top1_intact"], "top1_knocked_out": c["top1"],
            "changed": c["top1_changed"], "prob_before": c["prob_of_intact_top1_intact"],
            "prob_after": c["prob_of_intact_top1"], "total_variation": c["total_variation"],
        })
    return pd.DataFrame(rows)


def knockout_top(intact, knocked, k: int = 5) -> pd.DataFrame:
    """head, label, intact, knocked_out: each head's intact top-``k`` classes, plus its knocked-out top-1 if new."""
    rows = []
    for head, predictions in intact.top.items():
        labels = [p.label for p in predictions[:k]]
        new_top = knocked.top[head][0].label
        for label in labels + ([new_top] if new_top not in labels else []):
            i = intact.classes.index(label)
            rows.append({"head": head, "label": label, "intact": float(intact.probs[head][i]),
                         "knocked_out": float(knocked.probs[head][i])})
    return pd.DataFrame(rows)


def importance_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """:meth:`gnet.inspect.ablation.BranchImportance.to_frame` plus ``reads`` (does the head read the module?) and
    ``drop_pp``, the drop in percentage points, NaN where the head does not read the module."""
    out = frame.copy()
    out["reads"] = [head in heads_reaching(module) for module, head in zip(out["module"], out["head"])]
    out["drop_pp"] = (out["drop"] * 100).where(out["reads"])
    return out


def branch_cost(rows: pd.DataFrame) -> pd.DataFrame:
    """module, branch, flops, params: each Inception branch's total, from :func:`dashboard.cache.cost.cost_table` rows."""
    branches = rows[rows["branch"] != ""]
    return branches.groupby(["module", "branch"], sort=False, as_index=False)[["flops", "params"]].sum()


def importance_vs_cost(grid: pd.DataFrame, cost: pd.DataFrame, head: str) -> pd.DataFrame:
    """One row per branch the ``head`` reads: its FLOPs, its parameters and the accuracy drop without it."""
    chosen = grid[(grid["head"] == head) & grid["reads"]][["module", "branch", "drop_pp"]]
    return chosen.merge(cost, on=["module", "branch"], how="left")


# ---------------------------------------------------------------- the heads over a whole set


def per_class_accuracy(comparison) -> pd.DataFrame:
    """class, head, accuracy: each head's accuracy per true class (a :class:`gnet.heads.stats.HeadComparison`)."""
    return pd.DataFrame(
        [
            {"class": name, "head": head, "accuracy": float(stats.per_class[c])}
            for head, stats in comparison.heads.items()
            if stats.per_class is not None
            for c, name in enumerate(comparison.classes)
        ],
        columns=["class", "head", "accuracy"],
    )


def exit_summary(curve) -> str:
    """The early-exit curve's key points in a sentence (a :class:`gnet.heads.early_exit.ExitCurve` with labels)."""
    costs, main = curve.costs, curve.main_only
    text = [
        f"Main only: **{main.accuracy:.2%}**; aux1 only: **{curve.aux1_only.accuracy:.2%}** at "
        f"{curve.aux1_only.relative_cost(costs):.0%} of main's cost; aux2 only: **{curve.aux2_only.accuracy:.2%}** "
        f"at {curve.aux2_only.relative_cost(costs):.0%}."
    ]
    gap, margin = curve.aux2_only.accuracy - main.accuracy, gap_margin(curve.aux2_only.accuracy, main.accuracy,
                                                                       curve.labelled)
    text.append(f"Cut at inception4d, the net scores {abs(gap) * 100:.2f} points {'above' if gap >= 0 else 'below'} "
                f"main: {'within' if abs(gap) <= margin else 'beyond'} the ±{margin * 100:.1f} points "
                f"{curve.labelled:,} labelled images leave to chance.")
    half = curve.best_within(0.5)
    if half is None:
        text.append(f"No threshold gets below 50% of main's cost: aux1, the earliest exit, already costs "
                    f"{costs.aux1_only / costs.main_only:.0%} of it.")
    else:
        text.append(f"Within 50% of main's cost the best is {half.accuracy:.2%} (t = {half.threshold:g}).")
    level = [p for p in curve.points if p.accuracy is not None and p.accuracy >= main.accuracy]
    if level:
        cheapest = min(level, key=lambda p: p.mean_macs)
        text.append(f"The cheapest threshold as accurate as main is t = {cheapest.threshold:g}: "
                    f"{cheapest.accuracy:.2%} at {cheapest.relative_cost(costs):.1%} of main's cost, "
                    f"{cheapest.share['aux1']:.0%} of the images leaving at aux1.")
    return " ".join(text)


def gallery_item(disagreement, classes: list[str], png: bytes) -> dict:
    """One thumbnail of the disagreement gallery: its title, a line per head (top-3) and a tooltip."""
    d = disagreement
    truth = classes[d.label] if d.label >= 0 else "unknown"
    lines = [f"{h}: " + ", ".join(f"{classes[c]} {p:.0%}" for c, p in top) for h, top in d.top.items()]
    return {
        "index": d.index,
        "png": png,
        "title": f"#{d.index} · true: {truth}",
        "lines": lines,
        "tooltip": f"Image #{d.index} (true class {truth}); KL(main || {d.aux}) = {d.kl:.2f} nats. " + "; ".join(lines),
    }


def table1_reasons(table: pd.DataFrame) -> list[tuple[list[str], str]]:
    """Each distinct reason of :func:`gnet.net.table1.table1_comparison` with the rows it explains, in row order.

    The same sentence (torchvision's 3x3 '5x5' branch) explains nine rows: listed once, with all nine.
    """
    grouped: dict[str, list[str]] = {}
    for name, reasons in zip(table["name"], table["reasons"]):
        for reason in reasons:
            grouped.setdefault(reason, []).append(name)
    return [(rows, reason) for reason, rows in grouped.items()]
