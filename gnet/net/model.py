"""GoogLeNet (Inception v1) with the variants a student wants to compare.

One builder, :func:`googlenet`, makes either torchvision's layout (batch norm after
every convolution; its state dict loads torchvision's ``GoogLeNet_Weights`` keys
unchanged) or the paper's net (Szegedy et al. 2014, arXiv:1409.4842: no batch norm,
local response normalization after the stem, 40% dropout).

Unlike torchvision, the forward pass always returns all three heads, in eval mode
too, so the auxiliary classifiers can be compared with the main one from a single
pass. File order follows torchvision: outputs, network, blocks, builder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from ..errors import GNetError
from .layers import AUX_ATTACH, BRANCHES, HEADS, INCEPTION_MODULES, INCEPTION_SPECS

__all__ = [
    "AUX_ATTACH",
    "BRANCHES",
    "HEADS",
    "INCEPTION_MODULES",
    "INIT_SCHEMES",
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "ConvBlock",
    "GoogLeNet",
    "GoogLeNetConfig",
    "HeadLogits",
    "Inception",
    "InceptionAux",
    "batch_statistics_defined",
    "check_input_size",
    "googlenet",
]

InitScheme = Literal["trunc_normal", "xavier", "kaiming"]
INIT_SCHEMES: tuple[str, ...] = ("trunc_normal", "xavier", "kaiming")
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

        self.conv1 = conv(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        # The paper normalizes with LRN after the first pooling and after conv3; torchvision's
        # batch-norm layout drops both. Identity keeps the forward code identical.
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75) if not bn else nn.Identity()
        self.conv2 = conv(64, 64, 1)
        self.conv3 = conv(64, 192, 3, padding=1)
        self.lrn2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75) if not bn else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception3a", "inception3b"):
            setattr(self, name, self._inception(name))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            setattr(self, name, self._inception(name))
        # The paper pools 3x3/2 here; torchvision pools 2x2/2 (same 7x7 output at 224).
        self.maxpool4 = (
            nn.MaxPool2d(2, stride=2, ceil_mode=True) if bn else nn.MaxPool2d(3, stride=2, ceil_mode=True)
        )
        for name in ("inception5a", "inception5b"):
            setattr(self, name, self._inception(name))
        self.aux1 = InceptionAux(512, config.num_classes, batch_norm=bn, dropout=config.dropout_aux)
        self.aux2 = InceptionAux(528, config.num_classes, batch_norm=bn, dropout=config.dropout_aux)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        dropout = config.dropout if config.dropout is not None else (0.2 if bn else 0.4)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, config.num_classes)
        self.reset_parameters(generator)

    def _inception(self, name: str) -> Inception:
        return Inception(
            *INCEPTION_SPECS[name], batch_norm=self.config.batch_norm, branch5x5_kernel=self.config.branch5x5_kernel
        )

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


class ConvBlock(nn.Module):
    """Convolution, optional batch norm, ReLU.

    Written here rather than reusing torchvision's ``BasicConv2d`` because that block
    always has batch norm and no bias; the paper's variant needs the opposite. With
    ``batch_norm=True`` the attribute names (``conv``, ``bn``) and eps match torchvision.
    """

    reads_training = False  # its forward never reads self.training (gnet.guard watches only modules that do)

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool, **conv_kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=not batch_norm, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if batch_norm else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels.

    Written here because torchvision's ``Inception`` hard-codes a 3x3 kernel in the
    "5x5" branch (pytorch/vision#906); this one takes the kernel as a parameter.
    Attribute names (``branch1``..``branch4``) match torchvision; :data:`BRANCHES`
    gives their public names.
    """

    reads_training = False  # its forward never reads self.training (gnet.guard watches only modules that do)

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        batch_norm: bool = True,
        branch5x5_kernel: int = 3,
    ) -> None:
        super().__init__()
        bn = batch_norm
        self.branch1 = ConvBlock(in_channels, ch1x1, kernel_size=1, batch_norm=bn)
        self.branch2 = nn.Sequential(
            ConvBlock(in_channels, ch3x3red, kernel_size=1, batch_norm=bn),
            ConvBlock(ch3x3red, ch3x3, kernel_size=3, padding=1, batch_norm=bn),
        )
        k = branch5x5_kernel
        self.branch3 = nn.Sequential(
            ConvBlock(in_channels, ch5x5red, kernel_size=1, batch_norm=bn),
            ConvBlock(ch5x5red, ch5x5, kernel_size=k, padding=k // 2, batch_norm=bn),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvBlock(in_channels, pool_proj, kernel_size=1, batch_norm=bn),
        )

    @property
    def branches(self) -> dict[str, nn.Module]:
        """The four branches under their public names, in concatenation order."""
        return {public: getattr(self, attr) for public, attr in BRANCHES.items()}

    @property
    def branch_channels(self) -> dict[str, int]:
        """Output channels of each branch, in concatenation order (they sum to the module's)."""
        last_convs = (self.branch1.conv, self.branch2[1].conv, self.branch3[1].conv, self.branch4[1].conv)
        return {public: conv.out_channels for public, conv in zip(BRANCHES, last_convs)}

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches.values()], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: pool to 4x4, 1x1 conv (128), FC 1024, dropout, FC.

    The paper pools 5x5 with stride 3 (14x14 -> 4x4); like torchvision we pool
    adaptively to 4x4 so the head also works for inputs smaller than 224.
    """

    reads_training = False  # its forward never reads self.training (gnet.guard watches only modules that do)

    def __init__(self, in_channels: int, num_classes: int, *, batch_norm: bool = True, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = ConvBlock(in_channels, 128, kernel_size=1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(2048, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)  # N x C x 4 x 4
        x = self.conv(x)  # N x 128 x 4 x 4
        x = torch.flatten(x, 1)  # N x 2048
        x = self.relu(self.fc1(x))  # N x 1024
        x = self.dropout(x)
        return self.fc2(x)  # N x num_classes


def googlenet(
    *,
    num_classes: int = 1000,
    batch_norm: bool = True,
    branch5x5_kernel: int = 3,
    init: InitScheme = "trunc_normal",
    transform_input: bool = False,
    dropout: float | None = None,
    dropout_aux: float = 0.7,
    seed: int | None = None,
) -> GoogLeNet:
    """Build a GoogLeNet variant, randomly initialised (seeded when ``seed`` is given).

    ``batch_norm=True, branch5x5_kernel=3`` is torchvision's network;
    ``batch_norm=False, branch5x5_kernel=5, init="xavier"`` is closest to the paper's.
    """
    config = GoogLeNetConfig(
        num_classes=num_classes,
        batch_norm=batch_norm,
        branch5x5_kernel=branch5x5_kernel,
        init=init,
        transform_input=transform_input,
        dropout=dropout,
        dropout_aux=dropout_aux,
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
