"""The torch trainer and the package pass the conformance kits."""

from __future__ import annotations

from automl.testing import PackageConformance, TrainerConformance


class TestMlpClassifier(TrainerConformance):
    trainer = "torch"
    config = {"units": 8, "lr": 0.01, "schedule": "cosine", "optimizer": "adamw"}
    other_config = {"units": 16, "layers": 2}
    params = {"epochs": 3}
    unloadable_formats = ("state_dict",)  # tensors only: loaded into the network built from the config


class TestMlpRegressor(TrainerConformance):
    trainer = "torch"
    task = "regression"
    config = {"units": 8, "lr": 0.01, "dropout": 0.2}
    params = {"epochs": 3}
    unloadable_formats = ("state_dict",)


class TestPackage(PackageConformance):
    package = "automl-torch"  # loads without torch, ONNX, ONNX Runtime and scikit-learn
