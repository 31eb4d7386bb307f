"""``gnet info``: the model card of a weights source."""

from __future__ import annotations

import argparse
import json

from . import options

NAME = "info"
HELP = "the model card of a weights source"
ORDER = 30


def configure(p: argparse.ArgumentParser) -> None:
    options.add_weights(p)
    options.add_format(p)


def run(args: argparse.Namespace) -> int:
    from ..weights.loader import load

    loaded = load(options.weights(args), "cpu")
    card = loaded.card.to_dict()
    if args.json:
        options.print_json(card)
        return 0
    classes = card.pop("classes")
    for key, value in card.items():
        print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    print(f"classes: {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}")
    return 0
