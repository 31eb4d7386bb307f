"""Circuits' cost against its floors (issue 26), each pair timed interleaved in one run.

    .venv/bin/python bench/bench_circuits.py [--weights bundled] [--device cpu] [--images 2000] [--repeats 21]

Rows:
- upstream for one channel (inception4a.3x3:12, the expanded weights of the whole module
  computed from its weights, then ranked), by the weights and by the gradient
  (one backward on the linearized branch) / one forward + backward of the net on one image
  (main's cross-entropy): the issue's bar is 2x;
- downstream for the same channel, by the weights and by forward-mode differentiation / the same floor;
- the families of one module over the first --images test images (the forward up to the module,
  k-means, the test: ``gnet.inspect.families``'s compute, without the disk cache) / the example
  index over the same images (``build_index``: one full forward for all nine modules); the bar
  is 2x. inception3b (early: a short forward) and inception5b (the whole net, 1024 channels).
Median ratio with min and max, taken repeat by repeat.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from ratios import interleaved, ratio, report, sync

import gnet
from gnet.inspect.circuits import downstream, upstream
from gnet.inspect.evaluation import batch_size_for, fashion_mnist_test
from gnet.inspect.examples import build_index
from gnet.inspect.families import DEFAULT_FAMILIES, _profiles, group

TARGET = "inception4a.3x3:12"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="bundled")
    p.add_argument("--device", default=None)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--family-repeats", type=int, default=3)
    args = p.parse_args()

    loaded = gnet.load(args.weights, args.device)
    net, device = loaded.net, loaded.device
    size = loaded.card.input_size
    x = torch.randn(1, 3, size, size, device=device)
    label = torch.zeros(1, dtype=torch.long, device=device)
    print(f"weights={args.weights} device={loaded.device_name} input={size} px threads={torch.get_num_threads()}")

    def forward_backward() -> None:
        net.eval()
        F.cross_entropy(net(x).main, label).backward()
        net.zero_grad(set_to_none=True)
        sync(device)

    cases = {
        "forward+backward": forward_backward,
        "upstream (weights)": lambda: upstream(loaded, TARGET),
        "upstream (gradient)": lambda: upstream(loaded, TARGET, method="gradient"),
        "downstream (weights)": lambda: downstream(loaded, TARGET),
        "downstream (gradient)": lambda: downstream(loaded, TARGET, method="gradient"),
    }
    for case in cases.values():  # warm-up
        case()
    times = interleaved(cases, args.repeats)
    report(times, scale=1e3, unit="ms")
    for name in list(cases)[1:]:
        ratio(times, name, "forward+backward")

    data = fashion_mnist_test(loaded, limit=args.images)
    batch = batch_size_for(size)
    print(f"\nfamilies over {len(data)} images, batch {batch}, {DEFAULT_FAMILIES} families")
    for module in ("inception3b", "inception5b"):
        def families_of(module: str = module) -> None:
            group(_profiles(loaded, module, data, None).numpy().astype("float64"), module, DEFAULT_FAMILIES)

        times = interleaved({"index": lambda: build_index(loaded, data, batch_size=batch),
                             f"families {module}": families_of}, args.family_repeats)
        report(times)
        ratio(times, f"families {module}", "index")


if __name__ == "__main__":
    main()
