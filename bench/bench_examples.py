"""Cost of the dataset-example index relative to plain batched forwards over the same images.

    python bench/bench_examples.py [--weights bundled] [--device cpu] [--images 10000] [--repeats 3]

The Fashion-MNIST test set (the first --images), both sides reading the same batches
(LabelledImages.batches, so the preprocessing is in both): plain eval forwards, and
gnet.inspect.examples.build_index, which also captures the nine modules' outputs and keeps every
channel's top-9 by mean and by max. Timed interleaved in one run. The issue's bar: index <=
1.3 x plain batched forwards. Median ratio with min and max over the repeats.
"""

from __future__ import annotations

import argparse

import torch
from ratios import interleaved, ratio, report, sync

import gnet
from gnet.inspect.evaluation import batch_size_for, fashion_mnist_test
from gnet.inspect.examples import build_index


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="bundled")
    p.add_argument("--device", default=None)
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    loaded = gnet.load(args.weights, args.device)
    data = fashion_mnist_test(loaded, limit=args.images)
    batch = batch_size_for(loaded.card.input_size)
    net = loaded.net.eval()

    def plain() -> None:
        with torch.inference_mode():
            for x, _, _ in data.batches(batch):
                net(x.to(loaded.device))
        sync(loaded.device)

    def index() -> None:
        build_index(loaded, data, batch_size=batch)

    times = interleaved({"plain": plain, "index": index}, args.repeats)
    print(f"weights={args.weights} device={loaded.device_name} images={len(data)} batch={batch} repeats={args.repeats}")
    report(times)
    ratio(times, "index", "plain")


if __name__ == "__main__":
    main()
