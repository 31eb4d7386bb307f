"""The branch-specialization table of the bundled net (or any weights): every module's families against chance.

    .venv/bin/python scripts/branch_specialization.py [--weights bundled] [--images 2000] [--families 8]

For each Inception module, gnet.inspect.families groups its channels by their activation profile
over the first --images evaluation images (k-means on the z-scored spatial means) and tests, per
family and branch, whether the branch holds more of the family than chance (hypergeometric,
Bonferroni-corrected over families x branches). Prints a markdown table of the families gathered
beyond chance (p < 0.05), with the classes of their best images, and a count per module.
"""

from __future__ import annotations

import argparse
from collections import Counter

import gnet
from gnet.inspect.evaluation import evaluation_set
from gnet.inspect.families import families
from gnet.net.layers import BRANCHES, INCEPTION_MODULES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="bundled")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--families", type=int, default=8)
    args = p.parse_args()
    loaded = gnet.load(args.weights, "cpu")
    data = evaluation_set(loaded, limit=args.images)
    print(f"{loaded.card.name}: {len(data):,} images of {data.name}, {args.families} families per module\n")
    print("| module | family | channels | in the branch / expected by chance | corrected p | its best images |")
    print("|---|---|---|---|---|---|")
    counts = {}
    for module in INCEPTION_MODULES:
        found = families(loaded, module, data, n_families=args.families)
        gathered = found.gathered()
        counts[module] = len(gathered)
        for f, branch in gathered:
            b = list(BRANCHES).index(branch)
            classes = Counter(data.classes[int(data.labels[i])] for i in found.examples[f])
            best = ", ".join(f"{c} x{n}" if n > 1 else c for c, n in classes.most_common(3))
            print(f"| {module} | {f} | {int(found.counts[f].sum())} | {branch}: {int(found.counts[f, b])} / "
                  f"{found.expected[f, b]:.1f} | {found.p_values[f, b]:.3g} | {best} |")
    print("\nfamilies gathered beyond chance per module: "
          + ", ".join(f"{m.removeprefix('inception')} {n}" for m, n in counts.items()))


if __name__ == "__main__":
    main()
