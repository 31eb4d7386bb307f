"""The options several commands share, defined once, and the helpers that read them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["add_design", "add_device", "add_format", "add_weights", "out_of_domain_warning", "positive_int",
           "print_json", "progress_bar", "save_png", "weights"]

_WEIGHTS_HELP = "auto (default), bundled, imagenet, random, or a checkpoint file path"
_DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (default: $GNET_DEVICE or auto)"


def add_weights(p: argparse.ArgumentParser, help: str = _WEIGHTS_HELP) -> None:
    """``--weights``, None when not given, which :func:`weights` reads as ``auto``; ``--aux-overlay`` and ``--labels-overlay``."""
    p.add_argument("--weights", default=None, help=help)
    p.add_argument("--aux-overlay", default=None, metavar="PATH",
                   help="aux heads from `gnet distill-aux`, stacked on --weights (same as --weights W+aux=PATH)")
    p.add_argument("--labels-overlay", default=None, metavar="PATH",
                   help="new classes for the three heads from `gnet retrain-heads`, stacked last "
                        "(same as --weights W+labels=PATH)")


def weights(args: argparse.Namespace) -> str:
    """The weights source a command loads: ``--weights`` (else ``auto``), with ``--aux-overlay`` then
    ``--labels-overlay`` stacked on it."""
    from ..weights.sources import with_overlay

    stacked = with_overlay(args.weights or "auto", getattr(args, "aux_overlay", None))
    return with_overlay(stacked, getattr(args, "labels_overlay", None), "labels")


def add_design(p: argparse.ArgumentParser) -> None:
    """The design lab's choices (:class:`gnet.net.model.GoogLeNetConfig`): ``--stem``, ``--no-reductions``,
    ``--no-pool-proj``, ``--classifier``; each default is the paper's."""
    from ..net.model import CLASSIFIERS, STEMS  # gnet.net.model imports torch; the choices are read at parse time

    p.add_argument("--stem", choices=STEMS, default="paper",
                   help="paper: 7x7/2 conv; 3x3: three 3x3 convs (32-32-64); vgg: VGG's full-resolution block")
    p.add_argument("--no-reductions", dest="reductions", action="store_false",
                   help="no 1x1 reduce before the 3x3 and 5x5 convolutions")
    p.add_argument("--no-pool-proj", dest="pool_proj", action="store_false",
                   help="no 1x1 projection after the pool branch (with --no-reductions: the paper's naive module)")
    p.add_argument("--classifier", choices=CLASSIFIERS, default="gap",
                   help="gap: global average pooling + linear (the paper's); fc: flatten + linear, AlexNet/VGG style")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help=_DEVICE_HELP)


def add_format(p: argparse.ArgumentParser, *, json_help: str = "print one JSON object", csv_help: str | None = None) -> None:
    """``--json`` (and ``--csv`` when ``csv_help`` is given), mutually exclusive."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help=json_help)
    if csv_help is not None:
        group.add_argument("--csv", action="store_true", help=csv_help)
    else:
        p.set_defaults(csv=False)


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


@contextmanager
def progress_bar(what: str) -> Iterator[Callable[[float], None]]:
    """A tqdm bar on stderr (``--json`` output stays clean) fed by gnet's ``progress(fraction)`` callbacks.

    It appears only when the work takes more than half a second, and is cleared when done.
    """
    from tqdm import tqdm

    with tqdm(total=100, desc=what, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
              leave=False, delay=0.5) as bar:
        yield lambda done: bar.update(round(done * 100) - bar.n)


def save_png(pixels: Any, path: str, scale: int = 1) -> tuple[int, int]:
    """An H x W x 3 uint8 array written to ``path`` as a PNG, ``scale`` times larger with its pixels kept
    sharp; returns the written width and height. An unwritable path is the user's to fix (GNetError)."""
    from PIL import Image

    from ..errors import GNetError

    picture = Image.fromarray(pixels)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    try:
        picture.save(path, format="PNG")
    except OSError as e:
        raise GNetError(f"Cannot write {path!r} ({e.strerror or e}): choose a writable path.") from None
    return picture.size


def out_of_domain_warning(domain: Any, loaded: Any, so: str) -> str:
    """The line a command prints when :func:`gnet.heads.in_domain.in_domain` finds the image out of domain."""
    return (f"warning: this image looks unlike the training data (in-domain score {domain.score:.1f}, less typical "
            f"than {domain.percentile:.1f}% of {domain.reference}): the model only knows its "
            f"{len(loaded.classes)} classes, so {so}")
