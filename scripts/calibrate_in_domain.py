"""Fit and calibrate the bundled net's in-domain score, ship its statistics, and measure it on both sides.

    python scripts/calibrate_in_domain.py [--fit 10000] [--out assets/fashion_mnist_in_domain.npz] [--threads 1]

1. Fit (see :mod:`gnet.heads.in_domain`): pooled features at the stage ends of the first ``--fit``
   Fashion-MNIST training images, the data the weights were trained on.
2. Calibrate: a seeded half of the 10,000 test images (``gnet.heads.in_domain.calibration_split``)
   standardises each point's distance and sets the threshold (99th percentile).
3. Measure, on data neither step saw:
   - the other half of the test set: the share judged in domain (the bar: at least 95%);
   - the 20 Fashion-MNIST samples, through the app's path (``gnet.analyze`` on the PNG);
   - natural photos, through the same path: the 4 sample photos, scikit-image's other photos,
     200 face photos (``skimage.data.lfw_subset``), and 8 random crops of each full-size photo
     (the photos generated here): the share judged out of domain (the bar: at least 90%).
   Next to it, the maximum softmax probability (MSP) of the main head, and what the same 99% rule
   on the MSP alone would call out of domain: it fails at this.
The measurements are written into the file's metadata with the command and the commit.
scikit-image is a development dependency (``requirements-dev.txt``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import gnet
from gnet.data.samples import sample_images
from gnet.heads.in_domain import (
    REFERENCE_PATH,
    THRESHOLD_PERCENTILE,
    calibration_split,
    fit_reference,
    pooled_features,
)
from gnet.heads.logits import head_logits
from gnet.inspect.evaluation import fashion_mnist, fashion_mnist_test
from gnet.net.layers import STAGE_ENDS
from gnet.weights.export import git_commit

SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
)
CROPS_PER_PHOTO = 8


def _rgb(array: np.ndarray) -> Image.Image:
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-9)).astype(np.uint8)
    return Image.fromarray(a).convert("RGB")


def natural_photos(seed: int = 0) -> dict[str, list[tuple[str, Image.Image]]]:
    """The out-of-domain photos, by group: sample photos, scikit-image photos, faces, random crops."""
    import skimage.data

    groups: dict[str, list[tuple[str, Image.Image]]] = {
        "sample photos": [(s.name, gnet.load_image(s.path)) for s in sample_images() if s.slug is None],
    }
    full = [(name, _rgb(getattr(skimage.data, name)())) for name in SKIMAGE_PHOTOS]
    left, right, _ = skimage.data.stereo_motorcycle()
    full += [("motorcycle_left", _rgb(left)), ("motorcycle_right", _rgb(right))]
    groups["scikit-image photos"] = full
    groups["face photos (lfw_subset)"] = [(f"lfw{i}", _rgb(face)) for i, face in enumerate(skimage.data.lfw_subset())]
    rng = np.random.default_rng(seed)
    crops = []
    for name, photo in full:
        w, h = photo.size
        for k in range(CROPS_PER_PHOTO):
            scale = rng.uniform(0.25, 0.7)
            cw, ch = int(w * scale), int(h * scale)
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = photo.crop((x0, y0, x0 + cw, y0 + ch))
            crops.append((f"{name}_crop{k}", crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop))
    groups["random crops of them (generated)"] = crops
    return groups


def _measure(loaded, reference, images: list[tuple[str, Image.Image]], msp_threshold: float) -> dict:
    rows = []
    for name, image in images:
        analysis = gnet.analyze(loaded, image, top=1)
        verdict = reference.judge(float(reference.scores(pooled_features(analysis, tuple(reference.points)))[0]))
        top = analysis.heads["main"].top[0]
        rows.append((name, verdict.in_domain, top.label, top.prob))
    return {
        "images": len(rows),
        "out_of_domain": float(np.mean([not r[1] for r in rows])),
        "msp_mean": float(np.mean([r[3] for r in rows])),
        "msp_at_least_0.9": float(np.mean([r[3] >= 0.9 for r in rows])),
        "msp_rule_out_of_domain": float(np.mean([r[3] < msp_threshold for r in rows])),
        "in_domain_names": [r[0] for r in rows if r[1]],
        "most_confident": [(r[0], r[2], round(r[3], 4)) for r in sorted(rows, key=lambda r: -r[3])[:3]],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit", type=int, default=10_000, help="training images to fit on (the first N)")
    p.add_argument("--out", type=Path, default=REFERENCE_PATH)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--points", nargs="+", default=list(STAGE_ENDS), choices=list(STAGE_ENDS),
                   help="the points to use (default: every stage end; inception5b alone shows why one is not enough)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    loaded = gnet.load("bundled", "cpu")
    # Features at every stage end are computed (and disk-cached) whatever --points says, so trying a subset is cheap.
    fit_set = head_logits(loaded, fashion_mnist(loaded, "train", limit=args.fit), features=STAGE_ENDS)
    test_set = head_logits(loaded, fashion_mnist_test(loaded), features=STAGE_ENDS)
    fit_features = {name: fit_set.features[name] for name in args.points}
    test_features = {name: test_set.features[name] for name in args.points}
    calib, held_out = calibration_split(len(test_set))
    meta = {
        "method": f"Lee et al. 2018 Mahalanobis, feature ensemble over {', '.join(args.points)}, equal weights",
        "fit": f"Fashion-MNIST training images 0..{args.fit - 1}",
        "calibration": "held-out Fashion-MNIST test images",
        "split": "gnet.heads.in_domain.calibration_split(10000, seed=0): first half calibrates, second half measures",
        "threshold_percentile": THRESHOLD_PERCENTILE,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    reference = fit_reference(
        fit_features, fit_set.labels, {k: v[calib] for k, v in test_features.items()},
        classes=len(loaded.classes), weights_sha256=loaded.weights_hash, meta=meta,
    )
    held = reference.scores({k: v[held_out] for k, v in test_features.items()})
    msp = test_set.probs("main").max(1)
    # The same rule on the maximum softmax probability: in domain when at least the 1st percentile of the
    # calibration half's (99% of it passes), to show what the softmax alone would flag.
    msp_threshold = float(np.percentile(msp[calib], 100 - THRESHOLD_PERCENTILE))
    held_msp = msp[held_out]
    measured = {
        "held-out test half": {
            "images": len(held_out), "in_domain": float((held <= reference.threshold).mean()),
            "msp_mean": float(held_msp.mean()), "msp_at_least_0.9": float((held_msp >= 0.9).mean()),
            "msp_rule_out_of_domain": float((held_msp < msp_threshold).mean()),
        },
        "Fashion-MNIST samples": _measure(
            loaded, reference, [(s.name, gnet.load_image(s.path)) for s in sample_images() if s.slug is not None],
            msp_threshold,
        ),
    }
    photos = natural_photos()
    measured.update({group: _measure(loaded, reference, images, msp_threshold) for group, images in photos.items()})
    reference.meta["measured"] = measured
    reference.meta["msp_threshold"] = msp_threshold
    reference.save(args.out)
    print(f"threshold {reference.threshold:.3f} ({THRESHOLD_PERCENTILE:g}th percentile of {len(calib)} "
          "calibration images)")
    print(f"maximum softmax probability under the same rule: in domain when >= {msp_threshold:.4f}")
    print(f"{'set':<36}{'images':>7}{'in domain':>11}{'out':>7}{'mean MSP':>10}{'MSP>=0.9':>10}{'out by MSP':>12}")
    for name, m in measured.items():
        inside = m["in_domain"] if "in_domain" in m else 1 - m["out_of_domain"]
        msp = f"{m['msp_mean']:>10.3f}{m['msp_at_least_0.9']:>10.1%}{m['msp_rule_out_of_domain']:>12.1%}"
        print(f"{name:<36}{m['images']:>7}{inside:>11.1%}{1 - inside:>7.1%}{msp}")
        if "most_confident" in m:
            print(f"{'':<36}most confident main head: {m['most_confident']}; in domain: {m['in_domain_names'][:6]}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    main()
