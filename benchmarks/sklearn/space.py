"""One search space, written once, as an automl spec and as RandomizedSearchCV distributions.

Per model, each parameter is ``("float", low, high, log)``, ``("int", low, high, log)`` or
``("choice", [values])``; both methods draw from the same distributions (uniform over the
model choice, then each of the model's parameters). The ensembles exist only for automl:
RandomizedSearchCV cannot build ensembles of the best configurations found so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

Dist = tuple[Any, ...]

#: hidden_layer_sizes of one layer: a choice in both methods (YAML choices hold scalars, not tuples).
UNITS = [16, 32, 64, 128, 256]

COMMON: dict[str, dict[str, Dist]] = {
    "knn": {"n_neighbors": ("int", 1, 40, True), "weights": ("choice", ["uniform", "distance"])},
    "tree": {"max_depth": ("int", 2, 20, False), "min_samples_leaf": ("int", 1, 20, True)},
    "forest": {"n_estimators": ("int", 20, 200, True), "max_features": ("float", 0.1, 1.0, False),
               "min_samples_leaf": ("int", 1, 10, False)},
    "extra_trees": {"n_estimators": ("int", 20, 200, True), "max_features": ("float", 0.1, 1.0, False),
                    "min_samples_leaf": ("int", 1, 10, False)},
    "hgb": {"learning_rate": ("float", 0.01, 0.5, True), "max_iter": ("int", 20, 200, True),
            "max_leaf_nodes": ("int", 4, 64, True)},
    "adaboost": {"n_estimators": ("int", 20, 200, True), "learning_rate": ("float", 0.01, 2.0, True)},
    "mlp": {"hidden_units": ("choice", UNITS), "alpha": ("float", 1e-6, 1e-1, True),
            "learning_rate_init": ("float", 1e-4, 1e-2, True)},
}

SPACES: dict[str, dict[str, dict[str, Dist]]] = {
    "classification": {
        "linear": {"C": ("float", 1e-3, 1e2, True)},
        "svm": {"C": ("float", 1e-2, 1e3, True), "gamma": ("float", 1e-4, 1.0, True)},
        **COMMON,
    },
    "regression": {
        "linear": {"alpha": ("float", 1e-4, 1e2, True)},
        "elasticnet": {"alpha": ("float", 1e-4, 10.0, True), "l1_ratio": ("float", 0.0, 1.0, False)},
        "svm": {"C": ("float", 1e-2, 1e3, True), "gamma": ("float", 1e-4, 1.0, True),
                "epsilon": ("float", 0.01, 50.0, True)},
        **COMMON,
    },
}

#: Fixed arguments, the same in both methods (the MLP's epochs; regression needs more of them).
FIXED = {"classification": {"mlp__max_iter": 200}, "regression": {"mlp__max_iter": 500}}

#: Ensemble keys: (distribution, the ensembles it exists under).
ENSEMBLE_PARAMS: dict[str, tuple[Dist, list[str]]] = {
    "ensemble_size": (("int", 2, 5, False), ["voting", "stacking"]),
    "rank_decay": (("float", 0.3, 1.0, False), ["voting"]),
    "meta": (("choice", ["linear", "forest"]), ["stacking"]),
    "base": (("choice", ["best", "tree", "knn"]), ["bagging"]),
    "bagging__n_estimators": (("int", 5, 30, True), ["bagging"]),
    "bagging__max_samples": (("float", 0.5, 1.0, False), ["bagging"]),
}
ENSEMBLES = ["voting", "stacking", "bagging"]


def automl_space(task: str, ensembles: bool) -> dict[str, dict[str, Any]]:
    """The ``space:`` of an automl spec: ``model`` plus ``<model>__<param>`` under ``when: {model: ...}``."""
    models = SPACES[task]
    space: dict[str, dict[str, Any]] = {"model": {"type": "choice", "values": [*models, *(ENSEMBLES if ensembles else [])]}}
    for model, params in models.items():
        for name, dist in params.items():
            space[f"{model}__{name}"] = {**_yaml(dist), "when": {"model": model}}
    if ensembles:
        extra = dict(ENSEMBLE_PARAMS)
        if task == "classification":
            extra["voting"] = (("choice", ["soft", "hard"]), ["voting"])
        for key, (dist, under) in extra.items():
            space[key] = {**_yaml(dist), "when": {"model": under}}
    return space


def _yaml(dist: Dist) -> dict[str, Any]:
    if dist[0] == "choice":
        return {"type": "choice", "values": list(dist[1])}
    kind, low, high, log = dist
    return {"type": kind, "low": low, "high": high, "log": log}


class _IntLogUniform:
    """A log-uniform integer on [low, high]: scipy has no discrete log-uniform distribution, so this
    wraps the continuous one the way automl's ``Int(log=True)`` samples (on [low - 0.5, high + 0.5])."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.dist = stats.loguniform(low - 0.4999, high + 0.4999)

    def rvs(self, random_state: Any = None, size: Any = None) -> Any:
        values = np.clip(np.rint(self.dist.rvs(size=size, random_state=random_state)), self.low, self.high)
        return int(values) if size is None else values.astype(int)


def _scipy(dist: Dist) -> Any:
    if dist[0] == "choice":
        return list(dist[1])
    kind, low, high, log = dist
    if kind == "float":
        return stats.loguniform(low, high) if log else stats.uniform(low, high - low)
    return _IntLogUniform(low, high) if log else stats.randint(low, high + 1)


def sklearn_distributions(task: str, make: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``param_distributions`` for RandomizedSearchCV over ``Pipeline(prep, model)``: one dict per model.

    Args:
        task: ``classification`` or ``regression``.
        make: ``{model name: unfitted estimator}`` (the zoo's own estimators, fixed arguments set).
    """
    out = []
    for model, params in SPACES[task].items():
        entry: dict[str, Any] = {"model": [make[model]]}
        for name, dist in params.items():
            if name == "hidden_units":
                entry["model__hidden_layer_sizes"] = [(u,) for u in dist[1]]
            else:
                entry[f"model__{name}"] = _scipy(dist)
        out.append(entry)
    return out
