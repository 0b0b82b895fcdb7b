"""A surrogate benchmark of learning curves: a regressor fitted on a table of recorded curves answers any point.

A table of recorded learning curves (one row per configuration, one column per budget step) answers a method only at
the configurations it holds; a method's own proposal must be snapped onto one of them (nearest neighbour), which
handicaps model-based searchers whose proposals are not uniform draws. The standard remedy (HPOBench's and YAHPO
Gym's surrogate benchmarks, Eggensperger et al. 2015) fits a regressor on the table and answers every proposal with
its prediction. Here the regressor is scikit-learn's multi-output ``ExtraTreesRegressor`` (or ``RandomForestRegressor``,
or the 1-nearest-neighbour regressor the table view uses, for comparison): a point of the unit cube is mapped to its
whole curve at once, so each predicted curve is an average of recorded curves (of the configurations in the same
leaves) and keeps their shape across budget steps. Curves are losses (lower is better), averaged in log space
(``log_offset``): a leaf mixing a 2%-error curve with a diverged 90%-error one then predicts ~13% rather than 46%,
which keeps the top of the distribution apart (the held-out rank correlation among the best quarter of R3's
configurations is 0.73 in log space against 0.60 on the raw error; benchmarks/scheduling/RESULTS.md).

:func:`held_out` scores a model on configurations it was not fitted on (K folds over configurations): the Spearman
rank correlation of the predicted and recorded values at the final step (what a searcher ranks by) and at a few
early steps (what a rung scheduler ranks by), among the best quarter of the configurations (where a target lies),
and the mean absolute error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MODELS", "CurveSurrogate", "HeldOut", "held_out"]

#: Regressors a surrogate can use (``model`` argument).
MODELS = ("extra-trees", "random-forest", "nearest")


def _regressor(model: str, seed: int) -> Any:
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.neighbors import KNeighborsRegressor

    if model == "extra-trees":
        # scikit-learn's defaults (leaves of one, every feature at each split): on R3 they ranked held-out
        # configurations best among leaves of 1-3 and half the features; 100 trees keep one prediction ~10 ms.
        return ExtraTreesRegressor(n_estimators=100, random_state=seed, n_jobs=1)
    if model == "random-forest":
        return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1)
    if model == "nearest":
        return KNeighborsRegressor(n_neighbors=1)
    raise ValueError(f"unknown surrogate model {model!r}; valid: {', '.join(MODELS)}")


class CurveSurrogate:
    """A regressor from points of the unit cube to loss curves (one value per budget step), fitted on a table.

    Args:
        points: ``(n, d)`` points of the unit cube, one per recorded configuration.
        curves: ``(n, steps)`` the recorded losses (e.g. 1 - validation accuracy after each epoch), all
            greater than ``-log_offset``.
        model: One of :data:`MODELS`.
        seed: The regressor's random state: the same seed and table give the same predictions.
        log_offset: Fit ``log(loss + log_offset)`` (None: the losses themselves).
    """

    def __init__(self, points: Any, curves: Any, *, model: str = "extra-trees", seed: int = 0,
                 log_offset: float | None = 1e-3) -> None:
        x, y = np.asarray(points, dtype=float), np.asarray(curves, dtype=float)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 2:
            raise ValueError(f"a surrogate needs (n, d) points and (n, steps) curves with n >= 2, got {x.shape} "
                             f"and {y.shape}")
        if log_offset is not None and not (y + log_offset > 0).all():
            raise ValueError(f"a loss is <= -log_offset ({-log_offset}): its log is undefined")
        self.model, self.seed, self.steps, self.log_offset = model, seed, y.shape[1], log_offset
        self.regressor = _regressor(model, seed).fit(x, y if log_offset is None else np.log(y + log_offset))

    def predict(self, points: Any) -> np.ndarray:
        """The ``(m, steps)`` predicted loss curves of ``(m, d)`` points."""
        x = np.atleast_2d(np.asarray(points, dtype=float))
        trees = getattr(self.regressor, "estimators_", None)
        if trees is not None and len(x) <= 16:
            # A method asks one point at a time: the forest's own predict spends ~20x the trees' time checking its
            # input and dispatching to joblib. The trees' public ``tree_.predict``, summed in the forest's order and
            # divided as it divides, gives the same numbers (a test compares them).
            x32 = x.astype(np.float32)
            out = np.zeros((len(x), self.steps))
            for tree in trees:
                out += tree.tree_.predict(x32).reshape(len(x), self.steps)
            out /= len(trees)
        else:
            out = np.asarray(self.regressor.predict(x), dtype=float).reshape(-1, self.steps)
        return out if self.log_offset is None else np.exp(out) - self.log_offset


@dataclass(frozen=True)
class HeldOut:
    """How well a surrogate predicts configurations it was not fitted on (pooled over K folds).

    Attributes:
        model: The regressor.
        spearman: Step (1-based) -> Spearman rank correlation of predicted and recorded losses over all configurations.
        spearman_best_quarter: The same at the final step among the recorded best quarter (lowest final losses).
        mae: Mean absolute error at the final step.
        top_overlap: Of the recorded best 10% at the final step, the share the predictions also put in their best 10%.
    """

    model: str
    spearman: dict[int, float]
    spearman_best_quarter: float
    mae: float
    top_overlap: float


def held_out(points: Any, curves: Any, *, model: str = "extra-trees", folds: int = 5, seed: int = 0,
             steps: Sequence[int] = (1, 3, 9), log_offset: float | None = 1e-3) -> HeldOut:
    """Score ``model`` by K-fold cross-validation over configurations (each predicted by a model that never saw it)."""
    from scipy.stats import spearmanr
    from sklearn.model_selection import KFold

    x, y = np.asarray(points, dtype=float), np.asarray(curves, dtype=float)
    predicted = np.empty_like(y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        predicted[test] = CurveSurrogate(x[train], y[train], model=model, seed=seed,
                                         log_offset=log_offset).predict(x[test])
    last = y.shape[1]
    rho = {s: float(spearmanr(predicted[:, s - 1], y[:, s - 1]).statistic) for s in (*steps, last) if s <= last}
    best = y[:, -1] <= np.quantile(y[:, -1], 0.25)
    k = max(1, round(0.1 * len(y)))
    top_true, top_pred = set(np.argsort(y[:, -1])[:k]), set(np.argsort(predicted[:, -1])[:k])
    return HeldOut(model, rho, float(spearmanr(predicted[best, -1], y[best, -1]).statistic),
                   float(np.abs(predicted[:, -1] - y[:, -1]).mean()), len(top_true & top_pred) / k)
