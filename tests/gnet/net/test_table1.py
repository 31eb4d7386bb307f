"""gnet.net.table1: the paper's Table 1 beside any net, and beside the paper's and torchvision's layouts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gnet.net.model import googlenet
from gnet.net.table1 import PAPER_TABLE_PATH, TOLERANCE_PCT, paper_table, reference_net, table1_comparison


def meta_net(batch_norm: bool = True, kernel: int = 3, **kw) -> nn.Module:
    with torch.device("meta"):
        return googlenet(batch_norm=batch_norm, branch5x5_kernel=kernel, **kw).eval()


def test_paper_table_paper_layout() -> None:
    table = paper_table(meta_net(False, 5))
    csv_rows = [line for line in PAPER_TABLE_PATH.read_text().splitlines()[1:] if line and not line.startswith("#")]
    assert len(table) == len(csv_rows) - 1  # minus the header line
    row = table.set_index("name").loc["inception3a"]
    assert row["ops_m_computed"] == pytest.approx(128, rel=0.01)
    assert row["output_size_computed"] == row["output_size"] == "28x28x256"
    conv1 = table.set_index("name").loc["conv1"]
    assert conv1["params_k_computed"] == pytest.approx(7 * 7 * 3 * 64 / 1e3)
    assert "oddity" in conv1["note"]
    assert (table["output_size_computed"] == table["output_size"]).all()
    assert table.set_index("name").loc["maxpool1"][["params_k_computed", "ops_m_computed"]].isna().all()
    assert "Szegedy" in table.attrs["citation"]


def test_paper_table_torchvision_layout_notes() -> None:
    table = paper_table(meta_net(True, 3), input_size=96).set_index("name")
    assert "pytorch/vision#906" in table.loc["inception3a", "note"]
    assert "96x96" in table.loc["inception3a", "note"]
    assert "2x2/2" in table.loc["maxpool4", "note"]
    assert table.loc["inception3a", "ops_m_diff"] == pytest.approx(
        table.loc["inception3a", "ops_m_computed"] - table.loc["inception3a", "ops_m"]
    )


@pytest.fixture(scope="module")
def comparison():
    return table1_comparison(224)


def test_reference_layouts_are_the_paper_and_torchvision():
    paper, tv = reference_net("paper"), reference_net("torchvision")
    assert (paper.config.batch_norm, paper.config.branch5x5_kernel, paper.config.num_classes) == (False, 5, 1000)
    assert (tv.config.batch_norm, tv.config.branch5x5_kernel, tv.config.num_classes) == (True, 3, 1000)
    assert next(paper.parameters()).is_meta  # shapes only: nothing allocated


def test_paper_layout_is_within_the_stated_tolerance_of_table1_or_says_why(comparison):
    """Every Inception module: params and ops within TOLERANCE_PCT of Table 1, or Table 1 disagrees
    with the widths listed in its own row, the network has exactly what those widths give, and the note says so."""
    modules = comparison[comparison["type"] == "inception"]
    assert len(modules) == 9
    explained = 0
    for row in modules.itertuples(index=False):
        for what, unit in (("params_k", "K params"), ("ops_m", "M ops")):
            diff = getattr(row, f"{what}_paper_layout_diff_pct")
            if abs(diff) <= TOLERANCE_PCT:
                continue
            explained += 1
            assert getattr(row, f"{what}_paper_layout") == pytest.approx(getattr(row, f"{what}_widths"), rel=1e-9)
            assert f"widths in its own row give {getattr(row, f'{what}_widths'):.1f}{unit}" in row.note, row.name
    assert explained == 2  # inception4c's params (+10%) and inception5a's ops (-5.4%), as the page says


def test_the_built_paper_layout_has_exactly_table1s_widths(comparison):
    modules = comparison[comparison["type"] == "inception"]
    assert (modules["params_k_paper_layout"] - modules["params_k_widths"]).abs().max() < 1e-9
    assert (modules["ops_m_paper_layout"] - modules["ops_m_widths"]).abs().max() < 1e-9


def test_every_difference_beyond_tolerance_has_a_reason(comparison):
    for row in comparison.itertuples(index=False):
        diffs = [getattr(row, c) for c in comparison.columns if c.endswith("_diff_pct")]
        if any(abs(d) > TOLERANCE_PCT for d in diffs if d == d):  # d == d: not NaN
            assert row.note, row.name
    by = comparison.set_index("name")
    assert "oddity" in by.loc["conv1", "note"]
    assert "torchvision layout: " in by.loc["inception3b", "note"] and "3x3 kernel" in by.loc["inception3b", "note"]
    assert "3x3/2" in by.loc["maxpool4", "note"]
    assert by.loc["inception3a", "output_size"] == "28x28x256"


def test_every_difference_beyond_two_percent_has_a_reason():
    table = table1_comparison()
    for row in table.itertuples(index=False):
        diffs = [abs(d) for d in (row.params_k_paper_layout_diff_pct, row.ops_m_paper_layout_diff_pct) if d == d]
        if any(d > 2.0 for d in diffs):
            assert row.note, f"{row.name} differs by {max(diffs):.1f}% without a reason"
    # Table 1's K of parameters is 1,024: conv2 (64 -> 64, 1x1) + conv3 (64 -> 192, 3x3) = 114,688 weights = its 112K.
    conv = table[table["name"] == "conv2+conv3"].iloc[0]
    assert conv.params_k == 112 and conv.params_k_paper_layout * 1000 == 64 * 64 + 64 * 192 * 9
    assert "thousands of 1,024" in conv.note and "+0.0% from Table 1's 112K" in conv.note
