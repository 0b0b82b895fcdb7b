"""Image networks of torchvision's families, built with random weights in plain torch: ResNet-18 adapted to
small inputs and MobileNetV3-small.

Written here rather than taken from torchvision because torchvision cannot be installed beside the CPU
build of torch 2.13 this project pins (its PyPI wheels fail to import against it; the one that works needs
a CUDA torch of 5.5 GB). The layers follow torchvision's definitions (``torchvision.models.resnet`` and
``mobilenetv3``: BasicBlock, inverted residual with squeeze-and-excitation, hardswish, the same channel
table and ``_make_divisible``); nothing downloads weights, every network starts from random ones.

Adapted to small images (28x28, 32x32) as CIFAR-style ResNets are: a 3x3 stride-1 stem and no max-pool,
so a 28x28 image still has 4x4 pixels at the last stage rather than 1x1. ``width_mult`` scales every
layer's channels (torchvision's ``width_mult`` for MobileNet; the base width 64 for ResNet) and
``blocks`` their depth (blocks per stage), both searchable.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["VISION_NETWORKS", "mobilenet_v3_small", "resnet18", "vision_network"]


def _divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of ``divisor``, never below 90% of ``value``."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convolutions with a shortcut (a 1x1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def resnet18(shape: Sequence[int], n_outputs: int, width_mult: float = 1.0, blocks: int | None = None) -> nn.Module:
    """ResNet-18 for small images: 3x3 stem, no max-pool, 4 stages of ``blocks`` (default 2) BasicBlocks at
    ``64 * width_mult`` channels doubled per stage (strides 1, 2, 2, 2), global average pool, linear head."""
    width = max(4, round(64 * width_mult))
    layers: list[nn.Module] = [nn.Conv2d(shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    c_in = width
    for stage in range(4):
        c_out = width * 2**stage
        for i in range(blocks or 2):
            layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_outputs)]
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: average pool, 1x1 down to a quarter (divisible by 8), ReLU, 1x1 up, hardsigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = _divisible(channels // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.down = nn.Conv2d(channels, squeezed, 1)
        self.up = nn.Conv2d(squeezed, channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.up(self.relu(self.down(self.pool(x)))))


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, groups: int, act: type[nn.Module] | None) -> list[nn.Module]:
    out: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                            nn.BatchNorm2d(c_out)]
    return out + ([act()] if act is not None else [])


class InvertedResidual(nn.Module):
    """MobileNetV3's block: 1x1 expansion, depthwise kxk, squeeze-and-excitation, 1x1 projection, shortcut."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, act: type[nn.Module],
                 stride: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers += _conv_bn(c_in, expanded, 1, 1, 1, act)
        layers += _conv_bn(expanded, expanded, kernel, stride, expanded, act)
        if se:
            layers.append(SqueezeExcite(expanded))
        layers += _conv_bn(expanded, c_out, 1, 1, 1, None)
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


#: torchvision's MobileNetV3-small table: (kernel, expanded, out, squeeze-excite, hardswish, stride), grouped by
#: stage (blocks of one output width); ``blocks`` keeps at most that many blocks of each stage.
_MOBILENET_V3_SMALL: tuple[tuple[tuple[int, int, int, bool, bool, int], ...], ...] = (
    ((3, 16, 16, True, False, 2),),
    ((3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1)),
    ((5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1)),
    ((5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1)),
    ((5, 288, 96, True, True, 2), (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1)),
)


def mobilenet_v3_small(shape: Sequence[int], n_outputs: int, width_mult: float = 1.0, blocks: int | None = None,
                       dropout: float = 0.2) -> nn.Module:
    """MobileNetV3-small for small images: torchvision's layers with a stride-1 stem (so 28x28 ends at 2x2),
    channels scaled by ``width_mult``, at most ``blocks`` blocks per stage (default: all), then its head
    (1x1 conv to 576 x width_mult, pool, 1024 hardswish, dropout, linear; torchvision's dropout is 0.2, here
    the trial's ``dropout``)."""
    c_in = _divisible(16 * width_mult)
    layers: list[nn.Module] = _conv_bn(shape[0], c_in, 3, 1, 1, nn.Hardswish)
    for stage in _MOBILENET_V3_SMALL:
        for kernel, expanded, out, se, hardswish, stride in stage[: blocks or len(stage)]:
            c_out = _divisible(out * width_mult)
            layers.append(InvertedResidual(c_in, kernel, _divisible(expanded * width_mult), c_out, se,
                                           nn.Hardswish if hardswish else nn.ReLU, stride))
            c_in = c_out
    last = _divisible(576 * width_mult)
    layers += _conv_bn(c_in, last, 1, 1, 1, nn.Hardswish)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, 1024), nn.Hardswish(),
               nn.Dropout(dropout), nn.Linear(1024, n_outputs)]
    return nn.Sequential(*layers)


#: The image networks by the name ``trainer.params.network`` (or a searched choice) gives.
VISION_NETWORKS = ("resnet18", "mobilenet_v3_small")


def vision_network(name: str, shape: Sequence[int], n_outputs: int, width_mult: float, blocks: int | None,
                   dropout: float) -> nn.Module:
    """The image network ``name`` with random weights (torch's default initialisation, as torchvision's)."""
    if name == "resnet18":
        return resnet18(shape, n_outputs, width_mult, blocks)
    if name == "mobilenet_v3_small":
        return mobilenet_v3_small(shape, n_outputs, width_mult, blocks, dropout)
    raise ValueError(f"unknown image network {name!r}; built in: {', '.join(VISION_NETWORKS)}")
