"""Early exits: the two ends of the threshold range reproduce main only and aux1 only exactly, aux2 only
is the net cut at inception4d, and every point matches an image-by-image walk through the cascade."""

from __future__ import annotations

import numpy as np
import pytest

import gnet
from gnet.heads.early_exit import DEFAULT_THRESHOLDS, early_exits, exit_costs
from gnet.heads.logits import HeadLogitSet
from gnet.net.layers import HEADS


@pytest.fixture(scope="module")
def rows():
    return gnet.flops(gnet.googlenet(num_classes=10), 64)


@pytest.fixture(scope="module")
def logit_set():
    rng = np.random.default_rng(0)
    n, classes = 400, 10
    labels = rng.integers(0, classes, n)
    logits = {}
    for k, h in enumerate(HEADS):
        z = rng.normal(0, 1.0, (n, classes))
        z[np.arange(n), labels] += rng.uniform(0, 6, n) - k  # some images easy, some hard
        logits[h] = z.astype(np.float32)
    return HeadLogitSet("hand-made", [f"c{i}" for i in range(classes)], labels, logits, "computed")


def _direct_costs(rows):
    """The three costs summed straight from the rows, without gnet.heads.early_exit."""
    names = [r.module for r in rows]
    main_only = sum(r.macs for r in rows if r.module not in ("aux1", "aux2"))
    aux_head = {a: sum(r.macs for r in rows if r.module == a) for a in ("aux1", "aux2")}
    last_4a = max(i for i, m in enumerate(names) if m == "inception4a")
    last_4d = max(i for i, m in enumerate(names) if m == "inception4d")
    to_4a = sum(r.macs for r in rows[: last_4a + 1] if r.module not in ("aux1", "aux2"))
    to_4d = sum(r.macs for r in rows[: last_4d + 1] if r.module not in ("aux1", "aux2"))
    return main_only, to_4a + aux_head["aux1"], to_4d + aux_head["aux1"] + aux_head["aux2"], aux_head


def test_costs_come_from_the_rows(rows):
    costs = exit_costs(rows, 64)
    main_only, aux1_only, aux2_exit, aux_head = _direct_costs(rows)
    assert costs.main_only == main_only
    assert costs.aux1_only == costs.exit_macs["aux1"] == aux1_only
    assert costs.exit_macs["aux2"] == aux2_exit
    assert costs.exit_macs["main"] == main_only + aux_head["aux1"] + aux_head["aux2"]
    assert gnet.totals(rows)["macs"] == costs.exit_macs["main"]  # the rows' total includes both aux heads
    assert costs.aux1_only < costs.exit_macs["aux2"] < costs.main_only < costs.exit_macs["main"]


def test_threshold_above_one_is_main_only_exactly(rows, logit_set):
    costs = exit_costs(rows, 64)
    curve = early_exits(logit_set, costs, thresholds=[1.01])
    point = curve.points[0]
    main_accuracy = float((logit_set.logits["main"].argmax(1) == logit_set.labels).mean())
    assert point.accuracy == main_accuracy
    assert point.mean_macs == _direct_costs(rows)[0]
    assert point.share == {"aux1": 0.0, "aux2": 0.0, "main": 1.0}
    assert curve.main_only == point.__class__(float("inf"), main_accuracy, point.mean_macs, point.share)


def test_threshold_zero_is_aux1_only_exactly(rows, logit_set):
    costs = exit_costs(rows, 64)
    point = early_exits(logit_set, costs, thresholds=[0.0]).points[0]
    assert point.accuracy == float((logit_set.logits["aux1"].argmax(1) == logit_set.labels).mean())
    assert point.mean_macs == _direct_costs(rows)[1]
    assert point.share == {"aux1": 1.0, "aux2": 0.0, "main": 0.0}


def test_aux2_only_is_the_net_cut_at_4d_without_aux1(rows, logit_set):
    costs = exit_costs(rows, 64)
    _, _, aux2_exit, aux_head = _direct_costs(rows)
    assert costs.aux2_only == aux2_exit - aux_head["aux1"]  # aux1 is not computed on the way
    assert costs.aux1_only < costs.aux2_only < costs.exit_macs["aux2"] < costs.main_only
    point = early_exits(logit_set, costs, thresholds=[0.5]).aux2_only
    assert point.accuracy == float((logit_set.logits["aux2"].argmax(1) == logit_set.labels).mean())
    assert point.mean_macs == costs.aux2_only
    assert point.share == {"aux1": 0.0, "aux2": 1.0, "main": 0.0}


def test_every_threshold_matches_an_image_by_image_walk(rows, logit_set):
    costs = exit_costs(rows, 64)
    curve = early_exits(logit_set, costs)
    probs = {h: logit_set.probs(h) for h in HEADS}
    for point in curve.points:
        right = cost = 0
        leaving = {"aux1": 0, "aux2": 0, "main": 0}
        for i, label in enumerate(logit_set.labels):
            exit_ = next((a for a in ("aux1", "aux2") if probs[a][i].max() >= point.threshold), "main")
            leaving[exit_] += 1
            right += int(probs[exit_][i].argmax() == label)
            cost += costs.exit_macs[exit_]
        n = len(logit_set)
        assert point.accuracy == pytest.approx(right / n)
        assert point.mean_macs == pytest.approx(cost / n)
        assert point.share == pytest.approx({k: v / n for k, v in leaving.items()})
    costs_in_order = [p.mean_macs for p in curve.points]
    assert costs_in_order == sorted(costs_in_order)  # a higher threshold never lets more images out early
    assert [p.threshold for p in curve.points] == list(DEFAULT_THRESHOLDS)


def test_best_within_a_budget(rows, logit_set):
    curve = early_exits(logit_set, exit_costs(rows, 64))
    assert curve.best_within(0.5) is None  # aux1 alone costs more than half of main at 64 px
    best = curve.best_within(1.0)
    assert best is not None and best.accuracy == max(p.accuracy for p in curve.points)
    assert curve.to_dict()["idea"].startswith("Teerapittayanon")


def test_unlabelled_sets_give_cost_but_no_accuracy(rows, logit_set):
    blind = HeadLogitSet("blind", logit_set.classes, np.full(len(logit_set), -1), logit_set.logits, "computed")
    point = early_exits(blind, exit_costs(rows, 64), thresholds=[0.9]).points[0]
    assert point.accuracy is None and point.mean_macs > 0 and sum(point.share.values()) == pytest.approx(1.0)
