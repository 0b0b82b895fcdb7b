"""One recipe of the ``sklearn`` trainer fitted on one set of rows, grown budget step by budget step.

Kept apart from :mod:`automl_sklearn.trainer` so that loading the plugin (every ``automl`` command,
every trial worker) does not import scikit-learn: the trainer imports this module when it fits.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_sample_weight

from automl_sklearn.boosting import Stopping, add_rounds
from automl_sklearn.build import Recipe
from automl_sklearn.fidelity import RowShares

__all__ = ["Fit"]


class Fit:
    """One recipe fitted on one set of rows and grown budget step by budget step.

    Growth (``shares`` None): the preprocessing is fitted once, at the first step, on these
    rows; a model that grows grows at each step, any other is fitted at the first step.
    Row shares (``shares`` set): at each step the preprocessing and the model are fitted
    again, at full size, on that step's share of the rows (see :mod:`automl_sklearn.fidelity`).

    Args:
        recipe: What to fit.
        X: Training features.
        y: Training labels.
        classes: Every class of the task (``partial_fit`` needs them).
        valid: Validation rows for a LightGBM / XGBoost model's early stopping; None: no early stopping.
        shares: Row shares per step; None: every row at every step.
        rounds: A fixed number of boosting rounds, without early stopping (the refit on all
            rows under ``data.folds``: the folds' mean best round).
    """

    def __init__(
        self, recipe: Recipe, X: pd.DataFrame, y: pd.Series, classes: list[Any], *,
        valid: tuple[pd.DataFrame, pd.Series] | None = None, shares: RowShares | None = None, rounds: int | None = None,
    ) -> None:
        self.recipe = recipe
        self.growth = recipe.growth
        self.X, self.y, self.classes = X, y, classes
        self.valid = valid
        self.shares = shares
        self.rounds = rounds
        self.train_rows = 0
        self._reset(X, y)

    def _reset(self, X: pd.DataFrame, y: pd.Series) -> None:
        """Unfitted preprocessing and model, to be fitted on ``X``, ``y``."""
        self.prep = clone(self.recipe.prep) if self.recipe.prep is not None else None
        self.model = clone(self.recipe.model)
        self.full = self.recipe.full_size() if self.growth else 1
        if self.rounds is not None:
            self.full = self.rounds
        self.size = 0
        self._rows = (X, y)
        self.kwargs: dict[str, Any] = {}
        if self.recipe.sample_weight is not None:
            self.kwargs["sample_weight"] = compute_sample_weight(self.recipe.sample_weight, y)
        boosting = self.growth is not None and self.growth.kind == "boosting"
        patience = self.recipe.patience if self.valid is not None and self.rounds is None else None
        self.stopping = Stopping(patience) if boosting else None
        self._Xt: Any = None

    def grow(self, step: int, steps: int) -> bool:
        """Fit budget step ``step`` of ``steps``; False when nothing changed."""
        if self.shares is not None:
            rows = self.shares.rows(step)
            if len(rows) <= self.train_rows:
                return False
            self._reset(self.X.iloc[rows], self.y.iloc[rows])
            self._fit_to(self.full, last=True)
            self.train_rows = len(rows)
            return True
        self.train_rows = len(self.y)
        target = self.full if self.growth is None else max(1, math.ceil(self.full * step / steps - 1e-9))
        if target <= self.size or (self.stopping is not None and self.stopping.stopped):
            return False
        self._fit_to(target, last=step == steps)
        return True

    def _fit_to(self, target: int, *, last: bool) -> None:
        X, y = self._rows
        if self._Xt is None:
            self._Xt = self.prep.fit_transform(X, y) if self.prep is not None else X
        if self.stopping is not None:
            # LightGBM / XGBoost: add the rounds to the booster so far (automl_sklearn.boosting).
            add_rounds(self.model, self._Xt, y, target - self.size, self.stopping, valid=self._valid_rows(y),
                       cut=last, fit_kwargs=self.kwargs)
        elif self.growth is None or (self.size == 0 and target >= self.full):
            # Fitted in one go (a single budget step included): scikit-learn's own fit, with its own
            # stopping rules (the MLP's tol / n_iter_no_change), exactly as outside automl.
            self.model.fit(self._Xt, y, **self.kwargs)
        elif self.growth.kind == "warm_start":
            # scikit-learn keeps the trees / iterations already fitted and adds the rest.
            self.model.set_params(warm_start=True, **{self.growth.param: target})
            self.model.fit(self._Xt, y, **self.kwargs)
        else:  # epochs: one partial_fit pass over the rows per epoch
            extra = {"classes": self.classes} if is_classifier(self.model) else {}
            for _ in range(target - self.size):
                self.model.partial_fit(self._Xt, y, **extra, **self.kwargs)
        self.size = target

    def _valid_rows(self, y: pd.Series) -> tuple[Any, Any] | None:
        """The validation rows through the fitted preprocessing, for early stopping (None: off)."""
        if self.valid is None or self.stopping is None or self.stopping.patience is None:
            return None
        X, yv = self.valid
        if is_classifier(self.model):
            # A class the training rows lack cannot be encoded by the library: leave its rows out of early stopping.
            seen = yv.isin(set(pd.unique(y)))
            X, yv = X[seen.to_numpy()], yv[seen.to_numpy()]
        if len(yv) == 0:
            return None  # nothing to stop on: every round is kept
        return (self.prep.transform(X) if self.prep is not None else X), yv

    @property
    def kept_rounds(self) -> int | None:
        """Boosting rounds the model predicts with (None for other models)."""
        return self.stopping.kept if self.stopping is not None else None

    @property
    def pipeline(self) -> Pipeline:
        steps: list[tuple[str, Any]] = [("prep", self.prep)] if self.prep is not None else []
        return Pipeline([*steps, ("model", self.model)])
