"""Networks built from settings: shapes, layer choices, input preparation, user factories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from automl_torch.config import settings_from
from automl_torch.networks import build_model
from torch import nn

MEAN, STD = np.arange(64, dtype=np.float32), np.full(64, 2.0, dtype=np.float32)


def build(config: dict, params: dict | None = None, n_features: int = 64, n_outputs: int = 10) -> nn.Module:
    s = settings_from(config, params or {})
    return build_model(s, n_features=n_features, n_outputs=n_outputs, mean=MEAN[:n_features], std=STD[:n_features])


def count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_mlp_has_the_layers_units_and_options_asked_for() -> None:
    model = build({"layers": 3, "units": 20, "activation": "gelu", "dropout": 0.2, "batch_norm": True})
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 20), (20, 20), (20, 20), (20, 10)]
    assert count(model, nn.GELU) == 3 and count(model, nn.Dropout) == 3 and count(model, nn.BatchNorm1d) == 3
    assert model.eval()(torch.zeros(5, 64)).shape == (5, 10)


def test_mlp_without_hidden_layers_is_linear() -> None:
    model = build({"layers": 0})
    assert [type(m) for m in model.body] == [nn.Linear]


@pytest.mark.parametrize("conv_layers,kernel_size", [(1, 3), (2, 5), (5, 3), (2, 4)])
def test_cnn_builds_on_an_8x8_image_at_any_depth_and_kernel(conv_layers: int, kernel_size: int) -> None:
    model = build({"network": "cnn", "conv_layers": conv_layers, "kernel_size": kernel_size, "channels": 4},
                  {"input_shape": [1, 8, 8]})
    assert count(model, nn.Conv2d) == conv_layers
    # Pooling stops once the image is 1x1: 8 -> 4 -> 2 -> 1 at most.
    assert count(model, nn.MaxPool2d) == min(conv_layers, 3)
    assert model.eval()(torch.randn(3, 64)).shape == (3, 10)


def test_cnn_on_rows_that_are_not_the_declared_image_is_refused() -> None:
    with pytest.raises(ValueError, match="holds 64 values but a row of this data has 13 features"):
        build({"network": "cnn"}, {"input_shape": [1, 8, 8]}, n_features=13)


def test_prep_imputes_missing_values_with_the_training_mean_and_standardises() -> None:
    model = build({}).eval()
    row = torch.as_tensor(MEAN).clone().reshape(1, -1)
    holes = row.clone()
    holes[0, [3, 40]] = float("nan")
    assert torch.equal(model.prep(holes), model.prep(row))
    assert torch.allclose(model.prep(row + 2.0), torch.ones(1, 64))


def test_user_factory_by_import_path() -> None:
    model = build({"network": "torch_custom_nets:tiny", "units": 9})
    assert isinstance(model.body, nn.Sequential) and model.body[1].out_features == 9
    assert model.eval()(torch.zeros(2, 64)).shape == (2, 10)


@pytest.mark.parametrize(("path", "message"), [
    ("torch_custom_nets:not_a_module", "returned a str, not a torch.nn.Module"),
    ("torch_custom_nets:broken", "raised RuntimeError: this factory needs 3 channels"),
    ("torch_custom_nets:missing", "has no attribute 'missing'"),
])
def test_user_factory_failures_are_named(path: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build({"network": path})
    assert message in str(info.value)
