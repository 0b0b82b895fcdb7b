"""The Pareto front of a run's trials: who is on it, the reference point, the hypervolume."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from automl.interfaces import Constraint, Objective
from automl.pareto import hypervolume, pareto_front
from automl.records import Front, FrontMember

__all__ = ["compute_front", "reference_point"]


def _values(trial: Mapping[str, Any], objectives: Sequence[Objective]) -> list[float] | None:
    metrics = trial.get("metrics") or {}
    out = []
    for o in objectives:
        v = metrics.get(o.metric)
        if v is None or not math.isfinite(float(v)):
            return None
        out.append(o.to_min(float(v)))
    return out


def reference_point(points: np.ndarray, objectives: Sequence[Objective]) -> list[float]:
    """Per objective: the spec's ``reference`` if given, else the worst value seen plus 10% of the range.

    A data-derived reference makes hypervolumes comparable only within a run; give
    ``reference`` in the spec to compare runs.
    """
    ref = []
    for k, o in enumerate(objectives):
        if o.reference is not None:
            ref.append(o.to_min(o.reference))
            continue
        col = points[:, k]
        worst, best = float(col.max()), float(col.min())
        span = worst - best
        ref.append(worst + (0.1 * span if span > 0 else max(abs(worst) * 0.1, 1e-9)))
    return ref


def compute_front(
    trials: Sequence[Mapping[str, Any]],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint] = (),
    *,
    full_budget_only: bool = True,
) -> Front:
    """The front over ``trials`` (:class:`~automl.records.TrialRecord` or rows of the same keys).

    Returns:
        The :class:`~automl.records.Front`: its members (number, config, metrics; no model yet),
        the reference in the objectives' own directions, the hypervolume, and how many trials
        were candidates and feasible. ``objectives`` and ``constraints`` are filled in.
    """
    described: dict[str, Any] = {
        "objectives": [{"metric": o.metric, "mode": o.mode, "reference": o.reference} for o in objectives],
        "constraints": [str(c) for c in constraints],
    }
    usable = [t for t in trials if t["status"] == "completed" or (not full_budget_only and t["status"] == "stopped")]
    rows, points, violations = [], [], []
    for t in usable:
        values = _values(t, objectives)
        if values is None:
            continue
        metrics = t.get("metrics") or {}
        rows.append(t)
        points.append(values)
        violations.append(sum(c.violation(metrics.get(c.metric)) for c in constraints))
    if not rows:
        return Front(**described)
    pts = np.asarray(points, dtype=float)
    viol = np.asarray(violations, dtype=float)
    members = pareto_front(pts, viol)
    feasible = viol <= 0
    ref = reference_point(pts[feasible] if feasible.any() else pts, objectives)
    hv = hypervolume(pts[members], ref) if members else 0.0
    members.sort(key=lambda i: tuple(pts[i]))
    return Front(
        members=tuple(FrontMember(int(rows[i]["number"]), dict(rows[i].get("config") or {}),
                                  dict(rows[i].get("metrics") or {})) for i in members),
        reference=[o.to_min(r) for o, r in zip(objectives, ref)],  # back to each objective's direction
        hypervolume=float(hv),
        candidates=len(rows),
        feasible=int(feasible.sum()),
        **described,
    )
