"""Small torch modules the compressors build (imported when a trial compresses, not with the plugin)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CastTo"]


class CastTo(nn.Module):
    """Runs ``net`` in ``dtype``: raw float32 rows in, float32 outputs out, so the exported program
    takes and returns what every other export of the torch trainer does."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net = net.to(dtype)
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.dtype)).float()
