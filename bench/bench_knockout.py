"""Cost of one knock-out on one image relative to a bare forward of the same image.

    python bench/bench_knockout.py [--weights bundled] [--device cpu] [--repeats 30]

gnet.ablate with inception4c.5x5 knocked out (the model's lock, the hook, every head's softmax
and top-5) against a bare eval forward under inference_mode, timed interleaved in one run.
The issue's bar: one knock-out <= 1.2 x a forward. Also reported: the 36 branch knock-outs of a
batch fanned out in one forward (gnet.inspect.probe.every_branch_knocked_out) against 37 separate
forwards of the batch, the saving branch_importance rests on.
"""

from __future__ import annotations

import argparse

import torch
from ratios import interleaved, ratio, report, sync

import gnet
from gnet.data.samples import sample_images
from gnet.inspect.ablation import ablate
from gnet.inspect.probe import every_branch_knocked_out, knocked_out
from gnet.net.layers import BRANCH_POINTS, parse_channel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="bundled")
    p.add_argument("--device", default=None)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--batch", type=int, default=16, help="images in the fan-out comparison")
    args = p.parse_args()

    loaded = gnet.load(args.weights, args.device)
    x = loaded.preprocess(sample_images()[0].path)
    net = loaded.net.eval()
    batch = x.expand(args.batch, -1, -1, -1).contiguous()
    separate = [[]] + [[parse_channel(b.name)] for b in BRANCH_POINTS]

    def bare() -> None:
        with torch.inference_mode():
            net(x)
        sync(loaded.device)

    def knockout() -> None:
        ablate(loaded, x, ["inception4c.5x5"])
        sync(loaded.device)

    def fanned() -> None:
        with torch.inference_mode(), every_branch_knocked_out(net, args.batch):
            net(batch)
        sync(loaded.device)

    def one_by_one() -> None:
        with torch.inference_mode():
            for knockouts in separate:
                with knocked_out(net, knockouts):
                    net(batch)
        sync(loaded.device)

    bare(), knockout()  # warm-up
    single = interleaved({"bare": bare, "knockout": knockout}, args.repeats)
    batched = interleaved({"fanned": fanned, "separate": one_by_one}, max(1, args.repeats // 10))
    print(f"weights={args.weights} device={loaded.device_name} input={tuple(x.shape)} repeats={args.repeats}, "
          f"fan-out batch {args.batch} x {max(1, args.repeats // 10)}")
    report(single, scale=1e3, unit="ms")
    ratio(single, "knockout", "bare")
    report(batched)
    ratio(batched, "fanned", "separate")


if __name__ == "__main__":
    main()
