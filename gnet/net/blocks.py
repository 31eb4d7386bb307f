"""GoogLeNet's building blocks: the convolution block, the Inception module and the auxiliary head.

Written here rather than taken from torchvision, which has batch norm in every block and a 3x3 kernel
in the "5x5" branch (each class says why); the attribute names match torchvision's, so its state dicts
load unchanged. :class:`gnet.net.model.GoogLeNet` assembles them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import BRANCHES

__all__ = ["ConvBlock", "Inception", "InceptionAux"]


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
    gives their public names. ``reductions=False`` drops the 1x1 convolutions before the 3x3
    and "5x5" ones and ``pool_proj=False`` the projection after the pool (both: the paper's
    Figure 2a); an ``Identity`` takes each dropped layer's place, so the kept layers' state-dict
    keys do not move (``branch2.1`` stays the 3x3 convolution).
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
        reductions: bool = True,
        pool_projection: bool = True,
    ) -> None:
        super().__init__()
        bn = batch_norm

        def reduce(channels: int) -> nn.Module:
            return ConvBlock(in_channels, channels, kernel_size=1, batch_norm=bn) if reductions else nn.Identity()

        red3, red5 = (ch3x3red, ch5x5red) if reductions else (in_channels, in_channels)
        self.branch1 = ConvBlock(in_channels, ch1x1, kernel_size=1, batch_norm=bn)
        self.branch2 = nn.Sequential(reduce(ch3x3red), ConvBlock(red3, ch3x3, kernel_size=3, padding=1, batch_norm=bn))
        k = branch5x5_kernel
        self.branch3 = nn.Sequential(
            reduce(ch5x5red), ConvBlock(red5, ch5x5, kernel_size=k, padding=k // 2, batch_norm=bn)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvBlock(in_channels, pool_proj, kernel_size=1, batch_norm=bn) if pool_projection else nn.Identity(),
        )
        self.in_channels = in_channels

    @property
    def branches(self) -> dict[str, nn.Module]:
        """The four branches under their public names, in concatenation order."""
        return {public: getattr(self, attr) for public, attr in BRANCHES.items()}

    @property
    def branch_channels(self) -> dict[str, int]:
        """Output channels of each branch, in concatenation order (they sum to the module's)."""
        proj = self.branch4[1]
        last = (self.branch1.conv, self.branch2[1].conv, self.branch3[1].conv)
        widths = [conv.out_channels for conv in last]
        widths.append(proj.conv.out_channels if isinstance(proj, ConvBlock) else self.in_channels)
        return dict(zip(BRANCHES, widths))

    @property
    def out_channels(self) -> int:
        return sum(self.branch_channels.values())

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
