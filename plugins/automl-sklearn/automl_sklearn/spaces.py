"""The sklearn trainer's default space: what a spec without ``space:`` searches, by task and data size.

Modelled on FLAML's default search spaces (``flaml/automl/model.py``, FLAML 2.x): the same
models, ranges and low-cost initial values, written as space entries of this trainer's zoo.

- ``lgbm`` and ``xgboost`` (when their libraries are installed): ``n_estimators`` and
  ``num_leaves`` / ``max_leaves`` log-uniform in [4, min(32768, rows)], ``min_child_samples``
  [2, 129], ``min_child_weight`` [0.001, 128], ``learning_rate`` [1/1024, 1],
  ``colsample_bytree`` (and xgboost's ``colsample_bylevel``, ``subsample``) up to 1,
  ``reg_alpha`` and ``reg_lambda`` log-uniform in [1/1024, 1024]; xgboost grows leaf-wise
  without a depth limit (``grow_policy: lossguide``, ``max_depth: 0``), as FLAML's ``xgboost``.
- ``extra_trees`` and ``forest``: ``n_estimators`` in [4, min(2048, rows)], ``max_features``
  log-uniform in [min(0.1, 1/sqrt(columns)), 1] (classification; [0.1, 1] for regression),
  ``max_leaf_nodes`` in [4, min(32768, rows / 2)], and ``criterion`` gini or entropy for
  classification.
- ``linear``: logistic regression's ``C`` in [1/32, 32768] (classification), ridge's ``alpha``
  in [1/1024, 1024] (regression), both log-uniform.
- ``knn`` on small tables only (at most :data:`SMALL_ROWS` rows): ``n_neighbors`` in
  [1, min(512, rows / 2)], ``weights`` uniform or distance.
- ``qda`` (classification only; not in FLAML's list, in auto-sklearn's): ``reg_param`` log-uniform in
  [1e-4, 1], starting at 0.01. One Gaussian per class, fitted in milliseconds, is the right model where
  the classes are Gaussian-like with different spreads, which no tree ensemble draws well in a few
  hundred trials: fitted alone on ring (KEEL's ringnorm) it scored 98.05-98.27 on the held-out rows of
  three seeds, where FLAML's 300 s searches scored 97.14-98.00 and ours 96.86-97.68
  (``benchmarks/tabular/results/qda-alone.md``).
  Below 1e-3 a table with collinear columns (optdigits' constant pixels) makes its covariance singular:
  such a trial fails and is recorded so. Gaussian naive Bayes (``naive_bayes`` in the zoo) is QDA with
  diagonal covariances and scored at or below it on every table tried but one cell (twonorm, seed 2),
  so only QDA is in the default space.

Starting points: one config per model, at FLAML's low-cost initial values (4 trees of 4
leaves, ``n_neighbors`` 1) and its initial values elsewhere, ordered by FLAML's cost relative
to LightGBM (lgbm 1, xgboost 1.6, extra trees 1.9, forest 2, linear 25, knn 30), QDA last (FLAML has
no figure for it; it comes after the models FLAML orders, so their starting points keep their places): the
cost-frugal start. Voting, stacking and bagging are not in the default space (a spec may
still search them). A model whose library is missing (``models.MISSING``) is left out, with
a note saying what to install.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from automl.plugin import DataSummary, DefaultSpace, Task
from automl_sklearn import models

__all__ = ["SMALL_ROWS", "default_space", "missing_models"]

#: kNN is in the default space only for tables of at most this many rows (its prediction cost grows with them).
SMALL_ROWS = 10_000
#: Cheapest first (FLAML's ``cost_relative2lgbm``): the order of the ``model`` choice and of the starting points.
_ORDER = ("lgbm", "xgboost", "extra_trees", "forest", "linear", "knn", "qda")

Entries = dict[str, dict[str, Any]]


def missing_models() -> dict[str, str]:
    """Models of the zoo whose library is not installed, each with what to install (empty when all are)."""
    return dict(getattr(models, "MISSING", {}))


def _int(low: int, high: int, *, log: bool = True) -> dict[str, Any]:
    return {"type": "int", "low": low, "high": max(high, low + 1), "log": log}


def _float(low: float, high: float, *, log: bool = True) -> dict[str, Any]:
    return {"type": "float", "low": low, "high": high, "log": log}


def _model_space(name: str, task: Task, data: DataSummary) -> tuple[Entries, dict[str, Any]]:
    """(entries, starting values) of one model; names are ``<model>__<estimator argument>``."""
    rows = max(data.rows, 10)
    boost_upper = min(32768, rows)
    entries: Entries
    start: dict[str, Any]
    if name == "lgbm":
        entries = {
            "n_estimators": _int(4, boost_upper), "num_leaves": _int(4, boost_upper),
            "min_child_samples": _int(2, 2**7 + 1), "learning_rate": _float(1 / 1024, 1.0),
            "colsample_bytree": _float(0.01, 1.0, log=False),
            "reg_alpha": _float(1 / 1024, 1024.0), "reg_lambda": _float(1 / 1024, 1024.0),
        }
        start = {"n_estimators": 4, "num_leaves": 4, "min_child_samples": 20, "learning_rate": 0.1,
                 "colsample_bytree": 1.0, "reg_alpha": 1 / 1024, "reg_lambda": 1.0}
    elif name == "xgboost":
        entries = {
            "n_estimators": _int(4, boost_upper), "max_leaves": _int(4, boost_upper),
            "min_child_weight": _float(0.001, 128.0), "learning_rate": _float(1 / 1024, 1.0),
            "subsample": _float(0.1, 1.0, log=False), "colsample_bylevel": _float(0.01, 1.0, log=False),
            "colsample_bytree": _float(0.01, 1.0, log=False),
            "reg_alpha": _float(1 / 1024, 1024.0), "reg_lambda": _float(1 / 1024, 1024.0),
            # Leaf-wise without a depth limit, as FLAML's `xgboost` (its `xgb_limitdepth` is the depth-wise one).
            "grow_policy": {"type": "choice", "values": ["lossguide"]},
            "max_depth": {"type": "choice", "values": [0]},
        }
        start = {"n_estimators": 4, "max_leaves": 4, "min_child_weight": 1.0, "learning_rate": 0.1,
                 "subsample": 1.0, "colsample_bylevel": 1.0, "colsample_bytree": 1.0, "reg_alpha": 1 / 1024,
                 "reg_lambda": 1.0, "grow_policy": "lossguide", "max_depth": 0}
    elif name in ("extra_trees", "forest"):
        init = 1 / math.sqrt(max(1, data.columns)) if task == "classification" else 1.0
        entries = {
            "n_estimators": _int(4, min(2048, rows)), "max_features": _float(min(0.1, init), 1.0),
            "max_leaf_nodes": _int(4, min(32768, rows >> 1)),
        }
        start = {"n_estimators": 4, "max_features": init, "max_leaf_nodes": 4}
        if task == "classification":
            entries["criterion"] = {"type": "choice", "values": ["gini", "entropy"]}
            start["criterion"] = "gini"
    elif name == "linear":
        if task == "classification":
            entries, start = {"C": _float(1 / 32, 32768.0)}, {"C": 1.0}
        else:
            entries, start = {"alpha": _float(1 / 1024, 1024.0)}, {"alpha": 1.0}
    elif name == "knn":
        entries = {"n_neighbors": _int(1, min(512, rows // 2)),
                   "weights": {"type": "choice", "values": ["uniform", "distance"]}}
        start = {"n_neighbors": 1, "weights": "distance"}
    elif name == "qda":
        entries, start = {"reg_param": _float(1e-4, 1.0)}, {"reg_param": 0.01}
    else:  # pragma: no cover - _ORDER lists the models above
        raise ValueError(f"no default space for model {name!r}")
    return ({f"{name}__{k}": v for k, v in entries.items()}, {f"{name}__{k}": v for k, v in start.items()})


def default_space(task: Task, params: Mapping[str, Any], data: DataSummary) -> DefaultSpace:
    """The default space for ``task`` on ``data``, its starting points and notes (see the module docstring).

    With ``params.model`` fixed, the space holds that model's parameters only (no ``model`` choice).

    Raises:
        ValueError: ``params.model`` names a model that has no default space, or whose library is missing.
    """
    missing = missing_models()
    notes = [f"model {name!r} left out of the default space: {hint}" for name, hint in missing.items()
             if name in _ORDER]
    chosen = [name for name in _ORDER if name in models.MODELS and name not in missing
              and models.MODELS[name].factory(task) is not None and (name != "knn" or 0 < data.rows <= SMALL_ROWS)]
    if data.rows > SMALL_ROWS:
        notes.append(f"model 'knn' left out of the default space: {data.rows} rows (more than {SMALL_ROWS})")
    fixed = params.get("model")
    if fixed is not None:
        if fixed not in chosen:
            raise ValueError(f"params.model {fixed!r} has no default space here (models with one: "
                             f"{', '.join(chosen)}); give `space:`")
        entries, start = _model_space(str(fixed), task, data)
        return DefaultSpace(entries, [start], notes)
    space: Entries = {"model": {"type": "choice", "values": chosen}}
    starts: list[dict[str, Any]] = []
    for name in chosen:
        entries, start = _model_space(name, task, data)
        space.update({key: {**entry, "when": {"model": name}} for key, entry in entries.items()})
        starts.append({"model": name, **start})
    return DefaultSpace(space, starts, notes)
