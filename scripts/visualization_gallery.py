"""Draw docs/feature_visualizations.png: five channels and two classes per head of the bundled net, visualized.

    python scripts/visualization_gallery.py [--steps 256] [--num-threads 1] [--out docs/feature_visualizations.png]

Top row: one channel from inception3a, 3b, 4a, 4c and 5b; bottom row: Sneaker for main, aux1
and aux2, then Trouser for main and aux1. gnet.inspect.features.visualize with seed 0, shown 3x larger
with sharp pixels, each titled with its target. Deterministic on a CPU, so the README's picture
can be made again bit for bit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import gnet
from gnet.inspect.features import visualize

ROWS = [
    ["inception3a.3x3:5", "inception3b.1x1:10", "inception4a.pool_proj:7", "inception4c.5x5:12", "inception5b.1x1:3"],
    ["main:Sneaker", "aux1:Sneaker", "aux2:Sneaker", "main:Trouser", "aux1:Trouser"],
]
SIDE, GAP, TITLE = 192, 8, 16  # pixels: each picture, between pictures, above each picture


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("docs/feature_visualizations.png"))
    args = p.parse_args()
    torch.set_num_threads(args.num_threads)

    loaded = gnet.load("bundled", "cpu")
    columns = max(len(row) for row in ROWS)
    sheet = Image.new("RGB", (SIDE * columns + 40, (SIDE + 20) * len(ROWS)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(ROWS):
        for c, target in enumerate(row):
            result = visualize(loaded, target, steps=args.steps)
            print(f"{target}: {result.activation:.3f}", flush=True)
            picture = Image.fromarray((result.image * 255).astype(np.uint8)).resize((SIDE, SIDE), Image.NEAREST)
            x, y = c * (SIDE + GAP), r * (SIDE + 20)
            sheet.paste(picture, (x, y + TITLE))
            draw.text((x, y + 2), target, fill="black")
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
