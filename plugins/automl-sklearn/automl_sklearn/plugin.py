"""Hook implementations of the automl-sklearn plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl.hookspecs import hookimpl
from automl.interfaces import DatasetSpec, Mode, Task, TrainerSpec
from automl_sklearn.check import check
from automl_sklearn.datasets import dataset_specs
from automl_sklearn.metrics import metrics_for
from automl_sklearn.trainer import SklearnTrainer


def trainer_metrics(task: Task, params: Mapping[str, Any]) -> Mapping[str, Mode]:
    """Every metric the trainer reports for ``task``; each may be an objective or a constraint."""
    return metrics_for(task)


@hookimpl
def automl_register_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            "sklearn", SklearnTrainer, tasks=("classification", "regression"), metrics=trainer_metrics, check=check,
            description="scikit-learn pipelines (preprocessing + model zoo + ensembles), exported with skops or ONNX",
        )
    ]


@hookimpl
def automl_register_datasets() -> list[DatasetSpec]:
    return dataset_specs()
