from __future__ import annotations

import itertools

import numpy as np
import pytest

from automl.front import compute_front
from automl.interfaces import Constraint, Objective
from automl.pareto import crowding_distance, dominates, hypervolume, non_dominated_sort, pareto_front
from automl.records import FrontMember


def brute_front(points: np.ndarray) -> set[int]:
    return {i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)}


def monte_carlo_hv(points: np.ndarray, ref: np.ndarray, n: int = 200_000) -> float:
    rng = np.random.default_rng(0)
    low = points.min(axis=0)
    samples = low + rng.random((n, len(ref))) * (ref - low)
    dominated = np.zeros(n, dtype=bool)
    for p in points:
        dominated |= np.all(samples >= p, axis=1)
    return float(dominated.mean() * np.prod(ref - low))


@pytest.mark.parametrize("m", [2, 3])
def test_first_front_matches_brute_force(m: int) -> None:
    rng = np.random.default_rng(m)
    pts = rng.random((60, m))
    assert set(pareto_front(pts)) == brute_front(pts)


def test_fronts_partition_and_are_ordered() -> None:
    pts = np.random.default_rng(1).random((40, 2))
    fronts = non_dominated_sort(pts)
    assert sorted(itertools.chain(*fronts)) == list(range(40))
    for earlier, later in itertools.pairwise(fronts):
        for j in later:
            assert any(dominates(pts[i], pts[j]) for i in earlier)


def test_feasible_points_dominate_infeasible_ones() -> None:
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    viol = np.array([0.5, 0.0, 0.0])
    assert pareto_front(pts, viol) == [1]
    assert non_dominated_sort(pts, viol)[0] == [1]
    # Nothing feasible: no front at all.
    assert pareto_front(pts, np.array([1.0, 1.0, 1.0])) == []


def test_hypervolume_exact_small_cases() -> None:
    assert hypervolume(np.array([[0.5, 0.5]]), [1, 1]) == pytest.approx(0.25)
    assert hypervolume(np.array([[0.0, 0.5], [0.5, 0.0]]), [1, 1]) == pytest.approx(0.75)
    assert hypervolume(np.array([[0.5, 0.5, 0.5]]), [1, 1, 1]) == pytest.approx(0.125)
    assert hypervolume(np.array([[2.0, 2.0]]), [1, 1]) == 0.0  # beyond the reference


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_agrees_with_monte_carlo(m: int) -> None:
    rng = np.random.default_rng(10 + m)
    pts = rng.random((25, m))
    ref = np.full(m, 1.1)
    assert hypervolume(pts, ref) == pytest.approx(monte_carlo_hv(pts, ref), rel=0.02)


def test_hypervolume_of_a_dense_zdt1_front_approaches_the_known_value() -> None:
    f1 = np.linspace(0, 1, 1001)
    pts = np.column_stack([f1, 1 - np.sqrt(f1)])
    assert hypervolume(pts, [1.1, 1.1]) == pytest.approx(0.87667, abs=1e-3)


def test_crowding_distance_extremes_are_infinite() -> None:
    pts = np.array([[0.0, 1.0], [0.2, 0.7], [0.5, 0.5], [1.0, 0.0]])
    d = crowding_distance(pts)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert np.all(np.isfinite(d[1:3]))


def test_compute_front_over_store_rows_respects_directions_and_constraints() -> None:
    rows = [
        {"number": 0, "status": "completed", "metrics": {"acc": 0.9, "latency_ms": 1.0}},
        {"number": 1, "status": "completed", "metrics": {"acc": 0.95, "latency_ms": 3.0}},
        {"number": 2, "status": "completed", "metrics": {"acc": 0.8, "latency_ms": 2.0}},  # dominated by 0
        {"number": 3, "status": "completed", "metrics": {"acc": 0.99, "latency_ms": 10.0}},  # violates constraint
        {"number": 4, "status": "failed", "metrics": None},
        {"number": 5, "status": "stopped", "metrics": {"acc": 1.0, "latency_ms": 0.1}},  # not full budget
    ]
    objectives = [Objective("acc", "max"), Objective("latency_ms", "min")]
    front = compute_front(rows, objectives, [Constraint("latency_ms", "<=", 5)])
    assert sorted(front.numbers) == [0, 1]
    assert front.member(1) == FrontMember(1, {}, {"acc": 0.95, "latency_ms": 3.0})  # with its metrics, no model yet
    assert front.hypervolume > 0
    assert front.feasible == 3 and front.candidates == 4  # the completed trials with every objective
    assert front.objectives[0] == {"metric": "acc", "mode": "max", "reference": None}
    with_stopped = compute_front(rows, objectives, [Constraint("latency_ms", "<=", 5)], full_budget_only=False)
    assert with_stopped.numbers == [5]
