"""The paper's Table 1 beside what gnet computes: for any net, and for the two reference layouts.

Szegedy et al. (arXiv:1409.4842) list, per layer, the output size, the parameters and the
multiply-adds ("ops") of their network at 224 x 224. :func:`paper_table` aligns those rows
with :func:`gnet.net.cost.flops` of any net. :func:`table1_comparison` puts two nets built by
gnet beside Table 1, so that only explained differences remain: the paper's own layout
(1000 classes, 224 px, real 5x5 branches, no batch norm) and torchvision's (a 3x3 "5x5"
branch, pytorch/vision#906; batch norm; a 2x2 last max-pool).

Counting as the paper does: params are conv and linear weights (no bias, no batch norm),
ops are multiply-adds; the auxiliary heads are left out, as in the paper's table.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from ..storage import ASSETS_DIR
from .cost import CostRow, Shape, flops
from .model import GoogLeNet, GoogLeNetConfig

__all__ = [
    "BINARY_K",
    "LAYOUTS",
    "PAPER_CITATION",
    "PAPER_TABLE_PATH",
    "TOLERANCE_PCT",
    "paper_table",
    "reference_net",
    "table1_comparison",
]

PAPER_CITATION = (
    'Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842), Table 1: '
    "GoogLeNet incarnation of the Inception architecture."
)
PAPER_TABLE_PATH = ASSETS_DIR / "googlenet_table1.csv"
# How close the paper's layout, built by gnet, comes to Table 1 on every Inception module, except
# where Table 1 disagrees with the widths listed in its own row (then the note gives both).
TOLERANCE_PCT = 5.0
LAYOUTS: dict[str, GoogLeNetConfig] = {
    "paper": GoogLeNetConfig(num_classes=1000, batch_norm=False, branch5x5_kernel=5),
    "torchvision": GoogLeNetConfig(num_classes=1000, batch_norm=True, branch5x5_kernel=3),
}


_PAPER_GROUPS = {"conv1": ("conv1.conv",), "conv2+conv3": ("conv2.conv", "conv3.conv"), "softmax": ("fc",)}
_COSTED_TYPES = ("convolution", "inception", "linear")


def _paper_size(shape: Shape) -> str:
    """A shape written as the paper writes it: H x W x C (a vector is 1x1xF)."""
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
    return f"{h}x{w}x{c}"


def _weights(row: CostRow) -> int:
    """Weights of a conv or linear row (no bias): its MACs per output position."""
    return row.macs // math.prod(row.out_shape[1:])


def _rows_for(paper_type: str, paper_name: str, rows: list[CostRow]) -> list[CostRow]:
    if paper_type == "inception":
        return [r for r in rows if r.module == paper_name]
    names = _PAPER_GROUPS.get(paper_name, (paper_name,))
    return [r for r in rows if r.name in names]


def _output(paper_type: str, group: list[CostRow]) -> Shape:
    if paper_type != "inception":
        return group[-1].out_shape
    last = {r.branch: r.out_shape for r in group}  # each branch's final layer
    return (sum(s[0] for s in last.values()), *group[-1].out_shape[1:])


def _notes(net: GoogLeNet, input_size: int, paper_type: str, name: str) -> list[str]:
    """Why a computed value differs from the paper's, for the known reasons, one sentence each."""
    notes = []
    if name == "conv1":
        notes.append(
            "The paper's 2.7K params / 34M ops do not fit a 7x7x3x64 convolution (9.4K params, 118M MACs): "
            "a known oddity of Table 1."
        )
    if paper_type == "inception" and net.config.branch5x5_kernel == 3:
        notes.append(
            "The '5x5' branch uses a 3x3 kernel, as torchvision does (pytorch/vision#906), "
            "so params and ops are below the paper's."
        )
    if name == "maxpool4" and net.maxpool4.kernel_size != 3:
        notes.append("Pools 2x2/2 as torchvision does; the paper pools 3x3/2.")
    if name == "dropout" and net.dropout.p != 0.4:
        notes.append(f"Drops {net.dropout.p:.0%} (torchvision's choice); the paper drops 40%.")
    if name == "fc":
        notes.append("The paper lists 1000K params / 1M ops for a 1024x1000 layer (1024K weights, 1.02M MACs).")
        if net.config.num_classes != 1000:
            notes.append(f"This net has {net.config.num_classes} classes; the paper's has 1000.")
    if name == "softmax":
        notes.append("The network returns logits; softmax is applied outside it.")
    if paper_type in _COSTED_TYPES and input_size != 224:
        notes.append(f"Computed at {input_size}x{input_size}; the paper's ops are for 224x224.")
    return notes


def paper_table(net: GoogLeNet, input_size: int = 224) -> pd.DataFrame:
    """The paper's Table 1 row by row beside what ``net`` computes, with differences and notes.

    Computed params count conv and linear weights only and computed ops are multiply-adds
    (C_out x C_in x K_H x K_W x H_out x W_out), both as the paper counts; the auxiliary
    heads are left out, as in the paper's table. ``*_diff`` is computed minus paper and
    ``*_diff_pct`` that difference in percent of the paper's value. The citation is in
    ``attrs["citation"]``.
    """
    table = pd.read_csv(PAPER_TABLE_PATH, comment="#")
    rows = flops(net, input_size)
    computed = []
    for paper_type, name in zip(table["type"], table["name"]):
        group = _rows_for(paper_type, name, rows)
        costed = [r for r in group if r.kind in ("conv", "linear")] if paper_type in _COSTED_TYPES else []
        computed.append(
            {
                "output_size_computed": _paper_size(_output(paper_type, group)),
                "params_k_computed": sum(map(_weights, costed)) / 1e3 if costed else math.nan,
                "ops_m_computed": sum(r.macs for r in costed) / 1e6 if costed else math.nan,
                "note": " ".join(_notes(net, input_size, paper_type, name)),
            }
        )
    out = pd.concat([table, pd.DataFrame(computed)], axis=1)
    for col in ("params_k", "ops_m"):
        out[f"{col}_diff"] = out[f"{col}_computed"] - out[col]
        out[f"{col}_diff_pct"] = 100 * out[f"{col}_diff"] / out[col]
    out.attrs["citation"] = PAPER_CITATION
    return out


def reference_net(layout: str) -> GoogLeNet:
    """The ``"paper"`` or ``"torchvision"`` layout with 1000 classes, built on the meta device.

    Only shapes matter for counting, so no memory is allocated and no weight is drawn.
    """
    with torch.device("meta"):
        return GoogLeNet(LAYOUTS[layout])


def _table() -> pd.DataFrame:
    return pd.read_csv(PAPER_TABLE_PATH, comment="#")


def _widths_cost(table: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """For each Inception row: (params K, ops M) implied by the widths listed in that same row.

    The input channels are the previous row's output depth; every convolution of a module
    works on the module's output height and width, as the paper's padding keeps them equal.
    """
    out: dict[str, tuple[float, float]] = {}
    previous_depth = 0
    for row in table.itertuples(index=False):
        h, w, depth = (int(v) for v in str(row.output_size).split("x"))
        if row.type == "inception":
            c = previous_depth
            weights = (
                c * row.n1x1
                + c * row.n3x3_reduce + 9 * row.n3x3_reduce * row.n3x3
                + c * row.n5x5_reduce + 25 * row.n5x5_reduce * row.n5x5
                + c * row.pool_proj
            )
            out[row.name] = (weights / 1e3, weights * h * w / 1e6)
        previous_depth = depth
    return out


# Table 1's "K" of parameters is 1,024: 114,688 weights in conv2+conv3 are its "112K", the fc
# layer's 1,024,000 its "1000K". Its ops are in decimal millions (inception3a: 128M exactly).
BINARY_K = 1.024
_NOTE_PCT = 2.0  # a difference beyond this gets a reason, even when within TOLERANCE_PCT


def _binary_k_note(paper: float, computed: float) -> str:
    """Why the paper layout's params differ by about 2.4%, when that is the reason."""
    if math.isnan(paper) or abs(computed - paper) <= _NOTE_PCT / 100 * paper:
        return ""
    if abs(computed / BINARY_K - paper) > _NOTE_PCT / 100 * paper:
        return ""
    binary = computed / BINARY_K
    return (f"Table 1 counts parameters in thousands of 1,024: these {computed * 1000:,.0f} weights are "
            f"{binary:,.1f} such K, {(binary / paper - 1) * 100:+.1f}% from Table 1's {paper:g}K.")


def _paper_layout_note(name: str, paper: float, widths: float, computed: float, what: str) -> str:
    if abs(computed - paper) <= _NOTE_PCT / 100 * paper:
        return ""
    return (
        f"Table 1 lists {paper:g}{what} for {name}, but the widths in its own row give {widths:.1f}{what}, "
        "which is what the paper's layout built here has."
    )


def table1_comparison(input_size: int = 224) -> pd.DataFrame:
    """Table 1 beside gnet's paper layout and torchvision's layout, both at ``input_size``.

    Columns: type, name, output_size (paper), then for params (K) and ops (M): the paper's
    value, ``*_paper_layout`` and ``*_torchvision`` with their ``*_diff_pct`` to the paper,
    ``*_widths`` (from Table 1's own width columns, Inception rows only), ``reasons`` (a list of
    sentences) and ``note`` (them joined), which
    gives the reason for every difference of the paper's layout beyond 2% (the threshold for a
    reason; :data:`TOLERANCE_PCT` is the one for a highlight).
    """
    paper = paper_table(reference_net("paper"), input_size)
    tv = paper_table(reference_net("torchvision"), input_size)
    widths = _widths_cost(_table())
    out = paper[["type", "name", "output_size", "params_k", "ops_m"]].copy()
    for layout, frame in (("paper_layout", paper), ("torchvision", tv)):
        for col in ("params_k", "ops_m"):
            out[f"{col}_{layout}"] = frame[f"{col}_computed"]
            out[f"{col}_{layout}_diff_pct"] = frame[f"{col}_diff_pct"]
    out["params_k_widths"] = out["name"].map(lambda n: widths.get(n, (math.nan, math.nan))[0])
    out["ops_m_widths"] = out["name"].map(lambda n: widths.get(n, (math.nan, math.nan))[1])
    nets = {layout: reference_net(layout) for layout in LAYOUTS}
    notes = []
    for row in out.itertuples(index=False):
        shared = _notes(nets["paper"], input_size, row.type, row.name)
        binary = "" if shared else _binary_k_note(row.params_k, row.params_k_paper_layout)
        parts = [*shared, binary]
        if row.name in widths:
            if not binary:
                parts.append(
                    _paper_layout_note(row.name, row.params_k, row.params_k_widths, row.params_k_paper_layout, "K params")
                )
            parts.append(_paper_layout_note(row.name, row.ops_m, row.ops_m_widths, row.ops_m_paper_layout, "M ops"))
        parts += [
            f"torchvision layout: {n}" for n in _notes(nets["torchvision"], input_size, row.type, row.name)
            if n not in shared
        ]
        notes.append([p for p in parts if p])
    out["reasons"] = notes  # each row's sentences, one per reason
    out["note"] = [" ".join(r) for r in notes]
    out.attrs["citation"] = PAPER_CITATION
    return out
