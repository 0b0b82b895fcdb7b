"""The offline analysis of kept tabular runs (benchmarks/tabular/diagnose.py): its ways of choosing from stored
out-of-fold predictions and the honest (split-half) estimate. Synthetic predictions; nothing runs a search."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.tabular import diagnose


def two_class(p1: list[float]) -> np.ndarray:
    p = np.asarray(p1, dtype=float)
    return np.stack([1 - p, p], axis=1)


def test_the_logloss_if_better_takes_the_log_loss_selection_only_where_it_beats_the_best_single() -> None:
    y = np.array([1, 1, 1])
    # Each right on two of three rows, a different two: averaged, any two are right on all three.
    a, b, c = two_class([0.9, 0.9, 0.4]), two_class([0.9, 0.4, 0.9]), two_class([0.4, 0.9, 0.9])
    w = diagnose._logloss_if_better([a, b, c], y, [0, 1])
    assert diagnose._acc(sum(wi * p for wi, p in zip(w, [a, b, c], strict=True)), y, [0, 1]) == 1.0
    assert np.count_nonzero(w) >= 2
    # A hesitant model right everywhere and a confident one wrong once: the log-loss selection keeps the
    # confident one alone, worse on accuracy than the hesitant one, so the accuracy selection is taken.
    pair = [two_class([0.6, 0.6, 0.6]), two_class([0.99, 0.99, 0.4])]
    assert diagnose._greedy(pair, y, [0, 1], on="logloss").tolist() == [0.0, 1.0]
    w = diagnose._logloss_if_better(pair, y, [0, 1])
    assert w.tolist() == diagnose._greedy(pair, y, [0, 1]).tolist() and w[0] > 0


def test_the_honest_estimate_scores_each_choice_on_rows_it_did_not_see() -> None:
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 50)
    right = two_class(np.where(y == 1, 0.8, 0.2).tolist())
    # Labels it "predicts" by chance: on the rows a method chose it on it may look good, on the others it is ~50%.
    noise = [two_class(rng.uniform(size=100).tolist()) for _ in range(5)]
    cands = [{"valid": p} for p in [*noise, right]]
    some = {k: diagnose.METHODS[k] for k in ("single(acc)", "greedy(acc)", "logloss-if-better")}
    inner = diagnose.honest(cands, y, [0, 1], repeats=1, methods=some)
    assert set(inner) == set(some)
    assert inner["single(acc)"] == pytest.approx(1.0)
    only_noise = diagnose.honest([{"valid": p} for p in noise], y, [0, 1], repeats=1, methods=some)
    assert only_noise["single(acc)"] < 0.65
