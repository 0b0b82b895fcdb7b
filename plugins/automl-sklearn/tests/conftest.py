"""Helpers for the sklearn trainer tests: trials built with a TrialContext directly (no Ray)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from automl_sklearn.trainer import SklearnTrainer
from sk_helpers import MakeTrial, splits

from automl.plugin import Splits, TrialContext


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    # Small data sets make scikit-learn warn about convergence; the tests check results, not warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def make_trial(tmp_path: Path) -> MakeTrial:
    """``make_trial(config, params, data=..., number=...)``: a trainer in ``tmp_path/trials/NNNNN``."""

    def make(config: Mapping[str, Any], params: Mapping[str, Any] | None = None, *, data: Splits | None = None,
             number: int = 0, seed: int | None = None) -> SklearnTrainer:
        data = data if data is not None else splits("iris", "classification")
        directory = tmp_path / "trials" / f"{number:05d}"
        directory.mkdir(parents=True, exist_ok=True)
        context = TrialContext(data.task, number if seed is None else seed, data, directory)  # type: ignore[arg-type]
        return SklearnTrainer(config, params or {}, context)

    return make
