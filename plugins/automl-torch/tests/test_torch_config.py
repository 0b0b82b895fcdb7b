"""Spec checks of the torch trainer: what is refused before any trial, and with which message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from automl_torch.config import check, settings_from, trainer_metrics

import automl
from automl import load_spec
from automl.plugin import Choice, DataError, Float, Int, SearchSpace, SpecError, build_plan, get_plugin_manager

REPO = Path(__file__).resolve().parents[3]


def lr_space() -> SearchSpace:
    return SearchSpace([Float("lr", low=1e-4, high=1e-1, log=True)])


@pytest.mark.parametrize("name", ["torch-mlp-digits.yaml", "torch-cnn-digits-asha.yaml", "torch-cnn-mnist-asha.yaml"])
def test_shipped_specs_resolve_to_the_torch_trainer(name: str) -> None:
    plan = build_plan(load_spec(REPO / "searchspaces" / name), get_plugin_manager())
    assert plan.trainer.name == "torch"
    assert plan.metrics["accuracy"] == "max" and plan.metrics["latency_ms"] == "min"


def test_metrics_follow_the_task() -> None:
    assert set(trainer_metrics("classification", {})) == {"accuracy", "balanced_accuracy", "f1_macro", "loss"}
    assert set(trainer_metrics("regression", {})) == {"r2", "rmse", "mae", "loss"}


def test_settings_take_config_over_params_over_defaults() -> None:
    s = settings_from({"lr": 0.5}, {"lr": 0.1, "units": 7})
    assert (s.lr, s.units, s.layers) == (0.5, 7, settings_from({}, {}).layers)


@pytest.mark.parametrize(
    ("params", "space", "message"),
    [
        ({"network": "cnn", "input_shape": [8, 8, 1, 1]}, lr_space(), "input_shape must list 3 positive sizes"),
        ({}, SearchSpace([Float("learning_rate", low=0.1, high=1.0)]), "did you mean 'lr'"),
        ({}, SearchSpace([Int("epochs", low=1, high=9)]), "'epochs' cannot be searched"),
        ({}, SearchSpace([Choice("optimizer", values=("sgd", "rmsprop"))]), "can take 'rmsprop'"),
        ({}, SearchSpace([Float("layers", low=1, high=3)]), "use `type: int`"),
        ({}, SearchSpace([Float("dropout", low=0.0, high=1.5)]), "can take 1.5"),
        ({"network": "resnet"}, lr_space(), "neither a built-in"),
        ({"network": "no_such_package.nets:build"}, lr_space(), "cannot import module 'no_such_package.nets'"),
        ({"network": "json:dumsp"}, lr_space(), "has no attribute 'dumsp'; did you mean 'dump"),
        ({"network": "json:__doc__"}, lr_space(), "not a function or class"),
        ({"distributed": {"workers": 0}}, lr_space(), "distributed.workers"),
        ({"optimiser": "sgd"}, lr_space(), "did you mean 'optimizer'"),
        ({"hidden_layers": 3}, lr_space(), "did you mean 'layers'"),
    ],
)
def test_check_refuses_with_the_reason(params: dict, space: SearchSpace, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check("classification", params, space)
    assert message in str(info.value)


def test_classification_settings_are_refused_for_regression() -> None:
    with pytest.raises(ValueError, match="classification only"):
        check("regression", {"label_smoothing": 0.1}, lr_space())


def test_an_image_network_without_input_shape_is_left_for_the_data_to_decide() -> None:
    # Before the data is loaded the shape may still come from it (image folders, mnist5k): check_data decides.
    space = SearchSpace([Choice("network", values=("mlp", "cnn"))])
    check("classification", {}, space)
    check("classification", {"network": "resnet18", "augment_flip": True}, lr_space())
    with pytest.raises(ValueError, match="network cnn needs the image shape of a row, and the data gives none"):
        settings_from({"network": "cnn"}, {})  # the data known, and without an image shape


def test_gpu_requested_without_one_is_refused_before_the_run() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="needs a GPU"):
        check("classification", {"device": "cuda"}, lr_space())
    with pytest.raises(ValueError, match="gpus_per_worker"):
        check("classification", {"distributed": {"workers": 2, "gpus_per_worker": 1}}, lr_space())


def test_spec_error_points_at_the_trainer(write_spec: Callable[..., Path]) -> None:
    path = write_spec("""
        task: classification
        data: {dataset: digits}
        trainer: {name: torch, params: {network: cnn, optimizer: rmsprop}}
        space: {lr: {type: float, low: 0.001, high: 0.1}}
        objectives: [{metric: accuracy, mode: max}]
    """)
    with pytest.raises(SpecError) as info:
        build_plan(load_spec(path), get_plugin_manager())
    assert info.value.line == 3 and "rmsprop" in str(info.value)


def test_a_cnn_on_digits_takes_its_image_shape_and_one_that_disagrees_is_refused_at_validate(
        write_spec: Callable[..., Path]) -> None:
    # digits' 64 pixel columns are its 8x8 gray images, row by row: the data set gives its image shape.
    spec = """
        task: classification
        data: {dataset: digits}
        trainer: {name: torch, params: {network: cnn%s}}
        space: {lr: {type: float, low: 0.001, high: 0.1}}
    """
    assert automl.validate(write_spec(spec % "")).trainer.name == "torch"  # an agreeing input_shape: shipped specs
    with pytest.raises(DataError, match=r"input_shape \[1, 4, 16\] does not fit the data: its rows are images of "
                                        r"input_shape \[1, 8, 8\]"):
        automl.validate(write_spec(spec % ", input_shape: [1, 4, 16]"))


def test_loading_the_plugin_does_not_import_torch() -> None:
    # Every automl command loads every plugin; torch costs seconds to import.
    code = "import sys, automl_torch.plugin; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.usefixtures("ray_session")
def test_concurrency_counts_the_ddp_workers_cpus(write_spec: Callable[[str], Path]) -> None:
    from automl.plugin import concurrency

    text = """
    task: classification
    data: {dataset: digits}
    trainer: {name: torch, params: {network: mlp, epochs: 1, distributed: {workers: 2, cpus_per_worker: %s}}}
    space: {lr: {type: float, low: 0.001, high: 0.1, log: true}}
    objectives: [{metric: accuracy, mode: max}]
    resources: {cpu: 0.1}
    """
    plan = build_plan(load_spec(write_spec(text % "0.4")), get_plugin_manager())
    assert concurrency(plan) == 2  # 0.1 + 2 x 0.4 = 0.9 CPU per trial on 2 CPUs
    plan = build_plan(load_spec(write_spec(text % "0.9")), get_plugin_manager())
    assert concurrency(plan) == 1  # 1.9 CPU per trial: one at a time, not two that starve each other
    plan = build_plan(load_spec(write_spec(text % "1.5")), get_plugin_manager())
    with pytest.raises(SpecError, match=r"3\.1 CPU\(s\) \(0\.1 for the trial, 3 for its trainer's workers\)"):
        concurrency(plan)
