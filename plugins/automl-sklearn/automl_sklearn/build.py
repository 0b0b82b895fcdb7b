"""From a trial's config to an unfitted recipe: preprocessing, model (single or ensemble), growth.

Keys the trainer reads itself (:data:`OWN_KEYS`) never reach an estimator; every other key
reaches the models that accept it, and ``<model>__<param>`` one model only. Ensembles:

- ``members``: ``"forest+svm+hgb"`` (models from the space; a YAML list in fixed params),
  or ``best`` (default): the ``ensemble_size`` (default 3) best completed single-model trials
  so far, ranked by ``rank_by`` (default ``accuracy`` / ``r2``), each with its own preprocessing.
- voting weights: ``<model>__weight`` per member from the space (default 1); for ``best``
  members the k-th best weighs ``rank_decay ** k`` (default 1: equal weights).
- ``voting``: ``soft`` or ``hard`` (scikit-learn's own argument); a member without
  ``predict_proba`` (an SVM) is calibrated with ``CalibratedClassifierCV`` for soft voting,
  scikit-learn's recommended way to get its probabilities.
- stacking: ``meta`` (default ``linear``) is the meta-learner, ``meta__<param>`` its arguments;
  ``cv`` defaults to 3 (scikit-learn's 5 costs two more fits of every member per trial).
- bagging: ``base`` (default ``tree``, as scikit-learn) is the bagged model, or ``best``.

``class_weight: balanced`` reaches every estimator with a ``class_weight`` argument; a single
model without one (MLP, AdaBoost) gets class-balanced sample weights instead.

``lgbm`` / ``xgboost``: ``early_stopping`` (default true; it also reaches the scikit-learn
models that have the argument, ``hgb`` and ``mlp``, with their own meaning) and
``early_stopping_rounds`` (default max(10, 10% of ``n_estimators``)), plain or as
``<model>__early_stopping...``: see :mod:`automl_sklearn.boosting`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import has_fit_parameter

from automl.plugin import TrialError
from automl_sklearn.boosting import default_patience
from automl_sklearn.metrics import scores_for
from automl_sklearn.models import ENSEMBLES, MODELS, Growth, Model, estimator_params, growth_of
from automl_sklearn.pool import Finished, best_trials, read_records
from automl_sklearn.preprocess import PREP_KEYS, preprocessor

__all__ = ["OWN_KEYS", "Recipe", "build_recipe", "member_names", "model_name"]

#: Keys the trainer reads itself; they never reach an estimator as arguments.
OWN_KEYS: tuple[str, ...] = (
    "model", *PREP_KEYS, "class_weight", "members", "ensemble_size", "rank_decay", "meta", "base",
    "steps", "export", "rank_by", "fidelity", "early_stopping", "early_stopping_rounds",
)
#: Own keys that still reach the estimators that take them.
_PASSED_ON = ("class_weight", "early_stopping")
DEFAULT_ENSEMBLE_SIZE = 3
DEFAULT_STACKING_CV = 3


@dataclass
class Recipe:
    """An unfitted model and how to fit it.

    Attributes:
        model: The estimator (single model or ensemble).
        prep: Preprocessing in front of it; None when the members bring their own.
        growth: How the model grows over budget steps; None when fitted in one go.
        sample_weight: Fit with class-balanced sample weights (``class_weight`` for a model
            that has no such argument).
        members: The trial numbers of ``best`` members, for the record.
        patience: Early stopping rounds of a LightGBM / XGBoost model; None: no early stopping.
    """

    model: BaseEstimator
    prep: Pipeline | None
    growth: Growth | None = None
    sample_weight: Any = None
    members: list[int] = field(default_factory=list)
    patience: int | None = None

    def full_size(self) -> int:
        assert self.growth is not None
        return int(self.model.get_params()[self.growth.param])


def _get(config: Mapping[str, Any], fixed: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return config.get(key, fixed.get(key, default))


def model_name(config: Mapping[str, Any], fixed: Mapping[str, Any]) -> str:
    return str(_get(config, fixed, "model"))


def member_names(value: Any) -> list[str] | str:
    """``members`` as a list of model names, or ``"best"``."""
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    text = str(value).strip()
    return "best" if text == "best" else [v.strip() for v in text.split("+") if v.strip()]


def _routed(values: Mapping[str, Any]) -> dict[str, Any]:
    """The keys that may reach estimators."""
    return {k: v for k, v in values.items() if k not in OWN_KEYS or k in _PASSED_ON}


def make_estimator(
    name: str, task: str, config: Mapping[str, Any], fixed: Mapping[str, Any], *, seed: int, cpus: float,
    prefix: str | None = None, plain: bool = True,
) -> tuple[BaseEstimator, Model]:
    """One model of the zoo (or an ensemble shell) with its arguments from config and fixed params."""
    model = MODELS.get(name) or ENSEMBLES.get(name)
    if model is None:
        raise TrialError(f"unknown model {name!r}; models: {', '.join([*MODELS, *ENSEMBLES])}")
    factory = model.factory(task)
    if factory is None:
        raise TrialError(f"model {name!r} does not do {task}")
    estimator = factory()
    args = estimator_params(model, task, _routed(config), _routed(fixed), prefix=prefix, plain=plain)
    available = estimator.get_params(deep=False)
    if "random_state" in available:
        args.setdefault("random_state", seed)
    if "n_jobs" in available and int(cpus) > 1:  # None already means one job (and LogisticRegression warns on any value)
        args.setdefault("n_jobs", int(cpus))
    if model.growth is not None and model.growth.kind == "boosting":
        # The trainer's own early stopping (on the trial's validation part) replaces XGBoost's argument.
        args.pop("early_stopping_rounds", None)
    estimator.set_params(**args)
    return estimator, model


def build_recipe(
    config: Mapping[str, Any], fixed: Mapping[str, Any], *, task: str, X: pd.DataFrame, seed: int, cpus: float,
    trial_dir: Path | None = None,
) -> Recipe:
    """The unfitted recipe for one trial.

    Args:
        config: The trial's searched values.
        fixed: The spec's ``trainer.params``.
        task: ``classification`` or ``regression``.
        X: Training features (their columns and types shape the preprocessing).
        seed: Seed of every random choice.
        cpus: CPUs of the trial (``n_jobs`` of the models that take it).
        trial_dir: The trial's directory; its parent holds the records of ``best`` members.

    Raises:
        TrialError: For a config the trainer cannot build (the trial fails with this reason).
    """
    name = model_name(config, fixed)
    if name in ENSEMBLES:
        return _ensemble(name, config, fixed, task=task, X=X, seed=seed, cpus=cpus, trial_dir=trial_dir)
    estimator, model = make_estimator(name, task, config, fixed, seed=seed, cpus=cpus)
    growth = growth_of(model, estimator)
    prep = preprocessor(X, task, config, fixed, seed=seed)
    if growth is not None and growth.kind == "boosting":
        prep = _float32_trees(X, task, config, fixed, seed)
    return Recipe(estimator, prep, growth,
                  _balanced(estimator, task, config, fixed), patience=_patience(name, growth, estimator, config, fixed))


def _float32_trees(X: pd.DataFrame, task: str, config: Mapping[str, Any], fixed: Mapping[str, Any], seed: int) -> Pipeline:
    """Preprocessing for LightGBM / XGBoost: no scaling unless asked, then a cast to float32.

    Their split thresholds are feature values of the training rows, and ONNX compares in
    float32: fitted on float32 values (and unscaled, since a float32 scaler in ONNX differs
    from scikit-learn's float64 one in the last bit), the exported model takes the same
    branches as the one that was validated. Trees do not need scaled features.
    """
    from skl2onnx.sklapi import CastTransformer

    prep = preprocessor(X, task, config, {"scale": "none", **fixed}, seed=seed)
    prep.steps.append(("float32", CastTransformer(dtype=np.float32)))
    return prep


def _patience(
    name: str, growth: Growth | None, estimator: BaseEstimator, config: Mapping[str, Any], fixed: Mapping[str, Any]
) -> int | None:
    """Early stopping rounds of a LightGBM / XGBoost model (None: off, or another model)."""
    if growth is None or growth.kind != "boosting":
        return None
    on = _get(config, fixed, f"{name}__early_stopping", _get(config, fixed, "early_stopping", True))
    if not on:
        return None
    rounds = _get(config, fixed, f"{name}__early_stopping_rounds", _get(config, fixed, "early_stopping_rounds"))
    return int(rounds) if rounds is not None else default_patience(int(estimator.get_params()[growth.param]))


def _balanced(estimator: BaseEstimator, task: str, config: Mapping[str, Any], fixed: Mapping[str, Any]) -> Any:
    """The ``class_weight`` to turn into sample weights, for a classifier that has no such argument."""
    weight = _get(config, fixed, "class_weight")
    if task != "classification" or weight is None or "class_weight" in estimator.get_params(deep=False):
        return None
    return weight if has_fit_parameter(estimator, "sample_weight") else None


def _best(config: Mapping[str, Any], fixed: Mapping[str, Any], task: str, k: int, trial_dir: Path | None) -> list[Finished]:
    if trial_dir is None:
        raise TrialError("members: best needs the trial directory to find finished trials")
    metric = str(_get(config, fixed, "rank_by", next(iter(scores_for(task)))))
    mode = scores_for(task)[metric]
    chosen = best_trials(read_records(trial_dir.parent, exclude=trial_dir), metric, mode, k, singles=set(MODELS))
    if len(chosen) < min(k, 2):
        raise TrialError(
            f"an ensemble of the best trials needs at least 2 completed single-model trials; {len(chosen)} "
            f"had finished when this trial started (later ensemble trials will find more)"
        )
    return chosen


def _ensemble(
    name: str, config: Mapping[str, Any], fixed: Mapping[str, Any], *, task: str, X: pd.DataFrame, seed: int,
    cpus: float, trial_dir: Path | None,
) -> Recipe:
    shell, model = make_estimator(name, task, config, fixed, seed=seed, cpus=cpus)
    if name == "bagging":
        base = str(_get(config, fixed, "base", "tree"))
        if base == "best":
            best = _best(config, fixed, task, 1, trial_dir)[0]
            inner = build_recipe(best.config, fixed, task=task, X=X, seed=seed, cpus=cpus)
            shell.set_params(estimator=inner.model)
            return Recipe(shell, inner.prep, growth_of(model, shell), members=[best.number])
        estimator, _ = make_estimator(base, task, config, fixed, seed=seed, cpus=cpus)
        shell.set_params(estimator=estimator)
        return Recipe(shell, preprocessor(X, task, config, fixed, seed=seed), growth_of(model, shell))

    members = member_names(_get(config, fixed, "members", "best"))
    numbers: list[int] = []
    if members == "best":
        k = int(_get(config, fixed, "ensemble_size", DEFAULT_ENSEMBLE_SIZE))
        chosen = _best(config, fixed, task, k, trial_dir)
        entries: list[tuple[str, Any]] = []
        for r in chosen:
            inner = build_recipe(r.config, fixed, task=task, X=X, seed=seed, cpus=cpus)
            entries.append((f"trial{r.number}_{model_name(r.config, fixed)}", Pipeline([("prep", inner.prep), ("model", inner.model)])))
            numbers.append(r.number)
        decay = float(_get(config, fixed, "rank_decay", 1.0))
        weights = [decay**i for i in range(len(entries))]
        prep = None  # each member keeps its own preprocessing
    else:
        entries = [(m, make_estimator(m, task, config, fixed, seed=seed, cpus=cpus)[0]) for m in members]
        weights = [float(_get(config, fixed, f"{m}__weight", 1.0)) for m in members]
        prep = preprocessor(X, task, config, fixed, seed=seed)
    if name == "voting":
        if task == "classification" and shell.get_params()["voting"] == "soft":
            entries = [(n, e if hasattr(e, "predict_proba") else CalibratedClassifierCV(e, cv=3)) for n, e in entries]
        if task == "classification":
            # skl2onnx converts voting only with flatten_transform=False (it changes transform(), not predict).
            shell.set_params(flatten_transform=False)
        # An array, not a list: skl2onnx's voting converter does arithmetic on it.
        shell.set_params(estimators=entries, weights=np.asarray(weights, dtype=float))
    else:  # stacking
        meta_name = str(_get(config, fixed, "meta", "linear"))
        meta, _ = make_estimator(meta_name, task, config, fixed, seed=seed, cpus=cpus, prefix="meta", plain=False)
        cv = shell.get_params()["cv"]
        shell.set_params(estimators=entries, final_estimator=meta, cv=DEFAULT_STACKING_CV if cv is None else cv)
    return Recipe(shell, prep, None, members=numbers)
