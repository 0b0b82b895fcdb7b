"""Row-share fidelity: a model fitted at each budget step on a growing share of the training rows.

``trainer.params.fidelity`` (with ``steps > 1``):

- ``auto`` (default): a model that grows (forest and extra-trees trees, ``hgb``, ``lgbm`` and
  ``xgboost`` rounds, bagging members, MLP epochs) grows over the steps on every training
  row; any other model (linear, kNN, SVM, tree, AdaBoost, voting, stacking) is fitted at each
  step on a share of the rows.
- ``rows``: every model is fitted at each step, at its full size, on a share of the rows.
- ``growth``: models that grow grow; the others are fitted once, at the first step, on every row.

The schedule is geometric with ``eta = 2``: step ``s`` of ``S`` uses ``n / 2**(S - s)`` rows
(4 steps: 1/8, 1/4, 1/2, all), but at least :data:`MIN_ROWS` rows and, for classification,
:data:`MIN_PER_CLASS` rows of every class (all of a class's rows when it has fewer); a
data set too small for the schedule gets fewer distinct shares (a step whose share is no
larger than the previous step's refits nothing), said once per process in a warning.

The rows are a nested, stratified subsample: one seeded order of the training rows
(:func:`nested_order`, seeded by the data split's seed, so every trial of a search uses the
same rows), of which each step takes a prefix; each share contains the previous one.
Each share's preprocessing is fitted on that share's rows only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ETA", "FIDELITIES", "MIN_PER_CLASS", "MIN_ROWS", "RowShares", "nested_order", "share_sizes"]

FIDELITIES = ("auto", "rows", "growth")
#: The schedule's reduction factor: each step doubles the rows of the one before.
ETA = 2
#: The fewest rows a share holds (or every row, on a smaller table).
MIN_ROWS = 30
#: The fewest rows of each class a share holds (or all of that class's rows): 3, so the 3-fold
#: cross-validations inside stacking and calibrated soft voting find every class in each fold.
MIN_PER_CLASS = 3

_log = logging.getLogger(__name__)
_said: set[tuple[int, int]] = set()


def nested_order(y: pd.Series, *, seed: int, stratify: bool) -> np.ndarray:
    """Row positions in an order whose every prefix is a (stratified) random subsample.

    With ``stratify``, rows are interleaved by their rank within their class (a class with
    share p of the rows has about ``p * m`` of any ``m`` first positions), and the first
    :data:`MIN_PER_CLASS` rows of every class come first of all.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    if not stratify:
        return order
    labels = np.asarray(y)[order]
    keys = np.empty(len(order))
    for label in pd.unique(labels):
        where = np.flatnonzero(labels == label)
        rank = np.arange(len(where))
        # Fractional rank within the class, with a random phase so classes do not tie in lockstep.
        keys[where] = (rank + rng.random()) / len(where) - (rank < MIN_PER_CLASS)
    return order[np.argsort(keys, kind="stable")]


def share_sizes(n: int, steps: int, *, minimum: int) -> list[int]:
    """Rows at each of ``steps`` steps: ``n / ETA**(steps - s)``, at least ``minimum``, at most ``n``."""
    return [min(n, max(minimum, math.ceil(n / ETA ** (steps - s)))) for s in range(1, steps + 1)]


@dataclass(frozen=True)
class RowShares:
    """The nested row shares of one set of training rows.

    Attributes:
        order: Row positions, each step taking a prefix.
        sizes: Rows at each step (the last is every row).
    """

    order: np.ndarray
    sizes: list[int]

    @classmethod
    def of(cls, y: pd.Series, steps: int, *, seed: int, classification: bool) -> RowShares:
        n = len(y)
        counts = y.value_counts() if classification else pd.Series(dtype=int)
        minimum = min(n, max(MIN_ROWS, int(np.minimum(counts.to_numpy(), MIN_PER_CLASS).sum())))
        sizes = share_sizes(n, steps, minimum=minimum)
        ideal = [math.ceil(n / ETA ** (steps - s)) for s in range(1, steps + 1)]
        if sizes != ideal and (n, steps) not in _said:
            _said.add((n, steps))
            _log.warning(
                "fidelity: %d training rows are too few for %d row shares halving each step (at least %d rows "
                "per share): the shares are %s (%d distinct)", n, steps, minimum, sizes, len(set(sizes)))
        return cls(nested_order(y, seed=seed, stratify=classification), sizes)

    def rows(self, step: int) -> np.ndarray:
        """Positions of the rows at ``step`` (1-based), in their original order."""
        return np.sort(self.order[: self.sizes[step - 1]])
