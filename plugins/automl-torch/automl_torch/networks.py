"""Networks built from a trial's settings, wrapped so that the exported model takes raw rows.

Every model is ``Model(prep, body, head)``: ``prep`` fills missing values with the training
means, standardises each feature and reshapes a row to the image shape when there is one;
``body`` is the MLP, the CNN or the user's module; ``head`` undoes the target scaling for
regression. The statistics are buffers, so the ONNX and TorchScript exports carry them and
a deployed model needs no preprocessing code beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from automl_torch.config import Settings, import_factory
from automl_torch.vision import VISION_NETWORKS, vision_network

__all__ = ["Model", "Prep", "build_model"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


class Prep(nn.Module):
    """Impute missing values with the training mean, standardise, reshape to ``shape``."""

    # Registered buffers: declared so that attribute access reads as a tensor, not ``Tensor | Module``.
    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, mean: np.ndarray, std: np.ndarray, shape: Sequence[int] | None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        # A constant feature (digits' border pixels) has std 0: leave it centred, not divided by 0.
        safe = np.where(np.asarray(std) > 1e-8, std, 1.0)
        self.register_buffer("scale", torch.as_tensor(1.0 / safe, dtype=torch.float32))
        self.shape = tuple(shape) if shape else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(torch.isnan(x), self.mean, x)
        x = (x - self.mean) * self.scale
        if self.shape is not None:
            x = x.reshape(-1, *self.shape)
        return x


class Unscale(nn.Module):
    """Map a standardised regression output back to the target's units."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std) if std > 1e-12 else 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(-1) * self.std + self.mean


class Model(nn.Module):
    """``head(body(prep(x)))``: raw float rows in, logits (classification) or values (regression) out."""

    def __init__(self, prep: Prep, body: nn.Module, head: nn.Module | None = None) -> None:
        super().__init__()
        self.prep = prep
        self.body = body
        self.head = head if head is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.prep(x)))


def mlp(in_features: int, out_features: int, s: Settings) -> nn.Sequential:
    """``layers`` x [Linear, BatchNorm?, activation, Dropout?] then a Linear output."""
    blocks: list[nn.Module] = []
    width = in_features
    for _ in range(s.layers):
        blocks.append(nn.Linear(width, s.units))
        if s.batch_norm:
            blocks.append(nn.BatchNorm1d(s.units))
        blocks.append(_ACTIVATIONS[s.activation]())
        if s.dropout > 0:
            blocks.append(nn.Dropout(s.dropout))
        width = s.units
    blocks.append(nn.Linear(width, out_features))
    return nn.Sequential(*blocks)


def cnn(shape: Sequence[int], out_features: int, s: Settings) -> nn.Sequential:
    """``conv_layers`` x [Conv, BatchNorm?, activation, MaxPool while the image is >= 2 wide], then a dense head.

    Padding ``kernel_size // 2`` keeps the image size for odd kernels; pooling stops at
    1x1, so a deep stack on a small image still builds. Sizes are taken from a dry run on
    a zero image rather than computed by hand, so even kernels are handled too.
    """
    channels, height, width = shape
    blocks: list[nn.Module] = []
    probe = torch.zeros(1, channels, height, width)
    c_in = channels
    for i in range(s.conv_layers):
        c_out = s.channels * 2**i
        block: list[nn.Module] = [nn.Conv2d(c_in, c_out, s.kernel_size, padding=s.kernel_size // 2)]
        if s.batch_norm:
            block.append(nn.BatchNorm2d(c_out))
        block.append(_ACTIVATIONS[s.activation]())
        with torch.no_grad():
            probe = block[0](probe)
        if min(probe.shape[-2:]) >= 2:
            block.append(nn.MaxPool2d(2))
            with torch.no_grad():
                probe = block[-1](probe)
        blocks += block
        c_in = c_out
    blocks += [nn.Flatten(), nn.Linear(probe.numel(), s.units), _ACTIVATIONS[s.activation]()]
    if s.dropout > 0:
        blocks.append(nn.Dropout(s.dropout))
    blocks.append(nn.Linear(s.units, out_features))
    return nn.Sequential(*blocks)


def build_model(
    s: Settings,
    *,
    n_features: int,
    n_outputs: int,
    mean: np.ndarray,
    std: np.ndarray,
    target: tuple[float, float] | None = None,
) -> Model:
    """The network of a trial, with its input preparation and (regression) output scaling.

    Args:
        s: The trial's settings.
        n_features: Columns of a row.
        n_outputs: Classes (classification) or 1 (regression).
        mean: Per-feature training means (for imputation and standardisation).
        std: Per-feature training standard deviations.
        target: ``(mean, std)`` of a regression target, None for classification.

    Raises:
        ValueError: When the settings cannot build a network for this data (an image shape
            that does not match the row length, a custom factory that fails or returns
            something other than an ``nn.Module``).
    """
    shape = s.input_shape
    if shape is not None and int(np.prod(shape)) != n_features:
        raise ValueError(
            f"input_shape {list(shape)} holds {int(np.prod(shape))} values but a row of this data has "
            f"{n_features} features: set trainer.params.input_shape to the image shape of the data "
            f"(channels, height, width), or use network: mlp for tabular data"
        )
    if s.network == "mlp":
        body: nn.Module = mlp(n_features, n_outputs, s)
        shape = None  # an MLP takes the flat row even when an image shape is declared
    elif s.network == "cnn":
        assert shape is not None  # Settings refuses a cnn without a shape once the data is known
        body = cnn(shape, n_outputs, s)
    elif s.network in VISION_NETWORKS:
        assert shape is not None  # likewise an image network
        body = vision_network(s.network, shape, n_outputs, s.width_mult, s.blocks, s.dropout)
    else:
        factory = import_factory(s.network)
        in_shape = tuple(shape) if shape else (n_features,)
        try:
            body = factory(in_shape, n_outputs, s.model_dump(exclude={"distributed"}))
        except Exception as exc:  # user code: name it in the reason
            raise ValueError(f"network {s.network!r} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(body, nn.Module):
            raise ValueError(f"network {s.network!r} returned a {type(body).__name__}, not a torch.nn.Module")
    head = Unscale(*target) if target is not None else None
    return Model(Prep(mean, std, shape), body, head)
