"""Which linear-probe fit: torch's full-batch L-BFGS (gnet.heads.readout.fit_probe) against scikit-learn's LogisticRegression.

    python bench/bench_readout.py [--images 10000] [--repeats 3] [--threads 2]

Both fit the same objective on the bundled net's real pooled features (recorded once by
gnet.heads.readout.record_pooled on the first N Fashion-MNIST training images, scored on
2,000 test images): mean cross-entropy + l2 ||W||^2 on standardized features, which is
scikit-learn's 0.5 ||W||^2 + C * sum(loss) with C = 1 / (2 n l2). Timed interleaved in one
run, at inception5b (1,024 features) and conv3 (192); the ratio sklearn / torch is taken per repeat
(median, min, max), and the held-out accuracies are printed side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gnet, not an installed one

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ratios import interleaved, ratio, report  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import gnet  # noqa: E402
from gnet.heads.readout import fit_probe, record_pooled  # noqa: E402
from gnet.inspect.evaluation import fashion_mnist  # noqa: E402

L2 = 1e-4  # fit_probe's default


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    loaded = gnet.load("bundled", "cpu")
    fit, test = fashion_mnist(loaded, "train", limit=args.images), fashion_mnist(loaded, "test", limit=2000)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "fit").mkdir()
        Path(tmp, "test").mkdir()
        fit_x, _ = record_pooled(loaded, fit, Path(tmp, "fit"))
        test_x, _ = record_pooled(loaded, test, Path(tmp, "test"))
        y_fit, y_test = fit.labels.numpy(), test.labels.numpy()
        for point in ("inception5b", "conv3"):
            xf, xt = np.array(fit_x[point], dtype=np.float32), np.array(test_x[point], dtype=np.float32)
            mean, scale = xf.mean(0), np.maximum(xf.std(0), 1e-6)
            accuracy: dict[str, float] = {}

            def torch_fit() -> None:
                accuracy["torch L-BFGS"] = fit_probe(point, xf, y_fit, xt, y_test, 10, l2=L2).accuracy

            def sklearn_fit() -> None:
                # scikit-learn standardizes nothing itself; the same standardization is part of its time
                model = LogisticRegression(C=1 / (2 * len(y_fit) * L2), max_iter=100)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit((xf - mean) / scale, y_fit)
                accuracy["sklearn lbfgs"] = float((model.predict((xt - mean) / scale) == y_test).mean())

            times = interleaved({"torch L-BFGS": torch_fit, "sklearn lbfgs": sklearn_fit}, args.repeats)
            print(f"\n{point}: {xf.shape[1]} features, {len(y_fit):,} fit images, {len(y_test):,} held out, "
                  f"{args.threads} threads")
            report(times)
            ratio(times, "sklearn lbfgs", "torch L-BFGS")
            print("held-out accuracy: " + ", ".join(f"{k} {v:.2%}" for k, v in accuracy.items()))
        del fit_x, test_x


if __name__ == "__main__":
    main()
