"""``gnet retrain-heads`` on 3 new classes built from Fashion-MNIST training images, against one forward pass over them.

    python bench/bench_retrain.py [--per-class 200] [--repeats 3] [--threads 2]

The new label set: sandal (Sandal), closed shoe (Sneaker + Ankle boot), top (T-shirt/top + Shirt),
``--per-class`` training images each, written as PNGs to a temporary ``<class>/<image>`` folder.
gnet.heads.retrain.retrain_heads (reading and preprocessing the files, the recording pass,
three L-BFGS fits) is timed interleaved with one bare ``net(x)`` in inference mode over the
same images, already preprocessed, in the recording pass's batches; the median ratio is reported with min and max, and each
head's held-out accuracy (a fifth of each class) from the last run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gnet, not an installed one

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from ratios import interleaved, ratio, report  # noqa: E402

import gnet  # noqa: E402
from gnet.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist  # noqa: E402
from gnet.heads.retrain import retrain_heads  # noqa: E402
from gnet.inspect.evaluation import batch_size_for, class_folder  # noqa: E402

NEW_CLASSES = {"sandal": ("Sandal",), "closed shoe": ("Sneaker", "Ankle boot"), "top": ("T-shirt/top", "Shirt")}


def write_folder(root: Path, per_class: int) -> None:
    images, labels = load_fashion_mnist("train")
    for new, old in NEW_CLASSES.items():
        (root / new).mkdir(parents=True)
        wanted = [FASHION_MNIST_CLASSES.index(c) for c in old]
        picked = np.flatnonzero(np.isin(labels.numpy(), wanted))[:per_class]
        for i in picked:
            Image.fromarray(images[i].numpy(), mode="L").save(root / new / f"{i}.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    loaded = gnet.load("bundled", "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "three")
        write_folder(root, args.per_class)
        data = class_folder(loaded, root)
        x = data.inputs(range(len(data)))
        found = {}

        def retrain() -> None:
            found["result"] = retrain_heads(loaded, data)

        batch = batch_size_for(loaded.card.input_size)  # the batches the recording pass uses

        def forward() -> None:
            with torch.inference_mode():
                for chunk in x.split(batch):
                    loaded.net(chunk)

        times = interleaved({"retrain-heads": retrain, "one forward": forward}, args.repeats)
    print(f"{len(data)} images, classes {data.classes}, {args.threads} threads")
    report(times)
    ratio(times, "retrain-heads", "one forward")
    card = found["result"].card
    print(f"held-out accuracy ({card['held_out']['images']} images): {card['held_out']['accuracy']}")


if __name__ == "__main__":
    main()
