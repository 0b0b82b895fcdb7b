"""R1: the Bayesmark protocol rebuilt on scikit-learn's bundled data sets.

Bayesmark (the NeurIPS 2020 BBO challenge) tunes scikit-learn models on small data sets
and scores the cross-validated loss. Its package downloads nothing but is unmaintained
and pins old scikit-learn, so the protocol is rebuilt here: the same models and search
spaces (its ``sklearn_funcs``; its logit-scaled reals become plain uniform ones, which our
space does not distinguish), 5-fold cross-validation, ``nll``/``acc`` losses for
classification and ``mse``/``mae`` for regression. A task is named
``MODEL-DATASET-METRIC`` (``DT-breast_cancer-nll``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl.plugin import Float, Int, Objective, Param, SearchSpace
from automl_bench.base import BenchmarkError, Problem

__all__ = ["BayesmarkProblem", "DATASETS", "METRICS", "MODELS", "bayesmark_task_names", "make_bayesmark"]

#: Bundled data sets and their task type.
DATASETS: dict[str, str] = {
    "iris": "classification",
    "wine": "classification",
    "digits": "classification",
    "breast_cancer": "classification",
    "diabetes": "regression",
}
#: Losses per task type, and the scikit-learn scorer each negates.
METRICS: dict[str, dict[str, str]] = {
    "classification": {"nll": "neg_log_loss", "acc": "accuracy"},
    "regression": {"mse": "neg_mean_squared_error", "mae": "neg_mean_absolute_error"},
}
MODELS = ("kNN", "SVM", "DT", "RF", "MLP", "ada", "linear", "lasso")
CV_SPLITS = 5


def _tree_space() -> list[Param]:
    return [
        Int("max_depth", low=1, high=15),
        Float("min_samples_split", low=0.01, high=0.99),
        Float("min_samples_leaf", low=0.01, high=0.49),
        Float("min_weight_fraction_leaf", low=0.01, high=0.49),
        Float("max_features", low=0.01, high=0.99),
        Float("min_impurity_decrease", low=0.0, high=0.5),
    ]


def model_space(model: str, task: str) -> SearchSpace:
    """Bayesmark's search space for ``model`` on a ``task`` (classification or regression)."""
    if model == "kNN":
        params: list[Param] = [Int("n_neighbors", low=1, high=25), Int("p", low=1, high=4)]
    elif model == "SVM":
        params = [Float("C", low=1.0, high=1e3, log=True), Float("gamma", low=1e-4, high=1e-3, log=True),
                  Float("tol", low=1e-5, high=1e-1, log=True)]
        if task == "regression":
            params.append(Float("epsilon", low=1e-2, high=1.0, log=True))
    elif model in ("DT", "RF"):
        params = _tree_space()
    elif model == "MLP":
        params = [
            Int("hidden_layer_sizes", low=50, high=200),
            Float("alpha", low=1e-5, high=1e1, log=True),
            Int("batch_size", low=10, high=250),
            Float("learning_rate_init", low=1e-5, high=1e-1, log=True),
            Float("tol", low=1e-5, high=1e-1, log=True),
            Float("validation_fraction", low=0.1, high=0.9),
            Float("beta_1", low=0.5, high=0.99),
            Float("beta_2", low=0.9, high=1 - 1e-6),
            Float("epsilon", low=1e-9, high=1e-6, log=True),
        ]
    elif model == "ada":
        params = [Int("n_estimators", low=10, high=100), Float("learning_rate", low=1e-4, high=1e1, log=True)]
    elif model in ("linear", "lasso"):
        if task == "classification":
            params = [Float("C", low=1e-2, high=1e2, log=True), Float("intercept_scaling", low=1e-2, high=1e2, log=True)]
        else:
            params = [Float("alpha", low=1e-2, high=1e2, log=True)]
    else:  # guarded by parse_bayesmark
        raise BenchmarkError(f"unknown Bayesmark model {model!r}; models: {', '.join(MODELS)}")
    return SearchSpace(params)


def build_estimator(model: str, task: str, config: Mapping[str, Any], *, probability: bool) -> Any:
    """The scikit-learn estimator for ``config``, standardised inputs in front (as Bayesmark scales X)."""
    from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    c = dict(config)
    clf = task == "classification"
    if model == "kNN":
        est: Any = (neighbors.KNeighborsClassifier if clf else neighbors.KNeighborsRegressor)(**c)
    elif model == "SVM":
        if not clf:
            est = svm.SVR(**c)
        elif probability:
            # scikit-learn 1.9's replacement for the deprecated SVC(probability=True): Platt scaling by CV.
            est = CalibratedClassifierCV(svm.SVC(random_state=0, **c), ensemble=False)
        else:
            est = svm.SVC(random_state=0, **c)
    elif model == "DT":
        est = (tree.DecisionTreeClassifier if clf else tree.DecisionTreeRegressor)(random_state=0, **c)
    elif model == "RF":
        # Bayesmark fixes 10 trees.
        est = (ensemble.RandomForestClassifier if clf else ensemble.RandomForestRegressor)(
            n_estimators=10, random_state=0, n_jobs=1, **c)
    elif model == "MLP":
        c["hidden_layer_sizes"] = (int(c["hidden_layer_sizes"]),)
        est = (neural_network.MLPClassifier if clf else neural_network.MLPRegressor)(
            solver="adam", early_stopping=True, random_state=0, **c)
    elif model == "ada":
        est = (ensemble.AdaBoostClassifier if clf else ensemble.AdaBoostRegressor)(random_state=0, **c)
    elif model in ("linear", "lasso"):
        if clf:
            # liblinear (the solver that honours intercept_scaling) is binary: one-vs-rest as in Bayesmark's
            # scikit-learn; l1_ratio 1 is the L1 (lasso) penalty, 0 the L2 one.
            est = OneVsRestClassifier(linear_model.LogisticRegression(
                solver="liblinear", l1_ratio=1.0 if model == "lasso" else 0.0, random_state=0, **c))
        else:
            est = (linear_model.Lasso if model == "lasso" else linear_model.Ridge)(random_state=0, **c)
    else:
        raise BenchmarkError(f"unknown Bayesmark model {model!r}; models: {', '.join(MODELS)}")
    return make_pipeline(StandardScaler(), est)


@functools.cache
def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a bundled data set; a regression target is standardised (Bayesmark scales y)."""
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if DATASETS[name] == "regression":
        y = (y - y.mean()) / y.std()
    return np.asarray(X, dtype=float), np.asarray(y)


@dataclass
class BayesmarkProblem(Problem):
    """One model on one data set under one loss, scored by 5-fold cross-validation (minimised)."""

    name: str
    model: str
    dataset: str
    metric: str
    space: SearchSpace = field(init=False)
    objectives: tuple[Objective, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.task = DATASETS[self.dataset]
        self.space = model_space(self.model, self.task)
        self.objectives = (Objective("loss", "min"),)

    def evaluate(self, config: Mapping[str, Any]) -> list[float]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
        from threadpoolctl import threadpool_limits

        X, y = load_dataset(self.dataset)
        scoring = METRICS[self.task][self.metric]
        estimator = build_estimator(self.model, self.task, config, probability=self.metric == "nll")
        # A fixed split for every method and seed: the objective is a deterministic function of the config.
        splitter = (StratifiedKFold if self.task == "classification" else KFold)(CV_SPLITS, shuffle=True, random_state=0)
        # One BLAS thread: the machine is shared, and only the searcher's time is measured anyway.
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            scores = cross_val_score(estimator, X, y, scoring=scoring, cv=splitter, error_score="raise", n_jobs=1)
        score = float(np.mean(scores))
        # Scorers are "higher is better": losses are their negation (1 - accuracy for acc).
        return [1.0 - score if self.metric == "acc" else -score]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model, "dataset": self.dataset, "metric": self.metric,
                "cv_splits": CV_SPLITS}


def parse_bayesmark(name: str) -> tuple[str, str, str] | None:
    """``(model, dataset, metric)`` when ``name`` is a valid Bayesmark task, else None."""
    parts = name.split("-")
    if len(parts) != 3:
        return None
    model, dataset, metric = parts
    if model not in MODELS or dataset not in DATASETS or metric not in METRICS[DATASETS[dataset]]:
        return None
    return model, dataset, metric


def bayesmark_task_names() -> list[str]:
    return [f"{m}-{d}-{k}" for m in MODELS for d, task in DATASETS.items() for k in METRICS[task]]


def make_bayesmark(name: str, options: Mapping[str, Any]) -> BayesmarkProblem:
    parsed = parse_bayesmark(name)
    if parsed is None:
        raise BenchmarkError(f"{name!r} is not a Bayesmark task MODEL-DATASET-METRIC; models: {', '.join(MODELS)}; "
                             f"data sets: {', '.join(DATASETS)}")
    if options:
        raise BenchmarkError(f"task {name!r} takes no options, got {', '.join(sorted(options))}")
    return BayesmarkProblem(name, *parsed)
