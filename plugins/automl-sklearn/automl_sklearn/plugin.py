"""Hook implementations of the automl-sklearn plugin."""

from __future__ import annotations

from automl.hookspecs import hookimpl
from automl.interfaces import DatasetSpec, TrainerSpec
from automl_sklearn.datasets import dataset_specs
from automl_sklearn.trainer import SklearnTrainer, check, trainer_metrics


@hookimpl
def automl_register_trainers() -> list[TrainerSpec]:
    return [
        TrainerSpec(
            "sklearn", SklearnTrainer, tasks=("classification", "regression"), metrics=trainer_metrics, check=check,
            description="scikit-learn pipelines (preprocessing + model zoo), exported with skops",
        )
    ]


@hookimpl
def automl_register_datasets() -> list[DatasetSpec]:
    return dataset_specs()
