"""Exporting a finished training run as the bundled model, and the Fashion-MNIST sample images.

Used once per release by ``scripts/export_bundled.py`` and ``gnet train --export-bundled``;
the app and the CLI only ever read what these functions wrote into ``assets/``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ..data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from ..data.samples import class_slug
from ..net.layers import HEADS
from ..storage import atomic_write, torch_save
from .checkpoint import load_training_checkpoint

__all__ = ["BUNDLED_NAME", "export_bundled", "export_samples", "git_commit"]

BUNDLED_NAME = "fashion_mnist_googlenet"


def export_bundled(
    checkpoint_path: Path | str, assets_dir: Path | str, *, accuracy: dict, command: str, wall_time_s: float,
    hardware: str, commit: str,
) -> tuple[Path, Path]:
    """Write ``fashion_mnist_googlenet.pt`` (float16 state dict) and its ``.json`` model card, named after the data.

    float16 halves the file; a loader casts the tensors back to float32. ``accuracy`` holds
    the per-head top-1 and optionally "split" (default "test (10,000 images)").
    """
    ckpt = load_training_checkpoint(checkpoint_path)
    assets_dir = Path(assets_dir)
    assets_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    weights_path = torch_save(state, assets_dir / f"{BUNDLED_NAME}.pt")
    tc = ckpt["train_config"]
    card = {
        "name": f"GoogLeNet on {_dataset_title(tc['data'])}",
        "source": "bundled",
        **ckpt["card"],
        "config": ckpt["config"],
        "accuracy": {**{h: accuracy[h] for h in HEADS}, "split": accuracy.get("split", "test (10,000 images)")},
        "training": {
            "command": command, "epochs": tc["epochs"], "steps": ckpt["step"], "wall_time_s": wall_time_s,
            "hardware": hardware, "commit": commit, "train_config": tc,
        },
    }
    card_path = atomic_write(assets_dir / f"{BUNDLED_NAME}.json", (json.dumps(card, indent=2) + "\n").encode())
    return weights_path, card_path


def _dataset_title(data: str) -> str:
    """How a model card names the training data: "Fashion-MNIST" or the image folder's name."""
    if data == "fashion-mnist":
        return "Fashion-MNIST"
    return Path(os.path.abspath(data)).name or data  # abspath: "." and "runs/imgs/" have names too


_SAMPLES_LICENSE = """\
# Sample images

The `fmnist_*.png` files are images from the Fashion-MNIST test set, unchanged (28x28
grayscale), two per class; the number in each name is the image's index in the test set.

Fashion-MNIST: Copyright (c) 2017 Zalando SE (Zalando Research),
https://github.com/zalandoresearch/fashion-mnist, released under the MIT Licence:

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""


def export_samples(assets_dir: Path | str, *, per_class: int = 2, root: Path | str | None = None) -> list[Path]:
    """Write the first ``per_class`` test images of each class as 28x28 PNGs into ``assets_dir/samples``."""
    from PIL import Image

    images, labels = load_fashion_mnist("test", root)
    out = Path(assets_dir) / "samples"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label, name in enumerate(FASHION_MNIST_CLASSES):
        for index in (labels == label).nonzero().flatten()[:per_class].tolist():
            path = out / f"fmnist_{class_slug(name)}_{index}.png"
            Image.fromarray(images[index].numpy(), mode="L").save(path)
            written.append(path)
    (out / "LICENSE.md").write_text(_SAMPLES_LICENSE)
    return written




def git_commit() -> str:
    """The commit the working tree is at, for a model card's provenance."""
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() if res.returncode == 0 else "unknown (not committed)"
