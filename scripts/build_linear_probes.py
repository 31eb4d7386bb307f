"""Ship the bundled net's linear-probe curve: one probe per depth, fitted on Fashion-MNIST's 60,000 training images, scored on its 10,000 test images.

    python scripts/build_linear_probes.py [--threads 2] [--images N]

Writes assets/linear_probes.{npz,json}, computed by gnet.heads.readout.linear_probes: held-out
accuracy and log-loss of a multinomial logistic regression on each capture point's pooled
output (the stem's five points and the nine modules), and the three trained heads' accuracy on
the same test images. The card records the weights' sha256 and both splits, so gnet uses the
curve only for those weights and data (gnet.storage.load_asset), and the run's time and peak
memory (the features are streamed to float16 memory maps, so memory stays bounded).
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time

import torch
from tqdm import tqdm

import gnet
from gnet.device import hardware
from gnet.heads.readout import ASSET, HEAD_POINTS, linear_probes
from gnet.inspect.evaluation import fashion_mnist
from gnet.storage import save_asset
from gnet.weights.export import git_commit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=None, help="the first N training images (default all 60,000)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    loaded = gnet.load("bundled", "cpu")
    fit_data, test_data = fashion_mnist(loaded, "train", limit=args.images), fashion_mnist(loaded, "test")
    start = time.perf_counter()
    with tqdm(total=1.0, bar_format="{l_bar}{bar}| {elapsed}<{remaining}", mininterval=10) as bar:
        curve = linear_probes(loaded, fit_data, test_data, progress=lambda done: bar.update(done - bar.n))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    card = {
        "what": "held-out accuracy and log-loss of one linear probe per capture point (gnet.heads.readout), "
        "and each trained head's accuracy on the same test images",
        "heads_at": HEAD_POINTS,
        "probe_at_inception5b": round(curve.at("inception5b").accuracy, 4),
        "heads": {head: round(acc, 4) for head, acc in curve.heads.items()},
        "command": f"python {shlex.join(sys.argv)}",
        "seconds": round(seconds, 1),
        "peak_memory_mb": round(peak_mb),
        "hardware": hardware(),
        "commit": git_commit(),
    }
    key = {"weights": loaded.weights_hash, "fit": fit_data.key, "test": test_data.key}
    paths = save_asset(ASSET, key, curve.to_arrays(), card)
    for score in curve.scores:
        print(f"{score.point:<12} accuracy {score.accuracy:.2%}  log-loss {score.log_loss:.3f}  (fit {score.train_accuracy:.2%})")
    print(f"heads: {card['heads']}; {seconds:.0f} s, peak memory {peak_mb:.0f} MB; wrote {', '.join(map(str, paths))}")


if __name__ == "__main__":
    main()
