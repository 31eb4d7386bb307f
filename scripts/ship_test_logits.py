"""Compute the bundled net's three heads on the 10,000 Fashion-MNIST test images and ship their logits.

    python scripts/ship_test_logits.py [--threads 1]

The Heads page and ``gnet heads`` read this file instead of running 10,000 forwards, but
only while the weights' sha256 and the data's key recorded in it match the loaded weights
and the test set (see :mod:`gnet.heads.logits`); re-run this script after re-exporting the
bundled weights. The logits are stored as float16 (about 600 KB); the script reads the file
back and prints each head's top-1 on it, which must match the model card.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import gnet
from gnet.device import hardware
from gnet.heads.logits import compute_logits, read_shipped, write_shipped
from gnet.inspect.evaluation import fashion_mnist_test
from gnet.net.layers import HEADS
from gnet.weights.export import git_commit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="CPU threads (the machine is shared)")
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    loaded = gnet.load("bundled", "cpu")
    data = fashion_mnist_test(loaded)
    start = time.perf_counter()
    with tqdm(total=len(data), unit="img") as bar:
        arrays = compute_logits(
            loaded, data, batch_size=args.batch_size, progress=lambda done, _: bar.update(done - bar.n)
        )
    seconds = time.perf_counter() - start
    card = {
        "weights": loaded.card.name,
        "heads": list(HEADS),
        "dtype": "float16",
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "commit": git_commit(),
        "hardware": hardware(),
        "seconds": round(seconds, 1),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out = write_shipped(arrays, data.labels.numpy(), {"weights": loaded.weights_hash, **data.key}, card)
    _, shipped = read_shipped()
    labels = shipped["labels"].astype(np.int64)
    for head in HEADS:
        top1 = float((shipped[head].astype(np.float32).argmax(1) == labels).mean())
        print(f"{head}: top-1 {top1:.2%} on the float16 file (card: {loaded.card.accuracy.get(head)})")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} KB) in {seconds:.0f} s")


if __name__ == "__main__":
    main()
