"""Labelled image sets to run a loaded model over: the Fashion-MNIST test set, an image folder, the samples.

Dataset-wide views (the heads over a test set, the images that excite a channel most, the
accuracy lost when a branch is knocked out) all need the same thing: every image of a set,
preprocessed exactly as the loaded weights expect, in batches, with its label and a way back
to the picture for display. :class:`LabelledImages` is that, and its :attr:`~LabelledImages.key`
names the data for a disk cache (together with the weights' hash).

- :func:`fashion_mnist_test` (and :func:`fashion_mnist` for either split): for weights trained on
  Fashion-MNIST the images take the exact path of training and evaluation
  (:class:`gnet.data.fashion_mnist.GrayImageDataset`, no photo inversion); for other weights each image
  goes through the weights' own preprocessing.
- :func:`image_folder`: ``root/<class>/<image>``, decoded lazily through :mod:`gnet.data.images`;
  an undecodable file is a :class:`~gnet.errors.DatasetError` that names it.
- :func:`sample_set`: the bundled samples, labelled where their class is known to the weights.
- :func:`photo_folder`: every image below a folder, unlabelled (a user's photo library).
- :func:`class_folder`: ``root/<class>/<image>`` with classes of its own, for heads retrained on them.
- :func:`evaluation_set`: which of these a dataset-wide view uses for a set of weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch import Tensor

from ..data.fashion_mnist import FASHION_MNIST_CLASSES, GrayImageDataset, load_fashion_mnist
from ..data.folders import list_folder
from ..data.images import SUPPORTED_EXTENSIONS, load_image
from ..data.preprocess import GrayscalePreprocess
from ..data.samples import sample_images
from ..errors import DatasetError, ImageError
from ..weights.card import LoadedModel

__all__ = [
    "LabelledImages",
    "MAX_CLASSES",
    "batch_size_for",
    "class_folder",
    "evaluation_set",
    "fashion_mnist",
    "fashion_mnist_test",
    "image_folder",
    "photo_folder",
    "sample_set",
]


@dataclass
class LabelledImages:
    """Images, their labels and class names, preprocessed on demand for one model.

    ``labels`` holds -1 for an image without a known label. ``key`` names the data (and
    the preprocessing) for a disk cache; pair it with the weights' hash.
    """

    name: str
    classes: list[str]
    labels: Tensor  # N, int64
    key: dict[str, Any]
    _inputs: Callable[[Sequence[int]], Tensor] = field(repr=False)
    _picture: Callable[[int], Image.Image] = field(repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labelled(self) -> bool:
        """Whether every image has a label among ``classes``."""
        return bool(len(self)) and bool((self.labels >= 0).all())

    def inputs(self, indices: Sequence[int]) -> Tensor:
        """The preprocessed images at ``indices`` as a B x 3 x S x S float tensor (on the CPU)."""
        return self._inputs(indices)

    def batches(self, batch_size: int = 128) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """(inputs, labels, indices) for consecutive batches covering the whole set."""
        for start in range(0, len(self), batch_size):
            indices = torch.arange(start, min(start + batch_size, len(self)))
            yield self._inputs(indices.tolist()), self.labels[indices], indices

    def picture(self, index: int) -> Image.Image:
        """Image ``index`` as the user would recognise it (RGB, before preprocessing)."""
        return self._picture(index)

    def subset(self, indices: Sequence[int], part: str, how: str = "") -> LabelledImages:
        """The images at ``indices`` (in that order) as a set of their own, named ``part`` (and ``how``, in the key)."""
        picked = [int(i) for i in indices]
        return LabelledImages(
            name=f"{self.name}, {part}: {len(picked):,} images",
            classes=self.classes,
            labels=self.labels[torch.tensor(picked, dtype=torch.int64)],
            key={**self.key, "part": f"{part} {how}".strip(), "indices": len(picked)},
            _inputs=lambda idx: self._inputs([picked[int(i)] for i in idx]),
            _picture=lambda i: self._picture(picked[i]),
        )

    def split(self, held_out: float = 0.2, seed: int = 0) -> tuple[LabelledImages, LabelledImages]:
        """(fit, held out): ``held_out`` of each class's images, drawn with ``seed``, kept aside (at least one).

        Raises :class:`DatasetError` when a class has fewer than 2 images or an image has no label.
        """
        if not self.labelled:
            raise DatasetError(f"{self.name} has images without a label: every image must sit in a class subfolder.")
        generator = torch.Generator().manual_seed(seed)
        fit: list[int] = []
        held: list[int] = []
        for label in torch.unique(self.labels).tolist():
            members = torch.nonzero(self.labels == label).flatten()
            if len(members) < 2:
                raise DatasetError(
                    f"Class {self.classes[label]!r} of {self.name} has 1 image: give each class at least 2, "
                    "one to fit on and one to hold out."
                )
            members = members[torch.randperm(len(members), generator=generator)]
            n_held = min(len(members) - 1, max(1, round(len(members) * held_out)))
            held += members[:n_held].tolist()
            fit += members[n_held:].tolist()
        how = f"({held_out:g} of each class held out, seed {seed})"
        return self.subset(sorted(fit), "fit split", how), self.subset(sorted(held), "held-out split", how)


def _per_image(loaded: LoadedModel, open_image: Callable[[int], Image.Image]) -> Callable[[Sequence[int]], Tensor]:
    def inputs(indices: Sequence[int]) -> Tensor:
        return torch.stack([loaded.transform(open_image(int(i))) for i in indices])

    return inputs


def fashion_mnist_test(loaded: LoadedModel, *, limit: int | None = None, root: Path | str | None = None) -> LabelledImages:
    """The Fashion-MNIST test set (10,000 images, or the first ``limit``) for ``loaded``.

    Raises :class:`DatasetError` when the dataset is not installed.
    """
    return fashion_mnist(loaded, "test", limit=limit, root=root)


def fashion_mnist(
    loaded: LoadedModel, split: Literal["train", "test"], *, limit: int | None = None, root: Path | str | None = None
) -> LabelledImages:
    """A Fashion-MNIST split (60,000 training or 10,000 test images, or the first ``limit``) for ``loaded``.

    Without augmentation: the training split is for statistics of what the weights were trained on
    (:mod:`gnet.heads.in_domain` fits to it) and for distilling aux heads. Raises :class:`DatasetError`
    when the dataset is not installed.
    """
    images, labels = load_fashion_mnist(split, root)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    transform = loaded.transform

    def picture(i: int) -> Image.Image:
        return Image.fromarray(images[i].numpy(), mode="L").convert("RGB")

    if isinstance(transform, GrayscalePreprocess):
        # The path the weights were trained and evaluated on: batch resize, no photo inversion.
        dataset = GrayImageDataset(
            images, labels, input_size=transform.input_size, train=False, mean=transform.mean[0], std=transform.std[0]
        )
        inputs: Callable[[Sequence[int]], Tensor] = lambda idx: dataset.batch(torch.as_tensor(idx))[0].contiguous()
        how = f"gray {transform.input_size}px mean {transform.mean[0]:.4f} std {transform.std[0]:.4f}"
    else:
        inputs, how = _per_image(loaded, picture), repr(transform)
    what = "test set" if split == "test" else "training set"
    return LabelledImages(
        name=f"Fashion-MNIST {what} ({len(labels):,} images)",
        classes=list(FASHION_MNIST_CLASSES),
        labels=labels,
        key={"data": f"fashion-mnist-{split}", "n": len(labels), "preprocessing": how},
        _inputs=inputs,
        _picture=picture,
    )


def image_folder(loaded: LoadedModel, root: Path | str, *, limit: int | None = None) -> LabelledImages:
    """A ``root/<class>/<image>`` tree for ``loaded``; its class names must be among the weights' classes.

    Raises :class:`DatasetError` for a missing or empty folder, one without class subfolders,
    class names the weights do not know, or (when read) an undecodable image, naming it.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"Image folder {str(root)!r} does not exist: give a folder with one subfolder per class.")
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise DatasetError(
            f"{str(root)!r} has no class subfolders: put the images in {root}/<class name>/<image>."
        )
    unknown = [p.name for p in subfolders if p.name not in loaded.classes]
    if unknown:
        shown = ", ".join(loaded.classes[:5]) + (", ..." if len(loaded.classes) > 5 else "")
        raise DatasetError(
            f"{str(root)!r} has classes these weights do not know ({', '.join(unknown[:3])}): name the subfolders "
            f"after the weights' classes ({shown})."
        )
    files: list[Path] = []
    labels: list[int] = []
    for folder in subfolders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower().lstrip(".") in SUPPORTED_EXTENSIONS:
                files.append(path)
                labels.append(loaded.classes.index(folder.name))
    if not files:
        raise DatasetError(f"{str(root)!r} holds no images ({', '.join(SUPPORTED_EXTENSIONS)}) in its class subfolders.")
    if limit is not None:
        files, labels = files[:limit], labels[:limit]
    return _files(loaded, root, files, labels, name=f"{root.name} ({len(files):,} images)", kind="folder")


MAX_CLASSES = 1000  # as many as ImageNet's: a head with more is not what this tool is for


def class_folder(loaded: LoadedModel, root: Path | str) -> LabelledImages:
    """A ``root/<class>/<image>`` tree with classes of its own (not the weights'): for new heads on a frozen trunk.

    Raises :class:`DatasetError` for a missing folder, fewer than 2 or more than :data:`MAX_CLASSES`
    classes, a class folder without images, or (when read) an undecodable image, naming it.
    """
    listing = list_folder(root)
    if len(listing.classes) > MAX_CLASSES:
        raise DatasetError(
            f"{str(listing.root)!r} has {len(listing.classes):,} class subfolders, more than the {MAX_CLASSES:,} a head "
            "may have: merge or drop some."
        )
    files = [Path(f) for f in listing.files]
    data = _files(loaded, listing.root, files, listing.labels, name=f"{listing.root.name} ({len(files):,} images)",
                  kind="classes")
    data.classes = list(listing.classes)
    return data


def _files(
    loaded: LoadedModel, root: Path, files: list[Path], labels: list[int], *, name: str, kind: str
) -> LabelledImages:
    """Image files below ``root``, decoded on demand; the key names each file by path, size and time."""

    def picture(i: int) -> Image.Image:
        try:
            return load_image(files[i])
        except ImageError as e:
            raise DatasetError(f"{str(e).rstrip('.')}; fix or remove it to use this folder.") from None

    stamp = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return LabelledImages(
        name=name,
        classes=list(loaded.classes),
        labels=torch.tensor(labels, dtype=torch.int64),
        key={"data": f"{kind}:{root.resolve()}", "files": stamp, "preprocessing": repr(loaded.transform)},
        _inputs=_per_image(loaded, picture),
        _picture=picture,
    )


def sample_set(loaded: LoadedModel) -> LabelledImages:
    """The bundled samples; a sample's label is -1 when the weights do not know its class."""
    found = sample_images()
    labels = []
    for s in found:
        truth = s.true_label(loaded.classes)
        labels.append(loaded.classes.index(truth) if truth is not None else -1)

    def picture(i: int) -> Image.Image:
        return load_image(found[i].path)

    return LabelledImages(
        name=f"the {len(found)} sample images",
        classes=list(loaded.classes),
        labels=torch.tensor(labels, dtype=torch.int64),
        key={"data": "samples", "names": [s.name for s in found], "preprocessing": repr(loaded.transform)},
        _inputs=_per_image(loaded, picture),
        _picture=picture,
    )


def photo_folder(loaded: LoadedModel, root: Path | str, *, limit: int | None = None) -> LabelledImages:
    """Every image below ``root`` (any layout), unlabelled, for ``loaded``: a user's own photos.

    Raises :class:`DatasetError` for a missing folder or one without images, and (when read)
    for an undecodable image, naming it.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"Image folder {str(root)!r} does not exist: give a folder of photos.")
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower().lstrip(".") in SUPPORTED_EXTENSIONS
    )[:limit]
    if not files:
        raise DatasetError(f"{str(root)!r} holds no images ({', '.join(SUPPORTED_EXTENSIONS)}).")
    name = f"{root.name} ({len(files):,} images, unlabelled)"
    return _files(loaded, root, files, [-1] * len(files), name=name, kind="photos")


def batch_size_for(input_size: int, *, at_64: int = 128) -> int:
    """Images per batch for a dataset-wide pass: ``at_64`` at 64 px, fewer for larger inputs.

    Activations grow with the square of the side, so the batch shrinks with it and a pass that
    keeps the nine modules' outputs costs about the same memory at 224 px as at 64 px.
    """
    return max(8, round(at_64 * (64 / input_size) ** 2))


def evaluation_set(loaded: LoadedModel, folder: Path | str | None = None, *, limit: int | None = None) -> LabelledImages:
    """The set to judge ``loaded`` on (its first ``limit`` images when given): ``folder`` when given;
    else the Fashion-MNIST test set for weights with Fashion-MNIST's classes (the bundled net);
    else the samples.

    Every dataset-wide view without a folder of its own uses this choice: the heads over a test
    set, the dataset examples of a channel, branch importance. Raises :class:`DatasetError` for
    a bad folder, or when Fashion-MNIST is needed and missing.
    """
    if folder is not None:
        return image_folder(loaded, folder, limit=limit)
    if tuple(loaded.classes) == FASHION_MNIST_CLASSES:
        return fashion_mnist_test(loaded, limit=limit)
    return sample_set(loaded)
