"""The ``sklearn`` trainer: preprocessing + a model from the zoo, exported with skops."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from automl.interfaces import Mode, Task, Trainer
from automl.space import Choice, SearchSpace
from automl_sklearn.models import MODELS, estimator_params

CLASSIFICATION_METRICS: dict[str, Mode] = {"accuracy": "max", "balanced_accuracy": "max", "f1_macro": "max"}
REGRESSION_METRICS: dict[str, Mode] = {"r2": "max", "rmse": "min", "mae": "min"}
#: Fixed params the trainer itself reads (not passed to the estimator).
OWN_PARAMS = ("model",)


def preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """Impute and scale numeric columns, impute and one-hot encode the others; fitted on train only."""
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    other = [c for c in X.columns if c not in numeric]
    steps = [("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), numeric)]
    if other:
        steps.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]), other))
    return ColumnTransformer(steps)


def score(task: str, y_true: Any, y_pred: Any) -> dict[str, float]:
    if task == "classification":
        return {
            "accuracy": float(skm.accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
            "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro")),
        }
    return {
        "r2": float(skm.r2_score(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
    }


class SklearnTrainer(Trainer):
    """Fits ``Pipeline(preprocess, model)`` where ``model`` comes from the config or params."""

    def _build(self) -> Pipeline:
        name = self.config.get("model", self.params.get("model"))
        model = MODELS[str(name)]
        factory = model.factory(self.context.task)
        if factory is None:
            raise ValueError(f"model {name!r} does not do {self.context.task}")
        estimator = factory()
        args = estimator_params(model, self.context.task, self.config, {k: v for k, v in self.params.items() if k not in OWN_PARAMS})
        available = estimator.get_params(deep=False)
        if "random_state" in available:
            args.setdefault("random_state", self.context.seed)
        if "n_jobs" in available:
            args.setdefault("n_jobs", max(1, int(self.context.cpus)))
        estimator.set_params(**args)
        return Pipeline([("prep", preprocessor(self.context.data.train.X)), ("model", estimator)])

    def fit_step(self, step: int) -> None:
        self.pipeline_ = self._build()
        data = self.context.data.train
        self.pipeline_.fit(data.X, data.y)

    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        part = getattr(self.context.data, split)
        return score(self.context.task, part.y, self.pipeline_.predict(part.X))

    def export(self, directory: Path) -> Path:
        import skops.io as sio

        path = directory / "model.skops"
        sio.dump(self.pipeline_, path)
        return path

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        return load_model(path).predict


def load_model(path: Path) -> Any:
    """Load a skops file trusting only scikit-learn, numpy and scipy types (never arbitrary code)."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "scipy.", "builtins."))]
    if foreign:
        raise ValueError(f"{path} holds types this trainer does not trust: {foreign}")
    return sio.load(path, trusted=untrusted)


def trainer_metrics(task: Task, params: Mapping[str, Any]) -> Mapping[str, Mode]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def check(task: Task, params: Mapping[str, Any], space: SearchSpace) -> None:
    """Before any trial: the model names exist, and every searched parameter fits some model."""
    if "model" in space:
        p = space["model"]
        if not isinstance(p, Choice):
            raise ValueError("the `model` parameter must be a choice of model names")
        names = [str(v) for v in p.values]
    elif "model" in params:
        names = [str(params["model"])]
    else:
        raise ValueError(f"choose a model: a `model` choice in the space or params.model; models: {', '.join(MODELS)}")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; models: {', '.join(MODELS)}")
    wrong_task = [n for n in names if MODELS[n].factory(task) is None]
    if wrong_task:
        raise ValueError(f"model(s) {wrong_task} do not do {task}")
    for key in list(space) + [k for k in params if k not in OWN_PARAMS]:
        if key == "model":
            continue
        prefix, sep, name = key.partition("__")
        if sep:
            if prefix not in MODELS or name not in MODELS[prefix].accepts(task):
                raise ValueError(f"parameter {key!r}: model {prefix!r} has no parameter {name!r}")
            continue
        if not any(key in MODELS[n].accepts(task) for n in names):
            raise ValueError(f"parameter {key!r} is not a parameter of any chosen model ({', '.join(names)})")
