"""LightGBM and XGBoost over budget steps: rounds added to the booster so far, early stopping, checks.

Growth: each budget step continues the booster fitted so far (LightGBM ``init_model=``,
XGBoost ``xgb_model=``) with the rounds the step adds, never refitting from scratch.

Early stopping (``early_stopping``, default on for these two models): after every round
the library scores the trial's own validation rows (the ``valid`` part, or the held-out
fold under ``data.folds``, through the trial's fitted preprocessing) with its default
evaluation metric (log loss, multi-class log loss, L2 / RMSE) or the one the config sets;
once ``early_stopping_rounds`` rounds (default ``max(10, 10%`` of ``n_estimators)``) bring
no improvement, no round is added any more, at this step or later ones. The state (best
score and round) spans the steps, so patience counts across them. Between steps the
booster keeps its later rounds (training continues from them) but predicts with the best
round; once stopped or at the last step it is cut to the best round, so the exported model
is the evaluated one, with no extra round.

Plan-time checks: neither library declares scikit-learn parameter constraints, so searched
values are checked against :data:`LGBM_BOUNDS` / :data:`XGB_BOUNDS` (from the libraries'
documentation), and then by a one-round fit on 40 synthetic rows, where each library
validates its own parameters (an unknown ``boosting_type`` or ``tree_method``...).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LGBM_BOUNDS", "XGB_BOUNDS", "Stopping", "add_rounds", "default_patience", "rounds_of",
           "validate_lgbm", "validate_xgboost"]

#: XGBoost metrics where higher is better (the rest are losses); as xgboost.callback.EarlyStopping decides.
_XGB_MAXIMIZE = ("auc", "aucpr", "pre", "map", "ndcg")


def default_patience(full: int) -> int:
    """``early_stopping_rounds`` when not set: max(10, 10% of the full number of rounds)."""
    return max(10, math.ceil(0.1 * full))


@dataclass
class Stopping:
    """Early stopping state of one booster, across budget steps.

    Attributes:
        patience: Rounds without improvement before stopping; None: no early stopping (every round is kept).
        rounds: Rounds trained so far.
        best_round: Rounds of the best model so far (1-based count); 0 before any.
        best_score: Its validation score.
        stopped: True once the patience ran out: no round is added any more.
        best_results: LightGBM's evaluation list at the best round (what its early stop reports).
    """

    patience: int | None
    rounds: int = 0
    best_round: int = 0
    best_score: float = math.nan
    stopped: bool = False
    best_results: Any = field(default=None, repr=False)

    def update(self, rounds: int, score: float, higher: bool) -> bool:
        """Record the validation score after ``rounds`` rounds; True when training must stop."""
        self.rounds = rounds
        if self.best_round == 0 or (score > self.best_score if higher else score < self.best_score):
            self.best_round, self.best_score = rounds, score
        if self.patience is not None and rounds - self.best_round >= self.patience:
            self.stopped = True
        return self.stopped

    @property
    def kept(self) -> int:
        """Rounds the model predicts with: the best round with early stopping, else every round."""
        return self.best_round if self.patience is not None and self.best_round else self.rounds


def _is_lightgbm(model: Any) -> bool:
    return type(model).__module__.startswith("lightgbm")


def rounds_of(model: Any) -> int:
    """Rounds in a fitted LightGBM / XGBoost estimator's booster."""
    if _is_lightgbm(model):
        return int(model.booster_.current_iteration())
    return int(model.get_booster().num_boosted_rounds())


class _LightGBMStopper:
    """LightGBM callback (``callbacks=`` of ``fit``) keeping :class:`Stopping` across calls."""

    order = 30  # after LightGBM's own callbacks, as its early_stopping
    before_iteration = False

    def __init__(self, state: Stopping, cut: bool) -> None:
        self.state, self.cut = state, cut

    def __call__(self, env: Any) -> None:
        from lightgbm.callback import EarlyStopException

        result = env.evaluation_result_list[0]  # the first metric on the validation rows
        before = self.state.best_round
        stop = self.state.update(env.iteration + 1, float(result[2]), bool(result[3]))
        if self.state.best_round != before:
            self.state.best_results = list(env.evaluation_result_list)
        # LightGBM keeps the rounds up to best_iteration when the exception is raised (the fit
        # saves the model with num_iteration=best): raise at the last round too, to cut there.
        if stop or (self.cut and env.iteration == env.end_iteration - 1):
            raise EarlyStopException(self.state.best_round - 1, self.state.best_results)


def _xgboost_stopper(state: Stopping, cut: bool) -> Any:
    from xgboost.callback import TrainingCallback

    # XGBoost numbers the epochs of each training call from 0, also when it continues a booster.
    before = state.rounds

    class _XGBoostStopper(TrainingCallback):
        """XGBoost callback keeping :class:`Stopping` across calls; cuts the booster at the best round."""

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            metrics = next(iter(evals_log.values()))
            name, values = list(metrics.items())[-1]  # XGBoost's early stopping also uses the last metric
            value = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            return state.update(before + epoch + 1, float(value), name.startswith(_XGB_MAXIMIZE))

        def after_training(self, model: Any) -> Any:
            if (state.stopped or cut) and state.best_round < model.num_boosted_rounds():
                model = model[: state.best_round]
            # The scikit-learn wrapper predicts with rounds [0, best_iteration + 1).
            model.set_attr(best_iteration=str(state.best_round - 1), best_score=str(state.best_score))
            return model

    return _XGBoostStopper()


def add_rounds(
    model: Any, X: Any, y: Any, rounds: int, state: Stopping, *, valid: tuple[Any, Any] | None, cut: bool,
    fit_kwargs: Mapping[str, Any],
) -> None:
    """Train ``rounds`` more rounds of a LightGBM / XGBoost estimator on ``X``, ``y``, in place.

    Args:
        model: The estimator; fitted already unless ``state.rounds`` is 0.
        X: Training features (preprocessed).
        y: Training labels.
        rounds: Rounds to add (at least 1).
        state: The early stopping state, updated.
        valid: Validation rows (preprocessed) for early stopping; None when it is off.
        cut: Whether to cut the booster at the best round after training (the last step).
        fit_kwargs: Other ``fit`` arguments (``sample_weight``).
    """
    kwargs: dict[str, Any] = dict(fit_kwargs)
    early = state.patience is not None and valid is not None
    first = state.rounds == 0
    model.set_params(n_estimators=rounds)
    if _is_lightgbm(model):
        if not first:
            kwargs["init_model"] = model.booster_
        if early:
            assert valid is not None
            kwargs.update(eval_set=[valid], callbacks=[_LightGBMStopper(state, cut)])
        with warnings.catch_warnings():
            # LightGBM 4.7 deprecates eval_set for eval_X / eval_y, but its classifier encodes the
            # labels of eval_set only (string labels fail through eval_y).
            warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
            model.fit(X, y, **kwargs)
        if early and not (state.stopped or cut):
            # Training continues from every round, but the model predicts with the best one so far.
            model.booster_.best_iteration = state.best_round
    else:
        if not first:
            kwargs["xgb_model"] = model.get_booster()
        if early:
            assert valid is not None
            kwargs.update(eval_set=[valid], verbose=False)
            model.set_params(callbacks=[_xgboost_stopper(state, cut)])
        try:
            model.fit(X, y, **kwargs)
        finally:
            # A callback is no part of the fitted model (nor of its export).
            model.set_params(callbacks=None)
    if not early:
        state.rounds += rounds
    # The estimator's own record of its size: the rounds it predicts with.
    model.set_params(n_estimators=state.kept)


# -- plan-time checks -----------------------------------------------------------------------

#: (low, high, kind) per parameter; kind ``int`` or ``float``; an open end is None.
Bounds = dict[str, tuple[float | None, float | None, str]]
_COMMON: Bounds = {
    "n_estimators": (1, None, "int"), "learning_rate": (0.0, 1.0, "float>"), "min_child_weight": (0.0, None, "float"),
    "subsample": (0.0, 1.0, "float>"), "colsample_bytree": (0.0, 1.0, "float>"), "reg_alpha": (0.0, None, "float"),
    "reg_lambda": (0.0, None, "float"), "n_jobs": (1, None, "int"),
}
LGBM_BOUNDS: Bounds = {
    **_COMMON, "num_leaves": (2, 131072, "int"), "max_depth": (None, None, "int"), "min_child_samples": (0, None, "int"),
    "min_split_gain": (0.0, None, "float"), "subsample_for_bin": (1, None, "int"), "subsample_freq": (0, None, "int"),
}
XGB_BOUNDS: Bounds = {
    **_COMMON, "max_depth": (0, None, "int"), "max_leaves": (0, None, "int"), "gamma": (0.0, None, "float"),
    "max_bin": (2, None, "int"), "max_delta_step": (0.0, None, "float"), "scale_pos_weight": (0.0, None, "float>"),
    "colsample_bylevel": (0.0, 1.0, "float>"), "colsample_bynode": (0.0, 1.0, "float>"),
    "num_parallel_tree": (1, None, "int"),
}


def _bounded(bounds: Bounds, param: str, value: Any) -> str | None:
    if param not in bounds or value is None:
        return None
    low, high, kind = bounds[param]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int" and not (number and float(value).is_integer()):
        return f"{param} must be an integer, got {value!r}"
    if not number or not math.isfinite(float(value)):
        return f"{param} must be a number, got {value!r}"
    open_low = kind == "float>"
    if low is not None and (value <= low if open_low else value < low):
        return f"{param} must be {'>' if open_low else '>='} {low}, got {value!r}"
    if high is not None and value > high:
        return f"{param} must be <= {high}, got {value!r}"
    return None


def _probe(model: Any, param: str, value: Any) -> str | None:
    """The library's own verdict: one round on 40 synthetic rows with ``param = value``."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int) if hasattr(model, "predict_proba") else X[:, 0]
    try:
        model.set_params(**{param: value})
        model.set_params(n_estimators=1, n_jobs=1)
        model.fit(X, y)
    except Exception as exc:  # each library raises its own error type (LightGBMError, XGBoostError, ValueError)
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def validate_lgbm(param: str, value: Any, model: Any) -> str | None:
    """Why ``param = value`` is not valid for LightGBM (``model``: an unfitted estimator), or None."""
    return _bounded(LGBM_BOUNDS, param, value) or _probe(model, param, value)


def validate_xgboost(param: str, value: Any, model: Any) -> str | None:
    """Why ``param = value`` is not valid for XGBoost (``model``: an unfitted estimator), or None."""
    return _bounded(XGB_BOUNDS, param, value) or _probe(model, param, value)
