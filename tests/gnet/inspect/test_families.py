"""Channel families: a family gathered in one branch is found and tested against chance; shuffled branches are not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gnet.errors import TargetError
from gnet.inspect.evaluation import LabelledImages
from gnet.inspect.families import Families, families, group
from gnet.net.layers import BRANCHES, branch_channels

MODULE = "inception3b"  # 128 + 192 + 96 + 64 channels
WIDTHS = [branch_channels(MODULE, b) for b in BRANCHES]


def _profiles(signal_of: np.ndarray, images: int = 300, seed: int = 0) -> np.ndarray:
    """C x N profiles: each channel a noisy, randomly scaled copy of its signal."""
    rng = np.random.default_rng(seed)
    signals = rng.normal(size=(signal_of.max() + 1, images))
    gain = rng.uniform(0.5, 3.0, size=(len(signal_of), 1))
    return gain * signals[signal_of] + 0.3 * rng.normal(size=(len(signal_of), images)) + rng.normal(size=(len(signal_of), 1))


def test_a_family_living_in_one_branch_is_found_and_beats_chance():
    rng = np.random.default_rng(1)
    signal_of = rng.integers(1, 6, size=sum(WIDTHS))  # five families spread over every branch
    five = slice(WIDTHS[0] + WIDTHS[1], WIDTHS[0] + WIDTHS[1] + WIDTHS[2])
    signal_of[five][:48] = 0  # half of the 5x5 branch shares a signal no other channel has
    labels, examples, counts, expected, p = group(_profiles(signal_of), MODULE, 6)
    family = labels[five][0]
    assert (labels[five][:48] == family).all() and (labels == family).sum() == 48
    b = list(BRANCHES).index("5x5")
    assert counts[family, b] == 48 and expected[family, b] == pytest.approx(48 * 96 / 480)
    assert p[family, b] < 1e-20
    assert counts.sum() == 480 and (counts.sum(axis=0) == WIDTHS).all()
    assert examples.shape == (6, 6)


def test_families_spread_at_random_over_the_branches_are_not_called_gathered():
    rng = np.random.default_rng(2)
    signal_of = rng.permutation(np.arange(480) % 6)
    labels, _, counts, expected, p = group(_profiles(signal_of, seed=3), MODULE, 6)
    assert np.allclose(counts.sum(axis=1), expected.sum(axis=1))
    assert (p >= 0.05).all()  # corrected over 24 tests
    assert (p <= 1).all()


def test_the_module_call_profiles_real_activations_and_caches_them(tiny_loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("GNET_CACHE_DIR", str(tmp_path / "cache"))
    x = torch.randn(24, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    data = LabelledImages("noise", tiny_loaded.classes, torch.zeros(24, dtype=torch.int64), {"data": "noise"},
                          lambda idx: x[list(idx)], lambda i: None)
    seen = []
    first = families(tiny_loaded, MODULE, data, n_families=4, progress=seen.append)
    assert isinstance(first, Families) and first.images == 24 and first.size <= 4
    assert seen and seen[-1] == 1.0
    assert sum(len(first.members(f)) for f in range(first.size)) == 480
    again = families(tiny_loaded, MODULE, data, n_families=4, build=False)
    assert again is not None and (again.labels == first.labels).all()
    assert families(tiny_loaded, MODULE, data, n_families=5, build=False) is None
    json.dumps(first.to_dict())
    rows = first.to_rows()
    assert [r["channels"] for r in rows] == [int((first.labels == f).sum()) for f in range(first.size)]


@pytest.mark.parametrize(("module", "n", "fragment"), [
    ("inception9z", 4, "choose one of inception3a"),
    (MODULE, 1, "choose 2 to 120"),
    (MODULE, 121, "choose 2 to 120"),
])
def test_bad_modules_and_family_counts_are_one_sentence(tiny_loaded, module, n, fragment):
    with pytest.raises(TargetError, match=fragment):
        families(tiny_loaded, module, n_families=n)
