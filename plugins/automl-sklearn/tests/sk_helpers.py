"""Plain helpers for the sklearn trainer tests (a unique module name: test directories are not packages)."""

from __future__ import annotations

from collections.abc import Callable

from automl_sklearn.datasets import load
from automl_sklearn.trainer import SklearnTrainer

from automl.plugin import Splits, Table, split

MakeTrial = Callable[..., SklearnTrainer]


def splits(name: str, task: str, *, folds: int = 0, seed: int = 0, repeats: int = 1) -> Splits:
    return split(load(name, {}), task, valid=0.2, test=0.2, seed=seed, folds=folds, repeats=repeats)


def table_splits(table: Table, task: str, *, folds: int = 0) -> Splits:
    return split(table, task, valid=0.2, test=0.2, seed=0, folds=folds)


def run_all(trainer: SklearnTrainer) -> list[dict[str, float]]:
    """Fit every budget step as the engine does, returning the validation metrics after each."""
    return [trainer.evaluate("valid") for _ in trainer.run_steps(1)]
