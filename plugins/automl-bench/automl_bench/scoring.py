"""Figures of a run (regret, hypervolume, anytime curve) and of many runs (intervals, ranks, Bayesmark score).

Hypervolumes come from :func:`automl.pareto.hypervolume`, the routine the engine's front
uses (cross-checked against Optuna's in the tests); intervals are Student-t intervals from
scipy; ranks are scipy's ``rankdata`` (ties share their mean rank).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from automl.plugin import hypervolume
from automl_bench.base import Problem, Trace

__all__ = ["REGRET_FLOOR", "bayesmark_normalise", "run_figures", "t_interval"]

#: log10 regret is reported with the regret floored here: a run that hits the optimum to
#: float precision would otherwise score -inf and swamp every mean.
REGRET_FLOOR = 1e-12


def _hv(points: list[list[float]], reference: Sequence[float]) -> float:
    return hypervolume(np.asarray(points, dtype=float), reference) if points else 0.0


def best_so_far(losses: Sequence[list[float] | None], reference: Sequence[float] | None) -> float | None:
    """The anytime figure of some evaluations: the hypervolume at ``reference`` with several objectives,
    else the best (lowest) loss; failed evaluations (None) do not count."""
    seen = [v for v in losses if v is not None]
    if reference is not None:
        return _hv(seen, reference)
    return min(v[0] for v in seen) if seen else None


def run_figures(problem: Problem, trace: Trace, batch: int) -> dict[str, Any]:
    """What the store keeps about one run: final value, regret or hypervolume regret, curve.

    Single objective: ``final_value`` is the best loss, ``regret`` its distance to the
    known optimum. Several objectives: ``final_value`` is the hypervolume of every
    successful evaluation at the problem's reference point, ``hv_regret`` the distance to
    the true front's. The curve holds the same figure after each batch of evaluations.
    """
    ok = [v for v in trace.losses if v is not None]
    evals: list[int] = []
    best: list[float | None] = []
    multi = problem.n_objectives > 1
    for end in [*range(batch, len(trace.losses), batch), len(trace.losses)]:
        if evals and evals[-1] == end:
            continue
        evals.append(end)
        best.append(best_so_far(trace.losses[:end], problem.reference if multi else None))
    final: float | None
    regret = hv_regret = None
    if multi:
        assert problem.reference is not None
        final = _hv(ok, problem.reference)
        if problem.max_hypervolume is not None:
            hv_regret = problem.max_hypervolume - final
    else:
        final = min(v[0] for v in ok) if ok else None
        if final is not None and problem.optimum is not None:
            regret = final - problem.optimum
    return {
        "final_value": final,
        "regret": regret,
        "hv_regret": hv_regret,
        # A method that measures its own curve (an engine task's best value against cumulative cost) keeps it.
        "curve": trace.curve if trace.curve is not None else {"evals": evals, "best": best},
        "losses": trace.losses,
    }


def log10_regret(regret: float) -> float:
    return math.log10(max(regret, REGRET_FLOOR))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t interval of the mean (low = high = mean for one value)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2 or float(x.std()) == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, len(x) - 1, loc=mean, scale=stats.sem(x))
    return mean, float(low), float(high)


def bayesmark_normalise(perf: float, opt: float, clip: float) -> float:
    """Bayesmark's normalised loss ``(perf - opt) / (clip - opt)`` clipped to [-1, 1].

    ``opt`` is the best value any method found, ``clip`` the median of one random draw; 0
    is the best anyone did, 1 no better than a random config. When ``clip == opt`` (a
    task on which random draws already reach the best value) every run scores 0.
    """
    if clip == opt:
        return 0.0
    return float(np.clip((perf - opt) / (clip - opt), -1.0, 1.0))


def average_ranks(scores: dict[str, dict[Any, float]]) -> dict[str, float]:
    """Mean rank per method over the blocks (task, seed) every method ran; lower scores rank first.

    Args:
        scores: ``{method: {block: score}}``.
    """
    methods = sorted(scores)
    blocks = set.intersection(*(set(s) for s in scores.values())) if scores else set()
    if not blocks:
        return {m: math.nan for m in methods}
    totals = dict.fromkeys(methods, 0.0)
    for block in blocks:
        ranks = stats.rankdata([scores[m][block] for m in methods])
        for m, r in zip(methods, ranks, strict=True):
            totals[m] += float(r)
    return {m: totals[m] / len(blocks) for m in methods}
