"""Fixtures of the torch plugin's tests: bundled data sets split once, trainers built without Ray."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from automl_sklearn.datasets import load
from automl_torch import NeuralNetTrainer

from automl.plugin import Splits, TrialContext, split


def _splits(name: str, task: str) -> Splits:
    return split(load(name, {}), task, valid=0.2, test=0.2, seed=0)


@pytest.fixture(scope="session")
def digits() -> Splits:
    return _splits("digits", "classification")


@pytest.fixture(scope="session")
def diabetes() -> Splits:
    return _splits("diabetes", "regression")


@pytest.fixture(scope="session")
def wine() -> Splits:
    return _splits("wine", "classification")


MakeTrainer = Callable[..., NeuralNetTrainer]


@pytest.fixture
def make_trainer(tmp_path: Path, digits: Splits) -> MakeTrainer:
    """Build a trainer as a trial would, with a TrialContext and no Ray (digits unless told)."""
    count = iter(range(1000))

    def make(
        config: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        data: Splits | None = None,
        task: str = "classification",
        seed: int = 0,
        cpus: float = 1.0,
        directory: Path | None = None,
    ) -> NeuralNetTrainer:
        trial_dir = directory or tmp_path / f"trial{next(count)}"
        trial_dir.mkdir(parents=True, exist_ok=True)
        context = TrialContext(task, seed, data if data is not None else digits, trial_dir, cpus, 0.0)  # type: ignore[arg-type]
        return NeuralNetTrainer(config or {}, {"units": 32, "epochs": 3, **(params or {})}, context)

    return make
