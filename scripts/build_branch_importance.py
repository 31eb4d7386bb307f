"""Ship the branch-importance table of the bundled weights: 36 knock-outs x 3 heads over the Fashion-MNIST test set.

    python scripts/build_branch_importance.py [--num-threads 1] [--images 10000]

Writes assets/branch_importance.{npz,json}: the number of test images each head gets right with
nothing knocked out and with each of the 36 (module, branch) pairs knocked out, computed by
gnet.inspect.ablation.branch_importance. The card records the weights' sha256 and the data, so gnet uses
the table only for those weights (gnet.storage.load_asset). 37 passes over 10,000 images at 64 px:
about an hour on one CPU thread.
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
from gnet.inspect.ablation import ASSET, branch_importance
from gnet.inspect.evaluation import fashion_mnist_test
from gnet.storage import save_asset
from gnet.weights.export import git_commit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--images", type=int, default=None, help="the first N test images (default all 10,000)")
    args = p.parse_args()
    torch.set_num_threads(args.num_threads)

    loaded = gnet.load("bundled", "cpu")
    data = fashion_mnist_test(loaded, limit=args.images)
    t0 = time.perf_counter()
    with tqdm(total=1.0, unit="run", bar_format="{l_bar}{bar}| {elapsed}<{remaining}", mininterval=30) as bar:
        result = branch_importance(loaded, data, progress=lambda done: bar.update(done - bar.n))
    seconds = time.perf_counter() - t0
    card = {
        "what": "correct[row, head]: test images each head gets right; row 0 intact, then one row per "
        "(module, branch) knocked out, in gnet.net.layers.BRANCH_POINTS order; heads in gnet.net.layers.HEADS order",
        "images": result.images,
        "data": result.data,
        "intact_accuracy": result.intact,
        "command": f"python {shlex.join(sys.argv)}",
        "seconds": round(seconds, 1),
        "hardware": hardware(),
        "commit": git_commit(),
    }
    paths = save_asset(ASSET, {"weights": loaded.weights_hash, **data.key}, result.to_arrays(), card)
    print(f"intact accuracy {result.intact}; {seconds:.0f} s; wrote {', '.join(map(str, paths))}")


if __name__ == "__main__":
    main()
