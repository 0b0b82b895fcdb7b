"""Benchmark problems: synthetic test functions with known optima, and the task registry.

The test functions are a few lines each, so they are written here rather than taken from
a library (BoTorch or pymoo would bring a large dependency for formulas of five lines);
``tests/test_benchmarks_hpo.py`` checks each against its published optimum. Every problem
is minimised: :meth:`Problem.evaluate` returns one loss per objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl.plugin import Objective, SearchSpace
from automl_bench.base import BenchmarkError, Problem, unit_space
from automl_bench.bayesmark import bayesmark_task_names, make_bayesmark, parse_bayesmark
from automl_bench.engine_tasks import ENGINE_TASKS, engine_task_names, make_engine_task

__all__ = [
    "Problem",
    "SyntheticProblem",
    "SYNTHETIC",
    "make_problem",
    "task_names",
    "branin",
    "hartmann3",
    "hartmann6",
    "zdt1",
    "zdt2",
    "zdt3",
    "dtlz2",
]

#: Hypervolume reference value per objective for the multi-objective problems (benchmarks.md).
REFERENCE = 1.1


@dataclass
class SyntheticProblem(Problem):
    """A closed-form function of the vector ``x0, x1, ...`` (picklable: ``fn`` is a module function)."""

    name: str
    space: SearchSpace
    objectives: tuple[Objective, ...]
    fn: Callable[[np.ndarray], list[float]]
    optimum: float | None = None
    reference: tuple[float, ...] | None = None
    max_hypervolume: float | None = None
    #: Known minimisers (single objective) for the tests.
    minimisers: tuple[tuple[float, ...], ...] = field(default_factory=tuple)

    def evaluate(self, config: Mapping[str, Any]) -> list[float]:
        x = np.array([float(config[name]) for name in self.space], dtype=float)
        return [float(v) for v in self.fn(x)]


# -- single objective (S1) ---------------------------------------------------------------


def branin(x: np.ndarray) -> list[float]:
    """Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887 at three points."""
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    x1, x2 = x[0], x[1]
    return [a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s]


_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_H6_A = np.array([
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
])
_H6_P = 1e-4 * np.array([
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
])


def hartmann3(x: np.ndarray) -> list[float]:
    """Hartmann 3-D on [0, 1]^3; minimum -3.86278."""
    return [float(-np.sum(_H3_ALPHA * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))]


def hartmann6(x: np.ndarray) -> list[float]:
    """Hartmann 6-D on [0, 1]^6; minimum -3.32237."""
    return [float(-np.sum(_H3_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))]


# -- multi-objective (S3) ------------------------------------------------------------------


def _zdt_g(x: np.ndarray) -> float:
    return 1.0 + 9.0 * float(np.sum(x[1:])) / (len(x) - 1)


def zdt1(x: np.ndarray) -> list[float]:
    """ZDT1: convex front f2 = 1 - sqrt(f1) where x1.. = 0."""
    g = _zdt_g(x)
    return [float(x[0]), g * (1 - math.sqrt(x[0] / g))]


def zdt2(x: np.ndarray) -> list[float]:
    """ZDT2: concave front f2 = 1 - f1^2 where x1.. = 0."""
    g = _zdt_g(x)
    return [float(x[0]), g * (1 - (x[0] / g) ** 2)]


def zdt3(x: np.ndarray) -> list[float]:
    """ZDT3: disconnected front, the non-dominated part of f2 = 1 - sqrt(f1) - f1 sin(10 pi f1)."""
    g = _zdt_g(x)
    h = 1 - math.sqrt(x[0] / g) - (x[0] / g) * math.sin(10 * math.pi * x[0])
    return [float(x[0]), g * h]


def dtlz2(x: np.ndarray, m: int = 2) -> list[float]:
    """DTLZ2 with ``m`` objectives: the front is the positive part of the unit sphere (x_M = 0.5)."""
    g = float(np.sum((x[m - 1:] - 0.5) ** 2))
    angles = x[: m - 1] * math.pi / 2
    out = []
    for j in range(m):
        f = 1.0 + g
        f *= float(np.prod(np.cos(angles[: m - 1 - j])))
        if j > 0:
            f *= math.sin(angles[m - 1 - j])
        out.append(f)
    return out


def dtlz2_3(x: np.ndarray) -> list[float]:
    return dtlz2(x, 3)


def _single(name: str, fn: Callable[[np.ndarray], list[float]], bounds: list[tuple[float, float]],
            optimum: float, minimisers: tuple[tuple[float, ...], ...]) -> SyntheticProblem:
    return SyntheticProblem(name, unit_space(len(bounds), bounds), (Objective("loss", "min"),), fn,
                            optimum=optimum, minimisers=minimisers)


def _multi(name: str, fn: Callable[[np.ndarray], list[float]], dims: int, m: int, max_hv: float) -> SyntheticProblem:
    objectives = tuple(Objective(f"f{i + 1}", "min", REFERENCE) for i in range(m))
    return SyntheticProblem(name, unit_space(dims), objectives, fn, reference=(REFERENCE,) * m,
                            max_hypervolume=max_hv)


def _dims(options: Mapping[str, Any], default: int, least: int, name: str) -> int:
    dims = options.get("dims", default)
    if not isinstance(dims, int) or isinstance(dims, bool) or dims < least:
        raise BenchmarkError(f"task {name!r}: option dims must be an integer >= {least}, got {dims!r}")
    return dims


#: Synthetic tasks: name -> (builder from options, the options it accepts).
SYNTHETIC: dict[str, tuple[Callable[[Mapping[str, Any]], SyntheticProblem], tuple[str, ...]]] = {
    "branin": (lambda o: _single("branin", branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887, (
        (-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475))), ()),
    "hartmann3": (lambda o: _single("hartmann3", hartmann3, [(0.0, 1.0)] * 3, -3.86278, (
        (0.114614, 0.555649, 0.852547),)), ()),
    "hartmann6": (lambda o: _single("hartmann6", hartmann6, [(0.0, 1.0)] * 6, -3.32237, (
        (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573),)), ()),
    # Maximum hypervolumes at reference 1.1 per objective (benchmarks.md): the area under
    # 1.1 x 1.1 less the part the front does not dominate.
    "zdt1": (lambda o: _multi("zdt1", zdt1, _dims(o, 30, 2, "zdt1"), 2, 0.87667), ("dims",)),
    "zdt2": (lambda o: _multi("zdt2", zdt2, _dims(o, 30, 2, "zdt2"), 2, 0.54333), ("dims",)),
    "zdt3": (lambda o: _multi("zdt3", zdt3, _dims(o, 30, 2, "zdt3"), 2, 1.33176), ("dims",)),
    "dtlz2": (lambda o: _multi("dtlz2", dtlz2, _dims(o, 11, 2, "dtlz2"), 2, 0.42460), ("dims",)),
    "dtlz2-3obj": (lambda o: _multi("dtlz2-3obj", dtlz2_3, _dims(o, 12, 3, "dtlz2-3obj"), 3, 0.80740), ("dims",)),
}


def task_names() -> list[str]:
    """Every task name a suite may use (synthetic ones and the Bayesmark grid)."""
    return sorted(SYNTHETIC) + engine_task_names() + bayesmark_task_names()


def make_problem(name: str, options: Mapping[str, Any] | None = None) -> Problem:
    """Build task ``name`` with its ``options``.

    Raises:
        BenchmarkError: For an unknown task or option, naming the valid ones.
    """
    options = dict(options or {})
    if name in SYNTHETIC:
        build, valid = SYNTHETIC[name]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise BenchmarkError(
                f"task {name!r} has no option {unknown[0]!r}; valid options: {', '.join(valid) or '(none)'}"
            )
        return build(options)
    if parse_bayesmark(name) is not None:
        return make_bayesmark(name, options)
    if name in ENGINE_TASKS:
        return make_engine_task(name, options)
    import difflib

    names = task_names()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise BenchmarkError(
        f"unknown task {name!r}.{hint} Synthetic tasks: {', '.join(sorted(SYNTHETIC))}; engine tasks (S2, R2, R3): "
        f"{', '.join(sorted(ENGINE_TASKS))}; Bayesmark tasks are "
        f"MODEL-DATASET-METRIC, e.g. DT-breast_cancer-nll (`python -m automl_bench list` shows them all)"
    )
