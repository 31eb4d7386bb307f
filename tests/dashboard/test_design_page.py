"""The Design lab page, run by Streamlit's AppTest (no browser)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from gnet.net import design as lab
from gnet.train.runs import load_design_runs

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page("routes/design.py").run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_the_paper_design_shows_every_choice_and_the_recorded_runs(app_weights):
    at = _open()
    _ok(at)
    assert [t.value for t in at.title] == ["Design lab"]
    buys = next(m.value for m in at.markdown if m.value.startswith("- **3x3 stem**"))
    paper = lab.cost_of(lab.PAPER)
    for d in lab.CHOICES:
        for claim in lab.claims(lab.cost_of(d), paper):
            assert claim.measured in buys
        assert buys.count(f"- **{d.name}**") == 1  # a design that flips two choices is one line, not two
    every = at.dataframe[2].value  # the chosen design, the stem formula, then every one-choice change
    assert list(every["design"]) == ["paper", *(d.name for d in lab.CHOICES)]
    runs = load_design_runs()
    shown = at.dataframe[3].value
    assert list(shown["design"]) == list(runs.summary["name"])
    assert len(at.get("plotly_chart")) == 2  # the stage bars and the training curves


def test_flipping_a_choice_states_the_claim_and_what_the_numbers_say(app_weights):
    at = _open()
    at.toggle(key="design_reductions").set_value(False).run()
    _ok(at)
    (verdict,) = at.success
    expected = lab.claims(lab.cost_of(lab.Design(reductions=False)), lab.cost_of(lab.PAPER))[0]
    assert expected.measured in verdict.value
    table = at.dataframe[0].value
    assert list(table["design"]) == ["paper", "no 1x1 reductions"]
    paper, variant = lab.cost_of(lab.PAPER), lab.cost_of(lab.Design(reductions=False))
    assert table["multiply-adds at test time (G)"][1] == f"{variant.macs / 1e9:,.2f} ({variant.macs / paper.macs:.2f}x)"
    assert table["params (M)"][1] == f"{variant.params / 1e6:,.2f} ({variant.params / paper.params:.2f}x)"


def test_the_stem_panel_follows_the_input_size(app_weights):
    at = _open()
    at.select_slider(key="design_input_size").set_value(96).run()
    _ok(at)
    stem = at.dataframe[1].value
    paper = stem[stem["stem"] == "paper stem"].iloc[0]
    assert paper["C_out x C_in x K_H x K_W x H_out x W_out"] == "64 x 3 x 7 x 7 x 48 x 48"
    assert any("At 96 px the paper's conv1 costs" in m.value for m in at.markdown)


def test_measure_adds_memory_and_latency(app_weights):
    at = _open()
    at.select_slider(key="design_input_size").set_value(64).run()
    at.selectbox(key="design_stem").set_value("3x3").run()
    at.button(key="design_measure").click().run()
    _ok(at)
    table = at.dataframe[0].value
    assert "saved for backward, 1 image (MiB)" in table.columns
    assert "training step, batch 1 (ms)" in table.columns
    assert table["forward, batch 1 (ms)"][0].endswith("(1.00x)")


def test_the_fc_classifier_fixes_the_size_and_a_bad_size_is_one_sentence(app_weights):
    at = _open()
    at.radio(key="design_classifier").set_value("fc").run()
    _ok(at)
    assert "50.18 M parameters" in at.success[0].value
    at.number_input(key="design_num_classes").set_value(2).run()
    _ok(at)
