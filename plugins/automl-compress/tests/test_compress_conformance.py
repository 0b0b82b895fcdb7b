"""Every compressor and the package pass the conformance kits."""

from __future__ import annotations

from automl.testing import CompressorConformance, PackageConformance

#: A small network that reaches ~0.9 accuracy on the kit's table in 6 epochs.
NETWORK = {"units": 32, "lr": 0.03}


class TestPrune(CompressorConformance):
    compressor = "prune"
    params = {"amount": 0.5, "finetune_epochs": 1}
    bad_params = ({"amount": 1.0}, {"method": "random"})
    trainer_config = NETWORK
    trainer_params = {"epochs": 6}
    shrinks = True


class TestQuantize(CompressorConformance):
    compressor = "quantize"
    bad_params = ({"mode": "int3"},)
    trainer_config = NETWORK
    trainer_params = {"epochs": 6}
    shrinks = True


class TestDistill(CompressorConformance):
    compressor = "distill"
    params = {"width": 0.5, "epochs": 40, "lr": 0.03}
    bad_params = ({"width": 0.0},)
    trainer_config = NETWORK
    trainer_params = {"epochs": 6}
    shrinks = True


class TestLowRank(CompressorConformance):
    compressor = "lowrank"
    params = {"ratio": 0.25, "finetune_epochs": 1}
    bad_params = ({"ratio": 2.0},)
    trainer_config = {"units": 64, "lr": 0.03}
    trainer_params = {"epochs": 6}
    shrinks = True


class TestOnnx(CompressorConformance):
    compressor = "onnx"
    params = {"keep": "always", "trees": 0.5}
    bad_params = ({"trees": 0.0}, {"keep": "sometimes"})
    trainer_config = {"model": "forest", "n_estimators": 10, "max_depth": 4}


class TestPackage(PackageConformance):
    package = "automl-compress"  # loads without torch, torchao, torch-pruning, ONNX and skl2onnx
