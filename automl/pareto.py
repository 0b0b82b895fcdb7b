"""Non-dominated sorting, crowding distance and exact hypervolume.

Everything works in minimisation form (see :meth:`Objective.to_min`). Written here
rather than imported because the core must not depend on an optimisation library for
its final front; the tests check it against brute force and known values, and the
benchmarks against optuna's routine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["crowding_distance", "dominates", "hypervolume", "non_dominated_sort", "pareto_front"]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` everywhere and better somewhere (minimising)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated_sort(points: np.ndarray, violations: np.ndarray | None = None) -> list[list[int]]:
    """Fronts of indices, best first (Deb's fast non-dominated sort with constraint domination).

    Args:
        points: ``(n, m)`` objective values, minimised.
        violations: ``(n,)`` total constraint violation; a feasible point (0) dominates an
            infeasible one, and of two infeasible points the smaller violation wins.
    """
    pts = np.asarray(points, dtype=float)
    n = len(pts)
    if n == 0:
        return []
    viol = np.zeros(n) if violations is None else np.asarray(violations, dtype=float)
    le = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)
    lt = np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    dom = le & lt
    feas = viol <= 0
    both_feasible = feas[:, None] & feas[None, :]
    dom = np.where(both_feasible, dom, False)
    dom |= feas[:, None] & ~feas[None, :]
    both_infeasible = ~feas[:, None] & ~feas[None, :]
    dom |= both_infeasible & (viol[:, None] < viol[None, :])
    dominated_by = dom.sum(axis=0)
    fronts: list[list[int]] = []
    current = [i for i in range(n) if dominated_by[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in np.flatnonzero(dom[i]):
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(int(j))
        current = sorted(nxt)
    return fronts


def pareto_front(points: np.ndarray, violations: np.ndarray | None = None) -> list[int]:
    """Indices of the feasible non-dominated points (empty when none is feasible)."""
    fronts = non_dominated_sort(points, violations)
    if not fronts:
        return []
    viol = np.zeros(len(points)) if violations is None else np.asarray(violations, dtype=float)
    return [i for i in fronts[0] if viol[i] <= 0]


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point within one front (inf at the extremes)."""
    pts = np.asarray(points, dtype=float)
    n, m = pts.shape if pts.ndim == 2 else (len(pts), 0)
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(pts[:, k], kind="stable")
        span = pts[order[-1], k] - pts[order[0], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (pts[order[2:], k] - pts[order[:-2], k]) / span
    return dist


def hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """Exact volume dominated by ``points`` and bounded by ``reference`` (minimising).

    Points that do not strictly dominate the reference contribute nothing. Uses a sweep
    in two dimensions and slicing along the last objective above (fine for the fronts
    of a search: hundreds of points, two to four objectives).
    """
    ref = np.asarray(reference, dtype=float)
    pts = np.asarray(points, dtype=float).reshape(-1, len(ref))
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(_hv(pts, ref))


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    m = pts.shape[1]
    if m == 1:
        return float(ref[0] - pts[:, 0].min())
    if m == 2:
        order = np.argsort(pts[:, 0], kind="stable")
        volume, best_y = 0.0, ref[1]
        for x, y in pts[order]:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    order = np.argsort(pts[:, -1], kind="stable")
    sorted_pts = pts[order]
    volume = 0.0
    for i in range(len(sorted_pts)):
        upper = sorted_pts[i + 1, -1] if i + 1 < len(sorted_pts) else ref[-1]
        height = upper - sorted_pts[i, -1]
        if height > 0:
            volume += height * _hv(sorted_pts[: i + 1, :-1], ref[:-1])
    return volume
