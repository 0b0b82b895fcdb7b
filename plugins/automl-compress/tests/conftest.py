"""Fixtures of the compressor tests: digits split once, small networks trained once, copied per test (no Ray)."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from automl_sklearn.datasets import load
from automl_torch import NeuralNetTrainer

from automl.plugin import Splits, TrialContext, split


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    # Exporters and small data sets warn (deprecations, read-only arrays); the tests check results.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="session")
def digits() -> Splits:
    return split(load("digits", {}), "classification", valid=0.2, test=0.2, seed=0)


@pytest.fixture(scope="session")
def diabetes() -> Splits:
    return split(load("diabetes", {}), "regression", valid=0.2, test=0.2, seed=0)


def train(config: Mapping[str, Any], params: Mapping[str, Any], data: Splits, directory: Path) -> NeuralNetTrainer:
    directory.mkdir(parents=True, exist_ok=True)
    trainer = NeuralNetTrainer(config, {"epochs": 3, **params}, TrialContext(data.task, 0, data, directory))  # type: ignore[arg-type]
    for _ in trainer.run_steps(1):
        pass
    return trainer


@pytest.fixture
def train_network() -> Callable[..., NeuralNetTrainer]:
    """``train_network(config, params, data, directory)``: a torch trial trained as the engine trains it."""
    return train


_TRAINED: dict[str, NeuralNetTrainer] = {}

#: The networks the tests compress: small enough to train in a second or two.
NETWORKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "mlp": ({"units": 64, "layers": 2, "lr": 0.003}, {}),
    "cnn": ({"network": "cnn", "channels": 8, "units": 32, "lr": 0.003}, {"input_shape": [1, 8, 8]}),
}

Trained = Callable[..., NeuralNetTrainer]


@pytest.fixture
def trained(digits: Splits, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Trained:
    """``trained("mlp")``: a copy of a network trained once per session, its trial directory in ``tmp_path``."""

    def get(name: str = "mlp") -> NeuralNetTrainer:
        if name not in _TRAINED:
            config, params = NETWORKS[name]
            _TRAINED[name] = train(config, params, digits, tmp_path_factory.mktemp(name))
        trainer = copy.deepcopy(_TRAINED[name])
        trainer.context = dataclasses.replace(trainer.context, trial_dir=tmp_path)
        return trainer

    return get
