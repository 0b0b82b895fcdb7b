"""The cross-validation parts of a search: ``data.folds`` folds, ``data.repeats`` times.

One function, used by the trainer (which fits one pipeline per part) and by the ensemble side
(:mod:`automl_sklearn.selection`, which scores blends of out-of-fold predictions on the same parts),
so both cut the rows alike. Round 0 is scikit-learn's ``StratifiedKFold`` (``KFold`` for regression)
shuffled with the split's seed, as with one round; each further round shuffles anew with a seed
drawn from (the split's seed, the round). scikit-learn's ``RepeatedStratifiedKFold`` is not used:
its first round differs from the single-round folds, and a run of one round would not be a prefix
of a repeated one.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fold_parts(y: Any, task: str, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training positions, validation positions) of each part, round by round (``folds * repeats`` of them)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    kind = StratifiedKFold if task == "classification" else KFold
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for round_ in range(max(1, int(repeats))):
        state = seed if round_ == 0 else int(np.random.SeedSequence([seed, round_]).generate_state(1)[0])
        parts.extend(kind(int(folds), shuffle=True, random_state=state).split(np.zeros(len(y)), y))
    return parts
