"""GoogLeNet (Inception v1) with the variants a student wants to compare.

One builder, :func:`googlenet`, makes either torchvision's layout (batch norm after
every convolution; its state dict loads torchvision's ``GoogLeNet_Weights`` keys
unchanged) or the paper's net (Szegedy et al. 2014, arXiv:1409.4842: no batch norm,
local response normalization after the stem, 40% dropout).

The design lab's variants (:mod:`gnet.net.design`) flip the paper's design choices in the
same class: the stem (``stem``), the 1x1 reductions (``reductions``), the pool branch's
projection (``pool_proj``; both off is the paper's Figure 2a, the naive module) and global
average pooling (``classifier="fc"``). With the paper's choices the state-dict keys are
unchanged; a variant only leaves keys out or changes shapes.

Unlike torchvision, the forward pass always returns all three heads, in eval mode
too, so the auxiliary classifiers can be compared with the main one from a single
pass. File order follows torchvision: outputs, network, builder; the blocks are in
:mod:`gnet.net.blocks`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from ..errors import GNetError
from .blocks import ConvBlock, Inception, InceptionAux
from .layers import AUX_ATTACH, BRANCHES, HEADS, INCEPTION_MODULES, INCEPTION_SPECS

__all__ = [
    "AUX_ATTACH",
    "BRANCHES",
    "HEADS",
    "INCEPTION_MODULES",
    "CLASSIFIERS",
    "INIT_SCHEMES",
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "STEMS",
    "GoogLeNet",
    "GoogLeNetConfig",
    "HeadLogits",
    "batch_statistics_defined",
    "check_input_size",
    "conv_output_size",
    "googlenet",
    "pool_output_size",
]

InitScheme = Literal["trunc_normal", "xavier", "kaiming"]
INIT_SCHEMES: tuple[str, ...] = ("trunc_normal", "xavier", "kaiming")
Stem = Literal["paper", "3x3", "vgg"]
STEMS: tuple[str, ...] = ("paper", "3x3", "vgg")
Classifier = Literal["gap", "fc"]
CLASSIFIERS: tuple[str, ...] = ("gap", "fc")
# Below ~15 px a pooling layer's output is empty; 32 px leaves inception5b a 1x1 map, as the
# paper's 224 px leaves it 7x7 (an overall stride of 32).
MIN_INPUT_SIZE = 32
# The largest side a model card may ask for: 512 px already costs ~5x the paper's 224 px in every
# activation, and one analysis of a 4096 px input would hold gigabytes on a shared server.
MAX_INPUT_SIZE = 512
# Below 47 px inception5b's map is 1x1 (stride-2 convolution and ceil-mode pools), so batch norm
# in training mode sees one value per channel for a lone image; pinned by tests/gnet/net/test_model.py.
SINGLE_IMAGE_MIN_SIZE = 47


def check_input_size(size: int, option: str = "--input-size") -> None:
    """Raise :class:`GNetError` when ``size`` pixels per side is too small for GoogLeNet."""
    if size < MIN_INPUT_SIZE:
        raise GNetError(f"{option} {size} is too small: GoogLeNet needs at least {MIN_INPUT_SIZE} pixels.")


def conv_output_size(size: int, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> int:
    """One side of a convolution's output (PyTorch's formula)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(
    size: int, kernel: int, stride: int, pad: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """One side of a pooling layer's output (PyTorch's ``pooling_output_shape``): with ``ceil_mode`` the
    last window must start inside the input."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def batch_statistics_defined(batch_size: int, input_size: int) -> bool:
    """Whether batch norm in training mode sees more than one value per channel in every layer.

    A batch of two is always enough; a single image needs inception5b's map to be larger than 1x1.
    """
    return batch_size > 1 or input_size >= SINGLE_IMAGE_MIN_SIZE


class HeadLogits(NamedTuple):
    """Logits of the three classifiers, computed by one forward pass (fields in :data:`gnet.net.layers.HEADS` order)."""

    main: Tensor
    aux1: Tensor
    aux2: Tensor


@dataclass(frozen=True)
class GoogLeNetConfig:
    """What distinguishes one GoogLeNet variant from another."""

    num_classes: int = 1000  # ImageNet by default; 10 for the bundled Fashion-MNIST net
    batch_norm: bool = True  # True: torchvision's layout; False: the paper's (pre-BN, with LRN)
    branch5x5_kernel: int = 3  # torchvision uses 3 (pytorch/vision#906); the paper uses 5
    init: InitScheme = "trunc_normal"  # torchvision: N(0, 0.01); paper's Caffe net: xavier
    transform_input: bool = False  # torchvision's ImageNet weights expect True
    dropout: float | None = None  # main head; None = 0.2 with batch norm (torchvision), 0.4 without (paper)
    dropout_aux: float = 0.7  # both papers agree on 70%
    # The design lab's choices (gnet.inspect.design); the defaults are the paper's.
    stem: Stem = "paper"  # "paper" 7x7/2; "3x3": three 3x3 convs (32-32-64, first /2); "vgg": VGG's first block
    reductions: bool = True  # False: the 3x3 and "5x5" convolutions read the module's input, no 1x1 reduce
    pool_proj: bool = True  # False: the pool branch passes its input's channels through (widths grow)
    classifier: Classifier = "gap"  # "gap": global average pooling + one linear layer; "fc": flatten + linear
    fc_input_size: int | None = None  # with classifier="fc": the input side its flattened layer is sized for

    def __post_init__(self) -> None:
        problem = next((m for ok, m in (
            (self.stem in STEMS, f"stem must be one of {', '.join(STEMS)}, got {self.stem!r}"),
            (self.classifier in CLASSIFIERS, f"classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}"),
            ((self.classifier == "fc") == (self.fc_input_size is not None),
             'fc_input_size is given with classifier="fc", and only then'),
        ) if not ok), None)
        if problem is not None:
            raise ValueError(problem)

    @property
    def design_changes(self) -> list[str]:
        """The design lab's choices that differ from the paper's, in words (empty for the paper's topology)."""
        changes = [f"{self.stem} stem"] if self.stem != "paper" else []
        changes += [] if self.reductions else ["no 1x1 reductions"]
        changes += [] if self.pool_proj else ["no pool projection"]
        changes += [f"fc classifier at {self.fc_input_size} px"] if self.classifier == "fc" else []
        return changes

    @property
    def is_paper_design(self) -> bool:
        """Whether the net has the paper's topology (Table 1), the one every inspection tool reads."""
        return not self.design_changes

    def to_dict(self) -> dict:
        return asdict(self)


class GoogLeNet(nn.Module):
    """GoogLeNet whose forward returns :class:`HeadLogits` (main, aux1, aux2) in any mode."""

    def __init__(self, config: GoogLeNetConfig = GoogLeNetConfig(), *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if config.init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES}, got {config.init!r}")
        if config.branch5x5_kernel not in (3, 5):
            raise ValueError(f"branch5x5_kernel must be 3 or 5, got {config.branch5x5_kernel}")
        self.config = config
        bn = config.batch_norm

        def conv(cin: int, cout: int, k: int, **kw) -> ConvBlock:
            return ConvBlock(cin, cout, kernel_size=k, batch_norm=bn, **kw)

        self.conv1 = self._stem(conv)  # N x 64 x 112 x 112 at 224 px, whichever stem
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # The paper normalizes with LRN after the first pooling and after conv3; torchvision's
        # batch-norm layout drops both. Identity keeps the forward code identical.
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75) if not bn else nn.Identity()
        self.conv2 = conv(64, 64, 1)
        self.conv3 = conv(64, 192, 3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75) if not bn else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        channels = 192  # conv3's output; without pool projections each module's input grows
        for name in ("inception3a", "inception3b"):
            channels = self._inception(name, channels)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            channels = self._inception(name, channels)
        # The paper pools 3x3/2 here; torchvision pools 2x2/2 (same 7x7 output at 224).
        self.maxpool4 = (
            nn.MaxPool2d(2, stride=2, ceil_mode=True) if bn else nn.MaxPool2d(3, stride=2, ceil_mode=True)
        )
        for name in ("inception5a", "inception5b"):
            channels = self._inception(name, channels)
        aux_in = {aux: self.get_submodule(module).out_channels for aux, module in AUX_ATTACH.items()}
        self.aux1 = InceptionAux(aux_in["aux1"], config.num_classes, batch_norm=bn, dropout=config.dropout_aux)
        self.aux2 = InceptionAux(aux_in["aux2"], config.num_classes, batch_norm=bn, dropout=config.dropout_aux)
        # AlexNet's and VGG's way, for the design lab: no pooling, the whole last map flattened into the
        # classifier, whose size is then fixed by the input size.
        gap = config.classifier == "gap"
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1)) if gap else nn.Identity()
        dropout = config.dropout if config.dropout is not None else (0.2 if bn else 0.4)
        self.dropout = nn.Dropout(p=dropout)
        features = channels if gap else channels * self.trunk_side(config.fc_input_size) ** 2
        self.fc = nn.Linear(features, config.num_classes)
        self.reset_parameters(generator)

    def _stem(self, conv: Callable[..., ConvBlock]) -> nn.Module:
        """The first block, 3 -> 64 channels at half the input's side.

        ``"3x3"`` replaces the 7x7/2 convolution by three 3x3 ones (32, 32, 64 channels; the first
        with stride 2, as Inception v3 does). ``"vgg"`` is VGG's first block, two 3x3/1 convolutions
        of 64 at full resolution and a 2x2/2 max-pool (ceil mode, so that odd sides halve as the
        paper's stride-2 convolution does); the paper's stem then goes on from its max-pool, so
        every later shape is the paper's.
        """
        stem = self.config.stem
        if stem == "paper":
            return conv(3, 64, 7, stride=2, padding=3)
        if stem == "3x3":
            return nn.Sequential(conv(3, 32, 3, stride=2, padding=1), conv(32, 32, 3, padding=1), conv(32, 64, 3, padding=1))
        return nn.Sequential(conv(3, 64, 3, padding=1), conv(64, 64, 3, padding=1), nn.MaxPool2d(2, stride=2, ceil_mode=True))

    def _inception(self, name: str, in_channels: int) -> int:
        """Build module ``name`` on ``in_channels`` channels; return its output channels."""
        c = self.config
        module = Inception(
            in_channels, *INCEPTION_SPECS[name][1:], batch_norm=c.batch_norm, branch5x5_kernel=c.branch5x5_kernel,
            reductions=c.reductions, pool_projection=c.pool_proj,
        )
        setattr(self, name, module)
        return module.out_channels

    def trunk_side(self, input_size: int) -> int:
        """The side of inception5b's map for a square input of ``input_size`` pixels (7 at 224)."""
        side = input_size
        for block in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "maxpool3", "maxpool4"):
            for m in self.get_submodule(block).modules():
                if isinstance(m, nn.Conv2d):
                    side = conv_output_size(side, m.kernel_size[0], m.stride[0], m.padding[0], m.dilation[0])
                elif isinstance(m, nn.MaxPool2d):
                    k, st, pad = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
                    side = pool_output_size(side, k, st, pad, 1, m.ceil_mode)
        return side

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise every convolution and linear layer with the configured scheme.

        ``generator`` (else the global RNG) draws every weight, so a seeded generator gives
        the same net whatever other threads do with the global RNG.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if self.config.init == "trunc_normal":
                    # torchvision's bounds a=-2, b=2 are absolute, i.e. 200 std: effectively untruncated.
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2, generator=generator)
                elif self.config.init == "xavier":
                    nn.init.xavier_uniform_(m.weight, generator=generator)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()  # weight 1, bias 0, running mean 0 / var 1

    def inception_modules(self) -> dict[str, Inception]:
        """The nine Inception modules, in depth order."""
        return {name: getattr(self, name) for name in INCEPTION_MODULES}

    def _transform_input(self, x: Tensor) -> Tensor:
        # torchvision's ImageNet weights were trained on inputs scaled to [-1, 1]; this maps
        # ImageNet-normalized input to that range, exactly as torchvision does.
        if not self.config.transform_input:
            return x
        x_ch0 = x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x_ch1 = x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x_ch2 = x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat((x_ch0, x_ch1, x_ch2), 1)

    def forward(self, x: Tensor, taps: dict[str, Tensor] | None = None) -> HeadLogits:
        """The three heads' logits. ``taps``, when given, receives the output of every point of
        :data:`gnet.net.layers.STEM_POINTS` and :data:`gnet.net.layers.INCEPTION_MODULES`, by name.

        ``taps`` is how :func:`gnet.inspect.probe.analyze` reads a shared model without hooks. On one thread
        of this project's CPU at 64 px (a bare forward: 16 to 21 ms), registering, calling and
        removing 14 forward hooks cost 0.38 and 0.65 ms in two paired measurements, the dict's
        stores 0.003 ms (``bench/bench_speed.py --rows taps`` gives the ratios, 1.02x to 1.04x, within
        its noise). The outputs are not detached: under autograd they keep the graph.
        Other points: :func:`gnet.inspect.probe.capture`.
        """
        t = _NO_TAPS if taps is None else taps
        # The names are gnet.net.layers' STEM_POINTS and INCEPTION_MODULES, in that order
        # (tests/gnet/net/test_model.py checks them against gnet.inspect.probe.capture_points).
        # Shapes for a 224x224 input.
        x = self._transform_input(x)  # N x 3 x 224 x 224
        x = t["conv1"] = self.conv1(x)  # N x 64 x 112 x 112
        x = t["maxpool1"] = self.maxpool1(x)  # N x 64 x 56 x 56
        x = self.lrn1(x)
        x = t["conv2"] = self.conv2(x)  # N x 64 x 56 x 56
        x = t["conv3"] = self.conv3(x)  # N x 192 x 56 x 56
        x = self.lrn2(x)
        x = t["maxpool2"] = self.maxpool2(x)  # N x 192 x 28 x 28
        x = t["inception3a"] = self.inception3a(x)  # N x 256 x 28 x 28
        x = t["inception3b"] = self.inception3b(x)  # N x 480 x 28 x 28
        x = self.maxpool3(x)  # N x 480 x 14 x 14
        x = t["inception4a"] = self.inception4a(x)  # N x 512 x 14 x 14
        aux1 = self.aux1(x)  # N x num_classes
        x = t["inception4b"] = self.inception4b(x)  # N x 512 x 14 x 14
        x = t["inception4c"] = self.inception4c(x)  # N x 512 x 14 x 14
        x = t["inception4d"] = self.inception4d(x)  # N x 528 x 14 x 14
        aux2 = self.aux2(x)  # N x num_classes
        x = t["inception4e"] = self.inception4e(x)  # N x 832 x 14 x 14
        x = self.maxpool4(x)  # N x 832 x 7 x 7
        x = t["inception5a"] = self.inception5a(x)  # N x 832 x 7 x 7
        x = t["inception5b"] = self.inception5b(x)  # N x 1024 x 7 x 7
        x = self.avgpool(x)  # N x 1024 x 1 x 1
        x = torch.flatten(x, 1)  # N x 1024
        x = self.dropout(x)
        x = self.fc(x)  # N x num_classes
        return HeadLogits(x, aux1, aux2)


class _NoTaps:
    """The ``taps`` of a forward that asked for none: it keeps nothing, so every intermediate output is freed as
    soon as the next layer has read it (a dict would hold them all until the forward returns). Not a dict:
    one instance serves every thread, so it has no method that could store anything."""

    __slots__ = ()

    def __setitem__(self, key: str, value: Tensor) -> None:
        pass


_NO_TAPS = _NoTaps()


def googlenet(
    *,
    num_classes: int = 1000,
    batch_norm: bool = True,
    branch5x5_kernel: int = 3,
    init: InitScheme = "trunc_normal",
    transform_input: bool = False,
    dropout: float | None = None,
    dropout_aux: float = 0.7,
    stem: Stem = "paper",
    reductions: bool = True,
    pool_proj: bool = True,
    classifier: Classifier = "gap",
    fc_input_size: int | None = None,
    seed: int | None = None,
) -> GoogLeNet:
    """Build a GoogLeNet variant, randomly initialised (seeded when ``seed`` is given).

    ``batch_norm=True, branch5x5_kernel=3`` is torchvision's network;
    ``batch_norm=False, branch5x5_kernel=5, init="xavier"`` is closest to the paper's.
    ``stem``, ``reductions``, ``pool_proj`` and ``classifier`` are the design lab's choices
    (:class:`GoogLeNetConfig`); ``classifier="fc"`` needs ``fc_input_size``, the only input side it takes.
    """
    config = GoogLeNetConfig(
        num_classes=num_classes,
        batch_norm=batch_norm,
        branch5x5_kernel=branch5x5_kernel,
        init=init,
        transform_input=transform_input,
        dropout=dropout,
        dropout_aux=dropout_aux,
        stem=stem,
        reductions=reductions,
        pool_proj=pool_proj,
        classifier=classifier,
        fc_input_size=fc_input_size,
    )
    if seed is None:
        return GoogLeNet(config)
    # Built on the meta device, so the layers' default initialisation draws nothing from the
    # global RNG (other threads may be using it); then every weight comes from our generator.
    with torch.device("meta"):
        net = GoogLeNet(config)
    net.to_empty(device="cpu")
    net.reset_parameters(torch.Generator().manual_seed(seed))
    return net
