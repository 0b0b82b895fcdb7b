"""The metrics the trainer reports, each computed by ``sklearn.metrics`` from one set of predictions.

Any of them can be an objective or a constraint. ``roc_auc`` and ``log_loss`` need scores:
``log_loss`` and multi-class ``roc_auc`` need class probabilities (``predict_proba``); a
binary ``roc_auc`` also takes ``decision_function``. A model without them (an SVM, hard
voting) does not report those two metrics, and a trial whose objective is missing does not
enter the front.

Besides the scores, a budget step reports what it was fitted with (:data:`FIDELITY_METRICS`:
``train_rows`` for a model fitted on a share of the rows, ``boost_rounds`` for LightGBM /
XGBoost); they are declared so the engine stores them with each step, and are no scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from automl.plugin import Mode

__all__ = ["CLASSIFICATION_METRICS", "FIDELITY_METRICS", "REGRESSION_METRICS", "mean_scores", "metrics_for", "scores",
           "scores_for"]

CLASSIFICATION_METRICS: dict[str, Mode] = {
    "accuracy": "max",
    "balanced_accuracy": "max",
    "precision_macro": "max",
    "precision_weighted": "max",
    "recall_macro": "max",
    "recall_weighted": "max",
    "f1_macro": "max",
    "f1_weighted": "max",
    "roc_auc": "max",
    "log_loss": "min",
}
REGRESSION_METRICS: dict[str, Mode] = {"r2": "max", "rmse": "min", "mae": "min"}
#: What a step was fitted with: training rows of its share (the folds' mean) and boosting rounds kept.
FIDELITY_METRICS: dict[str, Mode] = {"train_rows": "max", "boost_rounds": "max"}


def scores_for(task: str) -> dict[str, Mode]:
    """The scores of ``task`` (what ``rank_by`` may name)."""
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def metrics_for(task: str) -> dict[str, Mode]:
    """Everything a step of ``task`` may report: the scores, then :data:`FIDELITY_METRICS`."""
    return {**scores_for(task), **FIDELITY_METRICS}


def scores(task: str, model: Any, X: Any, y: Any) -> dict[str, float]:
    """Every metric of ``task`` for fitted ``model`` on ``X``, ``y`` (one ``predict`` call, one score call)."""
    from sklearn import metrics as skm  # here, not at the top: the plugin loads the tables above without scikit-learn

    y_true = np.asarray(y)
    y_pred = model.predict(X)
    if task != "classification":
        return {
            "r2": float(skm.r2_score(y_true, y_pred)),
            "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        }
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
    }
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        out.update({f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)})
    classes = list(getattr(model, "classes_", []))
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        out["log_loss"] = float(skm.log_loss(y_true, proba, labels=classes))
        auc = _auc(y_true, proba[:, 1] if len(classes) == 2 else proba, classes)
    elif hasattr(model, "decision_function") and len(classes) == 2:
        auc = _auc(y_true, model.decision_function(X), classes)
    else:
        auc = None
    if auc is not None:
        out["roc_auc"] = auc
    return out


def _auc(y_true: np.ndarray, score: np.ndarray, classes: Sequence[Any]) -> float | None:
    from sklearn import metrics as skm

    if len(np.unique(y_true)) < 2:
        return None  # undefined on a part with one class
    try:
        if len(classes) == 2:
            return float(skm.roc_auc_score(y_true == classes[1], score))
        return float(skm.roc_auc_score(y_true, score, multi_class="ovr", average="macro", labels=classes))
    except ValueError:
        return None  # e.g. a class of the training rows absent from this part: AUC is undefined


def mean_scores(parts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-metric mean over folds, keeping the metrics every fold reported."""
    if not parts:
        return {}
    common = set(parts[0]).intersection(*parts[1:])
    return {k: float(np.mean([p[k] for p in parts])) for k in parts[0] if k in common}
