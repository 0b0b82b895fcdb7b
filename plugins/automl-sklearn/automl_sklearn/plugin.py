"""Hook implementations of the automl-sklearn plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl.plugin import DatasetSpec, Mode, SearchSpace, Task, TrainerSpec, hookimpl
from automl_sklearn.cost import config_cost
from automl_sklearn.datasets import dataset_specs
from automl_sklearn.metrics import metrics_for
from automl_sklearn.spaces import default_space, missing_models
from automl_sklearn.trainer import SklearnTrainer


def trainer_metrics(task: Task, params: Mapping[str, Any]) -> Mapping[str, Mode]:
    """Every metric the trainer reports for ``task``; each may be an objective or a constraint."""
    return metrics_for(task)


def check(task: Task, params: Mapping[str, Any], space: SearchSpace) -> None:
    """The spec's plan-time checks (:mod:`automl_sklearn.check`), imported when a plan is made: they need
    scikit-learn, which loading the plugin (every ``automl`` command, every trial worker) does not import."""
    from automl_sklearn.check import check as check_spec

    check_spec(task, params, space)


def _description() -> str:
    """One line for ``automl plugins``, saying which models are missing their library and what to install."""
    text = "scikit-learn pipelines (preprocessing + model zoo + ensembles), exported with skops or ONNX"
    missing = missing_models()
    if missing:
        text += "; not available: " + "; ".join(f"{name} ({hint})" for name, hint in missing.items())
    return text


@hookimpl
def automl_register_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            "sklearn", SklearnTrainer, tasks=("classification", "regression"), metrics=trainer_metrics, check=check,
            description=_description(), default_space=default_space, cross_validates=True,
            cost=config_cost,
        )
    ]


@hookimpl
def automl_register_datasets() -> list[DatasetSpec]:
    return dataset_specs()
