"""Export a finished training run as the bundled checkpoint, with accuracy measured on what ships.

    python scripts/export_bundled.py RUN_DIR [--command "..."] [--assets assets]

Writes assets/fashion_mnist_googlenet.{pt,json} with gnet.weights.export.export_bundled, then loads
the float16 file back exactly as the app does (gnet.load("bundled")) and evaluates every head
on the full 10,000-image test set: those are the numbers the model card carries. The float32
numbers of the run itself (RUN_DIR/final.json) are kept beside them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gnet
from gnet.data.fashion_mnist import GrayImageDataset, load_fashion_mnist
from gnet.device import hardware
from gnet.train.loop import evaluate
from gnet.weights.checkpoint import load_training_checkpoint
from gnet.weights.export import export_bundled, git_commit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--command", default=None, help="the training command (default: the one the run recorded)")
    p.add_argument("--assets", type=Path, default=Path("assets"))
    args = p.parse_args()

    final = json.loads((args.run_dir / "final.json").read_text())
    ckpt = load_training_checkpoint(args.run_dir / "last.pt")
    commit = git_commit()
    _, card_path = export_bundled(
        args.run_dir / "last.pt", args.assets,
        accuracy={**final["accuracy"], "split": final["eval_split"]},
        command=args.command or ckpt["train_config"]["command"],
        wall_time_s=final["wall_time_s"], hardware=final.get("hardware", hardware()), commit=commit,
    )

    loaded = gnet.load("bundled", "cpu")
    images, labels = load_fashion_mnist("test")
    card = loaded.card
    data = GrayImageDataset(
        images, labels, input_size=card.input_size, train=False,
        mean=card.normalization["mean"][0], std=card.normalization["std"][0],
    )
    shipped = evaluate(loaded.net, data)
    saved = json.loads(card_path.read_text())
    saved["accuracy"] = {**shipped, "split": f"test ({len(data):,} images), float16 weights as shipped"}
    saved["training"]["float32_accuracy"] = final["accuracy"]
    card_path.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"float32 (run): {final['accuracy']}")
    print(f"float16 (shipped): {shipped}")


if __name__ == "__main__":
    main()
