"""Network factories a spec can name by import path (``network: torch_custom_nets:tiny``) in the tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn


def tiny(input_shape: Sequence[int], num_outputs: int, config: Mapping[str, Any]) -> nn.Module:
    """One hidden layer whose width comes from the trial's ``units`` setting."""
    return nn.Sequential(nn.Flatten(), nn.Linear(int(input_shape[-1]), int(config["units"])), nn.ReLU(),
                         nn.Linear(int(config["units"]), num_outputs))


def not_a_module(input_shape: Sequence[int], num_outputs: int, config: Mapping[str, Any]) -> str:
    return "a string"


def broken(input_shape: Sequence[int], num_outputs: int, config: Mapping[str, Any]) -> nn.Module:
    raise RuntimeError("this factory needs 3 channels")
