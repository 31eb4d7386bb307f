"""Head statistics over a set, each checked against a direct computation on small hand-made logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnet.heads.logits import HeadLogitSet
from gnet.heads.stats import compare_heads, disagreements, expected_calibration_error, gap_margin, reliability
from gnet.net.layers import HEADS


def _set(logits: dict[str, np.ndarray], labels) -> HeadLogitSet:
    classes = next(iter(logits.values())).shape[1]
    return HeadLogitSet("hand-made", [f"c{i}" for i in range(classes)], np.asarray(labels, np.int64),
                        {h: np.asarray(v, np.float32) for h, v in logits.items()}, "computed")


def _random_set(n: int = 500, classes: int = 10, seed: int = 0) -> HeadLogitSet:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = {}
    for k, h in enumerate(HEADS):
        z = rng.normal(0, 1.5, (n, classes))
        z[np.arange(n), labels] += 2.5 - 0.5 * k  # main best, aux heads a little worse
        logits[h] = z
    return _set(logits, labels)


def test_ece_matches_a_direct_computation_by_hand():
    # Six predictions, worked out on paper with 15 bins of width 1/15 = 0.0667:
    # 0.95 and 0.99 fall in bin 15 (0.933, 1]: accuracy 1/2, mean confidence 0.97, gap 0.47
    # 0.62 falls in bin 10 (0.6, 0.667]: accuracy 1, confidence 0.62, gap 0.38
    # 0.30 and 0.31 fall in bin 5 (0.267, 0.333]: accuracy 0, confidence 0.305, gap 0.305
    # 0.0667 exactly is the right edge of bin 1 (0, 0.0667]: accuracy 1, gap 1 - 1/15
    confidence = np.array([0.95, 0.99, 0.62, 0.30, 0.31, 1 / 15])
    correct = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    by_hand = (2 * 0.47 + 1 * 0.38 + 2 * 0.305 + 1 * (1 - 1 / 15)) / 6
    assert expected_calibration_error(confidence, correct) == pytest.approx(by_hand, abs=1e-12)


def test_ece_matches_the_loop_over_bins_on_random_data():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.1, 1.0, 2000)
    correct = rng.uniform(size=2000) < confidence**2
    total = 0.0
    for m in range(15):
        lo, hi = m / 15, (m + 1) / 15
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    assert expected_calibration_error(confidence, correct) == pytest.approx(total / 2000, rel=1e-12)
    r = reliability(confidence, correct)
    assert r.count.sum() == 2000 and len(r.edges) == 16


def test_a_perfectly_calibrated_head_has_zero_ece():
    confidence = np.repeat([0.6, 0.9], 10)
    correct = np.array([1] * 6 + [0] * 4 + [1] * 9 + [0] * 1, dtype=bool)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0, abs=1e-12)


def test_confusion_sums_to_n_and_matches_accuracy():
    s = _random_set()
    comparison = compare_heads(s)
    for h, stats in comparison.heads.items():
        assert stats.confusion.sum() == len(s)
        assert np.trace(stats.confusion) / len(s) == pytest.approx(stats.top1)
        pred = s.logits[h].argmax(1)
        assert stats.top1 == pytest.approx(float((pred == s.labels).mean()))
        for c in range(10):
            assert stats.confusion[c].sum() == (s.labels == c).sum()
            assert stats.per_class[c] == pytest.approx(float((pred[s.labels == c] == c).mean()))
        top5 = np.argsort(-s.logits[h], axis=1)[:, :5]
        assert stats.top5 == pytest.approx(float((top5 == s.labels[:, None]).any(1).mean()))
        assert stats.confidence_hist.sum() == len(s)
        assert stats.entropy_hist.sum() == len(s)


def test_agreement_and_right_wrong_shares():
    s = _random_set(seed=2)
    comparison = compare_heads(s)
    pred = {h: s.logits[h].argmax(1) for h in HEADS}
    right = {h: pred[h] == s.labels for h in HEADS}
    for i, a in enumerate(HEADS):
        assert comparison.agreement[i, i] == 1.0
        for j, b in enumerate(HEADS):
            assert comparison.agreement[i, j] == pytest.approx(float((pred[a] == pred[b]).mean()))
    for h in HEADS:
        assert comparison.right_where_main_wrong[h] == pytest.approx(float((right[h] & ~right["main"]).mean()))
        assert comparison.wrong_where_main_right[h] == pytest.approx(float((~right[h] & right["main"]).mean()))
        # What a head gains over main minus what it loses is exactly its accuracy difference.
        gap = comparison.right_where_main_wrong[h] - comparison.wrong_where_main_right[h]
        assert gap == pytest.approx(comparison.heads[h].top1 - comparison.heads["main"].top1)
    assert comparison.right_where_main_wrong["main"] == 0.0


def test_uniform_heads_land_in_the_last_entropy_bin():
    s = _set({h: np.zeros((7, 10)) for h in HEADS}, [1] * 7)
    stats = compare_heads(s).heads["aux1"]
    assert stats.entropy_hist.sum() == 7 and stats.entropy_hist[-1] == 7
    assert stats.mean_entropy == pytest.approx(math.log(10))


def test_unlabelled_sets_still_give_agreement():
    s = _random_set(n=40)
    s.labels[:] = -1
    comparison = compare_heads(s)
    assert comparison.labelled == 0 and comparison.right_where_main_wrong is None
    assert all(stats.top1 is None and stats.ece is None for stats in comparison.heads.values())
    assert comparison.agreement.shape == (3, 3)
    row = comparison.table()[1]
    assert row["top1"] is None and 0.0 <= row["agrees_with_main"] <= 1.0


def test_disagreements_are_ranked_by_kl_and_only_where_top1_differs():
    s = _random_set(n=300, seed=3)
    found = disagreements(s, limit=None)
    probs = {h: s.probs(h) for h in HEADS}
    main = probs["main"]
    expected = 0
    for i in range(len(s)):
        kls = [
            float((main[i] * np.log(main[i] / probs[a][i])).sum())
            for a in ("aux1", "aux2")
            if probs[a][i].argmax() != main[i].argmax()
        ]
        expected += bool(kls)
    assert len(found) == expected > 0
    assert [d.kl for d in found] == sorted((d.kl for d in found), reverse=True)
    first = found[0]
    by_hand = float((main[first.index] * np.log(main[first.index] / probs[first.aux][first.index])).sum())
    assert first.kl == pytest.approx(by_hand, rel=1e-9)
    assert probs[first.aux][first.index].argmax() != main[first.index].argmax()
    assert [c for c, _ in first.top["main"]][0] == int(main[first.index].argmax())
    assert len(first.top["aux1"]) == 3 and math.isclose(first.top["main"][0][1], main[first.index].max())
    assert len(disagreements(s, limit=5)) == 5


def test_gap_margin_holds_95_percent_of_chance_gaps():
    # Two heads of the same true accuracy, scored on independent samples of n images: their gap stays
    # within the margin about 95% of the time (two standard errors), and 10,000 images give ~0.7 points.
    rng = np.random.default_rng(0)
    n, p, trials = 10_000, 0.93, 4_000
    gaps = (rng.binomial(n, p, trials) - rng.binomial(n, p, trials)) / n
    margin = gap_margin(p, p, n)
    assert 0.94 < float((np.abs(gaps) <= margin).mean()) < 0.97
    assert round(margin * 100, 1) == 0.7
    assert gap_margin(p, p, 100) == pytest.approx(margin * 10)  # a hundred times fewer images: ten times wider
