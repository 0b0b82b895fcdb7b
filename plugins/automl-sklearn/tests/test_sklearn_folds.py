"""Repeated cross-validation parts (``data.folds`` x ``data.repeats``), as the trainer and the ensemble side cut them."""

from __future__ import annotations

import numpy as np
import pytest
from automl_sklearn.folds import fold_parts
from sklearn.model_selection import KFold, StratifiedKFold


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_each_round_covers_every_row_once_and_the_first_is_the_single_rounds_folds(task: str) -> None:
    y = np.random.default_rng(1).integers(0, 3, 90) if task == "classification" else np.linspace(0, 1, 90)
    parts = fold_parts(y, task, 3, 4, seed=7)
    assert len(parts) == 12
    for r in range(4):
        round_ = parts[3 * r: 3 * r + 3]
        assert sorted(np.concatenate([va for _, va in round_]).tolist()) == list(range(90))
        for train, valid in round_:
            assert not set(train) & set(valid) and len(train) + len(valid) == 90
    kind = StratifiedKFold if task == "classification" else KFold
    single = list(kind(3, shuffle=True, random_state=7).split(np.zeros(90), y))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(parts[:3], single, strict=True))
    assert fold_parts(y, task, 3, 1, seed=7)[0][1].tolist() == single[0][1].tolist()
    # Later rounds are shuffled anew (not the first round again), and the same seed cuts the same parts.
    firsts = [frozenset(parts[3 * r][1].tolist()) for r in range(4)]
    assert len(set(firsts)) == 4
    again = fold_parts(y, task, 3, 4, seed=7)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(parts, again, strict=True))
