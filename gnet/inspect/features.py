"""Feature visualization by optimization: the image that excites a channel, a branch or a head's class most.

The method of Olah, Mordvintsev and Schubert, "Feature Visualization", Distill 2017
(https://distill.pub/2017/feature-visualization/), as lucid implements it:

- the image is parameterized in a **Fourier basis** whose coefficients are scaled by
  1/frequency, so gradient steps do not pile up high-frequency noise;
- **decorrelated colour** for RGB weights: the three channels are mixed by the square root of
  ImageNet's colour covariance before a sigmoid; weights trained on grayscale (the bundled
  Fashion-MNIST net sees gray repeated to 3 channels, see :mod:`gnet.data.preprocess`) get a single
  gray channel instead, so the picture stays one the net could have been shown;
- for weights trained on Fashion-MNIST the image is parameterized at the data's own 28 px and
  upsampled to the input size as the data is (:class:`gnet.data.fashion_mnist.GrayImageDataset`). Distill
  optimizes at the input resolution; here that leaves 64 px images full of checkerboard noise in
  detail finer than any pixel the net was trained on; the 28 px image gives up a few per cent
  of the objective for a picture without that noise;
- random **jitter, scale and rotation** at every step (transformation robustness), so the image
  must work wherever it lands, not only on exact pixel positions;
- **Adam** (learning rate 0.05, lucid's default).

Targets: a channel ``inception4c.5x5:12`` (its spatial mean, taken before the ReLU while
optimizing, see :func:`objective`), a branch ``inception4c.5x5`` (the mean over its channels)
or a class of one head ``aux1:Sneaker`` (that head's logit), so what main, aux1 and aux2 each
take a sneaker to be can be put side by side.
"""

# Written here rather than taken from a package: torch-lucent, the PyTorch port of lucid, had its
# last release (0.1.8) in 2021; it pins kornia<=0.4.1 and lists pytest and coveralls as runtime
# dependencies. The method itself is torch.fft plus torchvision's v2 functional transforms.

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..data.preprocess import GrayscalePreprocess
from ..errors import TargetError
from ..guard import exclusive
from ..net.layers import HEADS, INCEPTION_MODULES, ChannelTarget, branch_channels, parse_channel, submodule
from ..weights.card import LoadedModel
from .probe import capture, forward_to

__all__ = [
    "COLOR_CORRELATION_SVD_SQRT",
    "DIVERSITY",
    "MAX_STEPS",
    "ClassTarget",
    "Target",
    "Visualization",
    "activation",
    "gram_similarity",
    "objective",
    "parse_target",
    "visualize",
    "visualize_many",
]

MAX_STEPS = 4096  # one image and one graph at a time: memory does not grow with steps, only the trace
LEARNING_RATE = 0.05
SPECTRUM_INIT_STD = 0.01  # lucid's fft_image
FASHION_MNIST_SIZE = 28  # the data's own resolution, where Fashion-MNIST weights' images are parameterized
# The diversity objective's weight against the mean of the channel's objective. On the bundled net (4 images of
# inception4a.3x3:12, 128 steps) 1.0 took the Gram matrices' mean cosine similarity from 0.90 to 0.37 while
# the images' activations stayed at 0.35 to 0.51 (0.44 to 0.52 without); 10 reached 0.10 but halved them.
DIVERSITY = 1.0
SPECTRUM_DIVISOR = 4.0  # lucid's "magic" constant: keeps the first image's values in the sigmoid's linear range
# lucid's standard_transforms, in pixels at 224 px (scaled to the input size below): pad 12 with
# mid-gray, jitter 8, scale 0.9..1.1, rotate -10..10 degrees, jitter 4.
PAD, JITTER_FIRST, JITTER_LAST = 12, 8, 4
SCALE_RANGE, ANGLE_RANGE = (0.9, 1.1), (-10.0, 10.0)
# lucid's color_correlation_svd_sqrt (lucid/optvis/param/color.py): the square root, by SVD, of
# the covariance of the R, G, B values of ImageNet images. Multiplying independent channels by it
# gives colours that co-vary as in natural photos. Normalized by its largest column norm, as lucid does.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()

Progress = Callable[[float], None]


@dataclass(frozen=True)
class ClassTarget:
    """One class of one head, as a user names it: ``aux1:Sneaker``."""

    head: str
    index: int
    label: str

    @property
    def name(self) -> str:
        return f"{self.head}:{self.label}"


Target = ChannelTarget | ClassTarget

_CLASS_TARGET = re.compile(r"^(?P<head>[^.:]+):(?P<cls>.+)$")


def _class_list(classes: Sequence[str]) -> str:
    shown = ", ".join(classes[:12])
    return shown if len(classes) <= 12 else f"{shown}, ... ({len(classes)} classes, `gnet info` lists them)"


def parse_target(text: str, classes: Sequence[str]) -> Target:
    """``inception4c.5x5:12``, ``inception4c.5x5`` or ``main:Sneaker`` -> a target.

    A class is named as in the weights' card (case does not matter) or by its index.
    Raises :class:`TargetError` with one sentence naming the valid heads, classes,
    modules, branches or channel range.
    """
    text = text.strip()
    m = _CLASS_TARGET.match(text)
    if m is None:
        return parse_channel(text)
    head, wanted = m["head"], m["cls"].strip()
    if head not in HEADS:
        raise TargetError(
            f"Unknown head {head!r}: write HEAD:CLASS with HEAD one of {', '.join(HEADS)} (main:{classes[0]}), "
            "or MODULE.BRANCH[:CHANNEL] (inception4c.5x5:12)."
        )
    by_name = {c.lower(): i for i, c in enumerate(classes)}
    index = by_name.get(wanted.lower())
    if index is None and wanted.isdigit() and int(wanted) < len(classes):
        index = int(wanted)
    if index is None:
        raise TargetError(f"{wanted!r} is not a class of these weights: choose one of {_class_list(classes)}.")
    return ClassTarget(head, index, classes[index])


def _channels(target: ChannelTarget) -> slice:
    """The target's channels within its branch: one, or all of them."""
    if target.channel is not None:
        return slice(target.channel, target.channel + 1)
    return slice(0, branch_channels(target.module, target.branch))


def objective(net: torch.nn.Module, x: Tensor, target: Target) -> Tensor:
    """The value a visualization maximizes, one per image of ``x`` (N): a pre-ReLU spatial mean, or a logit.

    For a channel or a branch it is the spatial mean *before* the branch's last ReLU, as lucid's
    InceptionV1 objectives (its ``_pre_relu`` layers): after the ReLU a channel that is off on
    the starting image has no gradient at all and the image never moves. The forward stops at
    that point (:func:`gnet.inspect.probe.forward_to`), so an early channel costs only the layers below
    it. The caller holds the model.
    """
    if isinstance(target, ClassTarget):
        return forward_to(net, x, "fc" if target.head == "main" else target.head)[:, target.index]
    branch = submodule(net, f"{target.module}.{target.branch}")
    last = branch[-1] if isinstance(branch, torch.nn.Sequential) else branch  # the branch's last ConvBlock
    pre_relu = forward_to(net, x, last.bn)  # N x C x H x W (bn is an Identity in nets without batch norm)
    return pre_relu[:, _channels(target)].mean(dim=(1, 2, 3))


def activation(net: torch.nn.Module, x: Tensor, target: Target) -> Tensor:
    """What the channel or branch outputs, one spatial mean per image of ``x``: after its ReLU, as a slice
    of its module's output, the value the dataset examples rank by. A head's class: its logit."""
    if isinstance(target, ClassTarget):
        return objective(net, x, target)
    out = forward_to(net, x, target.module)  # N x C x H x W, the module's four branches concatenated
    within = _channels(target)
    return out[:, target.offset + within.start : target.offset + within.stop].mean(dim=(1, 2, 3))


@dataclass(frozen=True)
class Visualization:
    """The optimized image for one target, and how the objective rose."""

    target: str
    image: np.ndarray  # H x W x 3 floats in [0, 1], the picture (gray repeated for grayscale weights)
    input: Tensor  # 1 x 3 x H x W, normalized: exactly what the net sees (CPU)
    trace: list[float]  # the objective at each step, on that step's randomly transformed image
    objective: float  # the objective on the final image, without any transform
    activation: float  # the target's spatial-mean activation (after ReLU) or logit on the final image
    steps: int
    seed: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "objective": self.objective,
            "activation": self.activation,
            "steps": self.steps,
            "seed": self.seed,
            "seconds": self.seconds,
            "image_shape": list(self.image.shape),
            "trace": self.trace,
        }


class _FourierImage:
    """An image held as the real FFT spectrum of each channel, scaled by 1/frequency (lucid's fft_image)."""

    def __init__(
        self, channels: int, size: int, generator: torch.Generator, device: torch.device, *, batch: int = 1
    ) -> None:
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        freqs = torch.sqrt(fx * fx + fy * fy)  # size x (size // 2 + 1)
        self.scale = (1.0 / freqs.clamp(min=1.0 / size)).to(device)
        self.size = size
        init = torch.randn(batch, channels, *freqs.shape, 2, generator=generator) * SPECTRUM_INIT_STD
        self.spectrum = init.to(device).requires_grad_(True)

    def __call__(self) -> Tensor:
        """batch x channels x size x size, unbounded (a sigmoid maps it to pixel values)."""
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        return torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho") / SPECTRUM_DIVISOR


def _pixels(raw: Tensor, gray: bool, size: int) -> Tensor:
    """Unbounded Fourier image -> pixel values in [0, 1] at ``size``: decorrelated colour for RGB, a sigmoid."""
    if not gray:
        raw = torch.einsum("nchw,dc->ndhw", raw, _COLOR.to(raw.device))
    pixels = torch.sigmoid(raw)
    if pixels.shape[-1] != size:  # upsampled as gnet.data.fashion_mnist.GrayImageDataset upsamples the data
        pixels = TF.resize(pixels, [size, size], antialias=True)
    return pixels


def _parameter_size(loaded: LoadedModel, gray: bool) -> int:
    """The side of the optimized image: the data's 28 px for Fashion-MNIST weights, else the input size."""
    size = loaded.card.input_size
    fashion = str(loaded.card.details.get("dataset", "")).startswith("Fashion-MNIST")
    return min(FASHION_MNIST_SIZE, size) if gray and fashion else size


def _jitter(x: Tensor, d: int, g: torch.Generator) -> Tensor:
    """A random crop ``d`` pixels smaller on each axis (lucid's jitter)."""
    dy, dx = (int(v) for v in torch.randint(0, d + 1, (2,), generator=g))
    return TF.crop(x, dy, dx, x.shape[-2] - d, x.shape[-1] - d)


def _robustness(pixels: Tensor, g: torch.Generator) -> Tensor:
    """lucid's standard transforms, scaled from 224 px to this image's size: pad, jitter, scale+rotate, jitter."""
    unit = pixels.shape[-1] / 224
    pad, first, last = (max(1, round(p * unit)) for p in (PAD, JITTER_FIRST, JITTER_LAST))
    u = torch.rand(2, generator=g).tolist()
    scale = SCALE_RANGE[0] + u[0] * (SCALE_RANGE[1] - SCALE_RANGE[0])
    angle = ANGLE_RANGE[0] + u[1] * (ANGLE_RANGE[1] - ANGLE_RANGE[0])
    # Work around mid-gray: torchvision fills padding and rotated-in corners with 0, and its
    # fill= option writes in place, which autograd refuses.
    x = TF.pad(pixels - 0.5, [pad] * 4)
    x = _jitter(x, first, g)
    x = TF.affine(x, angle=angle, translate=[0, 0], scale=scale, shear=[0.0, 0.0],
                  interpolation=InterpolationMode.BILINEAR)
    return _jitter(x, last, g) + 0.5


def _normalizer(loaded: LoadedModel, gray: bool) -> Callable[[Tensor], Tensor]:
    """Pixels in [0, 1] (1 or 3 channels) -> the 3-channel normalized input the weights expect."""
    norm = loaded.card.normalization
    mean = torch.tensor(norm.get("mean") or [0.0, 0.0, 0.0], device=loaded.device)
    std = torch.tensor(norm.get("std") or [1.0, 1.0, 1.0], device=loaded.device)
    channels = 1 if gray else 3
    mean, std = mean[:channels].view(1, -1, 1, 1), std[:channels].view(1, -1, 1, 1)

    def normalize(pixels: Tensor) -> Tensor:
        x = (pixels - mean) / std
        return x.expand(-1, 3, -1, -1) if gray else x

    return normalize


def visualize(
    loaded: LoadedModel,
    target: Target | str,
    *,
    steps: int = 256,
    seed: int = 0,
    progress: Progress | None = None,
) -> Visualization:
    """Optimize an image that maximizes ``target`` for ``loaded``'s network (see the module docstring).

    Args:
        loaded: the weights; the image has their input size, and their normalization.
        target: a :data:`Target`, or its text (``inception4c.5x5:12``, ``inception4c.5x5``, ``main:Sneaker``).
        steps: Adam steps, 1 to :data:`MAX_STEPS`.
        seed: seeds the initial spectrum and every random transform (a generator of its own, not
            the global RNG), so equal calls give equal images on the CPU.
        progress: called with the fraction done after every step.

    The model runs in eval mode inside :func:`gnet.guard.exclusive`; gradients flow to the image
    only (``torch.autograd.grad``), so the shared model's parameters never get a ``.grad``.
    Raises :class:`TargetError` for a target the weights do not have.
    """
    if isinstance(target, str):
        target = parse_target(target, loaded.classes)
    t0 = time.perf_counter()
    net = loaded.net
    pixels, final, traces = _optimize(loaded, lambda x: objective(net, x, target), 1, steps, seed, progress)
    with exclusive(net, training=False), torch.no_grad():
        value = float(objective(net, final, target)[0])
        output = float(activation(net, final, target)[0])
    return Visualization(
        target=target.name,
        image=_picture(pixels[0]),
        input=final.detach().cpu().contiguous(),
        trace=traces[0],
        objective=value,
        activation=output,
        steps=steps,
        seed=seed,
        seconds=time.perf_counter() - t0,
    )


def _picture(pixels: Tensor) -> np.ndarray:
    """C x H x W pixels (1 or 3 channels) -> H x W x 3 floats on the CPU (gray repeated)."""
    return pixels.expand(3, -1, -1).permute(1, 2, 0).cpu().numpy()


def _optimize(
    loaded: LoadedModel, values: Callable[[Tensor], Tensor], batch: int, steps: int, seed: int,
    progress: Progress | None,
) -> tuple[Tensor, Tensor, list[list[float]]]:
    """Adam on ``batch`` Fourier images to maximize ``values(x)`` (N values, summed): (pixels, input, traces).

    One random transform per step for the whole batch; the model is held in eval mode for the
    whole optimization and gradients flow to the images only.
    """
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    gray = isinstance(loaded.transform, GrayscalePreprocess)
    size = loaded.card.input_size
    generator = torch.Generator().manual_seed(seed)
    image = _FourierImage(1 if gray else 3, _parameter_size(loaded, gray), generator, loaded.device, batch=batch)
    normalize = _normalizer(loaded, gray)
    optimizer = torch.optim.Adam([image.spectrum], lr=LEARNING_RATE)
    trace: list[Tensor] = []
    with exclusive(loaded.net, training=False), torch.enable_grad():
        for step in range(steps):
            x = normalize(_robustness(_pixels(image(), gray, size), generator))
            value = values(x)
            (image.spectrum.grad,) = torch.autograd.grad(-value.sum(), [image.spectrum])
            optimizer.step()
            trace.append(value.detach())
            if progress is not None:
                progress((step + 1) / steps)
        with torch.no_grad():
            pixels = _pixels(image(), gray, size)
            final = normalize(pixels)
    return pixels, final, torch.stack(trace).T.cpu().tolist()


def _gram_similarity(maps: Tensor) -> Tensor:
    """Mean cosine similarity of the N images' Gram matrices of ``maps`` (N x C x H x W), over pairs (Lucent's diversity)."""
    flat = maps.flatten(2)  # N x C x HW
    grams = torch.nn.functional.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1)  # N x C*C
    n = grams.shape[0]
    similarity = grams @ grams.T
    return (similarity.sum() - similarity.diagonal().sum()) / (n * (n - 1))


def visualize_many(
    loaded: LoadedModel,
    targets: Sequence[ChannelTarget | str],
    *,
    steps: int = 256,
    seed: int = 0,
    diversity: float = 0.0,
    progress: Progress | None = None,
) -> list[Visualization]:
    """One optimization for a batch of images, image ``i`` maximizing channel ``targets[i]``.

    The thumbnails of a circuit's k channels cost one optimization instead of k. With
    ``diversity`` > 0, the sum of the objectives is penalized by ``diversity`` times the mean
    cosine similarity of the images' Gram matrices at the targets' module (Olah et al.'s
    diversity objective, as Lucent's ``objectives.diversity``): pass the same channel several
    times to see the different things a polysemantic channel responds to. Every target must be
    a channel or a branch of one of the nine modules (not a head's class).
    """
    parsed = [parse_channel(t) if isinstance(t, str) else t for t in targets]
    if not parsed:
        raise ValueError("visualize_many needs at least one target")
    if diversity and len(parsed) < 2:
        raise ValueError("diversity compares images with each other: give at least two targets")
    t0 = time.perf_counter()
    net = loaded.net
    deepest = max((t.module for t in parsed), key=INCEPTION_MODULES.index)
    modules = {t.module for t in parsed}

    def last_bn(t: ChannelTarget) -> torch.nn.Module:
        branch = submodule(net, f"{t.module}.{t.branch}")
        return (branch[-1] if isinstance(branch, torch.nn.Sequential) else branch).bn

    points = {f"{t.module}.{t.branch}": last_bn(t) for t in parsed}
    points |= {m: getattr(net, m) for m in modules}

    def values(x: Tensor) -> Tensor:
        with capture(net, points, detach=False) as store:
            forward_to(net, x, deepest)
        out = torch.stack([
            store[f"{t.module}.{t.branch}"][i, _channels(t)].mean() for i, t in enumerate(parsed)
        ])
        if diversity:
            penalty = sum(_gram_similarity(store[m]) for m in modules) / len(modules)
            out = out - diversity * penalty / len(parsed)
        return out

    pixels, final, traces = _optimize(loaded, values, len(parsed), steps, seed, progress)
    with exclusive(net, training=False), torch.no_grad():
        objectives = values(final) if not diversity else None
        with capture(net, {m: getattr(net, m) for m in modules}) as store:
            forward_to(net, final, deepest)
    seconds = time.perf_counter() - t0
    results = []
    for i, t in enumerate(parsed):
        within = _channels(t)
        out = store[t.module][i, t.offset + within.start : t.offset + within.stop]
        results.append(Visualization(
            target=t.name,
            image=_picture(pixels[i]),
            input=final[i : i + 1].detach().cpu().contiguous(),
            trace=traces[i],
            objective=float(objectives[i]) if objectives is not None else float("nan"),
            activation=float(out.mean()),
            steps=steps,
            seed=seed,
            seconds=seconds,
        ))
    return results


def gram_similarity(loaded: LoadedModel, visualizations: Sequence[Visualization], module: str) -> float:
    """How alike the images are to the net at ``module``: the mean pairwise cosine similarity of their Gram matrices."""
    x = torch.cat([v.input for v in visualizations]).to(loaded.device)
    with exclusive(loaded.net, training=False), torch.no_grad():
        return float(_gram_similarity(forward_to(loaded.net, x, module)))
