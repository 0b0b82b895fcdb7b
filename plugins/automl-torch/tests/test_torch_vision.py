"""ResNet-18 (small inputs) and MobileNetV3-small in plain torch: torchvision's architectures, searchable width and
depth, trained and exported to ONNX like the other networks."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from automl_torch.config import settings_from
from automl_torch.vision import mobilenet_v3_small, resnet18
from torch import nn

from automl.plugin import TrialError


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_standard_networks_have_torchvisions_parameter_counts() -> None:
    # torchvision 0.2x: mobilenet_v3_small() (1000 classes) 2,542,856; ResNet-18 with a 3x3 stem and no max-pool
    # (the CIFAR variant, 10 classes) 11,173,962. The stem's stride and the missing max-pool change no weight.
    assert params(mobilenet_v3_small((3, 224, 224), 1000, dropout=0.2)) == 2_542_856
    assert params(resnet18((3, 32, 32), 10)) == 11_173_962


def test_width_and_depth_change_the_network() -> None:
    base = params(resnet18((1, 28, 28), 10, width_mult=0.25))
    assert params(resnet18((1, 28, 28), 10, width_mult=0.25, blocks=1)) < base < params(resnet18((1, 28, 28), 10, 0.5))
    small = mobilenet_v3_small((1, 28, 28), 10, width_mult=0.5, blocks=1)
    assert params(small) < params(mobilenet_v3_small((1, 28, 28), 10, width_mult=0.5)) < params(
        mobilenet_v3_small((1, 28, 28), 10))
    # Small inputs: a 28x28 image still has pixels at the last stage (stride-1 stem, no max-pool).
    assert small.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_an_image_network_needs_the_image_shape() -> None:
    with pytest.raises(ValueError, match=r"network resnet18 needs the image shape of a row"):
        settings_from({"network": "resnet18"}, {})


@pytest.mark.parametrize("network", ["resnet18", "mobilenet_v3_small"])
def test_a_trial_trains_exports_onnx_and_scores_the_file_as_the_network(make_trainer, tmp_path: Path,
                                                                       network: str) -> None:
    trainer = make_trainer({"network": network, "width_mult": 0.125, "blocks": 1, "lr": 0.01},
                           {"epochs": 1, "input_shape": [1, 8, 8]})
    for _ in trainer.run_steps(1):
        pass
    artifact = trainer.export(tmp_path / "export")
    assert artifact.name == "model.onnx" and "Conv" in {n.op_type for n in onnx.load(str(artifact)).graph.node}
    in_memory, on_file = trainer.evaluate("valid"), trainer.evaluate_artifact(artifact, "valid")
    assert on_file["accuracy"] == pytest.approx(in_memory["accuracy"], abs=0.01)
    assert 0 < trainer.rung_estimates(["size_bytes"])["size_bytes"] < artifact.stat().st_size


def test_a_searched_network_choice_accepts_the_image_networks() -> None:
    from automl_torch.config import check

    from automl.plugin import Choice, SearchSpace

    check("classification", {"input_shape": [1, 8, 8]},
          SearchSpace([Choice("network", values=("cnn", "resnet18", "mobilenet_v3_small"))]))
    with pytest.raises((ValueError, TrialError), match="resnet"):
        check("classification", {"input_shape": [1, 8, 8]}, SearchSpace([Choice("network", values=("resnet",))]))
