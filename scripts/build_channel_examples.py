"""Ship the dataset-example index of the bundled weights: every channel's 9 best Fashion-MNIST test images.

    python scripts/build_channel_examples.py [--num-threads 1]

Writes assets/channel_examples.{npz,json}: for each of the 5,488 channels of inception3a..5b,
the indices of the 9 test images with the highest spatial-mean activation and the 9 with the
highest spatial-max activation, with the values (float16) and where each image's maximum is
(gnet.inspect.examples.build_index, one pass of the 10,000 images). No pictures: they come from the
dataset. The card records the weights' sha256 and the data, so gnet uses the index only for
those weights (gnet.storage.load_asset) and builds its own for any other.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch
from tqdm import tqdm

import gnet
from gnet.device import hardware
from gnet.inspect.evaluation import fashion_mnist_test
from gnet.inspect.examples import ASSET, CHANNELS, K, build_index
from gnet.storage import save_asset
from gnet.weights.export import git_commit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.num_threads)

    loaded = gnet.load("bundled", "cpu")
    data = fashion_mnist_test(loaded)
    t0 = time.perf_counter()
    with tqdm(total=len(data), unit="img", mininterval=10) as bar:
        index = build_index(loaded, data, progress=lambda done: bar.update(round(done * len(data)) - bar.n))
    seconds = time.perf_counter() - t0
    card = {
        "what": f"for each of the {CHANNELS} channels of inception3a..5b (rows: gnet.inspect.examples.module_rows, then "
        f"the channel's offset in its module), the {K} test images with the highest spatial-mean and spatial-max "
        "activation, best first (ties to the lower index), values as float16, positions as row * W + column "
        "of the channel's maximum on its module's map",
        "images": index.images,
        "data": index.data,
        "command": f"python {shlex.join(sys.argv)}",
        "seconds": round(seconds, 1),
        "hardware": hardware(),
        "commit": git_commit(),
    }
    key = {"weights": loaded.weights_hash, **data.key, "k": K}
    paths = save_asset(ASSET, key, index.to_arrays(compact=True), card)
    print(f"{seconds:.0f} s; wrote {', '.join(f'{p} ({p.stat().st_size:,} bytes)' for p in paths)}")


if __name__ == "__main__":
    main()
