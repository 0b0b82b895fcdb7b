"""The bottom of the benchmark package: the error, what a task is, what a method is and what it produced.

Every other module of :mod:`automl_bench` imports from here and nothing here imports them, so the
package has no import cycle: the task registry (:mod:`.problems`) and the method registry
(:mod:`.methods`) sit above the tasks and methods they build (:mod:`.bayesmark`, :mod:`.engine_tasks`).
"""

from __future__ import annotations

import abc
import importlib.metadata as md
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automl.plugin import AutoMLError, Float, Objective, SearchSpace

__all__ = ["BenchmarkError", "Method", "Problem", "Trace", "check_options", "package_version", "unit_space"]


class BenchmarkError(AutoMLError):
    """A suite file, method, task or store the benchmark cannot use; the message says how to fix it."""


class Problem(abc.ABC):
    """A minimisation problem over an automl :class:`SearchSpace`.

    Attributes:
        name: The task id stored with each result.
        space: What a searcher searches.
        objectives: Metric names (all ``min``), primary first.
        optimum: The known minimum of a single-objective problem, else None.
        reference: The hypervolume reference point of a multi-objective problem, else None.
        max_hypervolume: The hypervolume of the true front at ``reference``, when known.
    """

    name: str
    space: SearchSpace
    objectives: tuple[Objective, ...]
    optimum: float | None = None
    reference: tuple[float, ...] | None = None
    max_hypervolume: float | None = None

    @abc.abstractmethod
    def evaluate(self, config: Mapping[str, Any]) -> list[float]:
        """The losses of ``config``, one per objective (raises on a config the problem cannot score)."""

    @property
    def n_objectives(self) -> int:
        return len(self.objectives)

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    def describe(self) -> dict[str, Any]:
        """What the store keeps about the problem beside each result."""
        return {
            "dims": len(self.space),
            "objectives": self.metrics,
            "optimum": self.optimum,
            "reference": list(self.reference) if self.reference else None,
            "max_hypervolume": self.max_hypervolume,
        }


def unit_space(dims: int, bounds: Sequence[tuple[float, float]] | None = None) -> SearchSpace:
    """``x0..x{dims-1}``, each uniform on its bounds (default [0, 1])."""
    bounds = bounds or [(0.0, 1.0)] * dims
    return SearchSpace([Float(f"x{i}", low=lo, high=hi) for i, (lo, hi) in enumerate(bounds)])


@dataclass
class Trace:
    """What one run of a method on a problem produced.

    Attributes:
        losses: One entry per evaluation in the order the evaluations finished: the
            losses (one per objective), or None for a failed evaluation.
        eval_s: Seconds spent evaluating the problem.
        wall_s: Seconds of the whole run (searcher set-up included).
        suggestions: Configs the method suggested.
        workers: Evaluations that ran at the same time (1 in-process, Ray's CPUs for Ray).
        errors: The first few evaluation errors, for the store.
        curve: Set by methods that measure their own anytime curve (the engine tasks: best value
            against cumulative cost); None: one point per batch of evaluations.
        extra: Figures a method adds to its row (cost spent, trials stopped, time to target).
    """

    losses: list[list[float] | None] = field(default_factory=list)
    eval_s: float = 0.0
    wall_s: float = 0.0
    suggestions: int = 0
    workers: int = 1
    errors: list[str] = field(default_factory=list)
    curve: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None

    @property
    def failures(self) -> int:
        return sum(1 for v in self.losses if v is None)

    @property
    def overhead_s(self) -> float | None:
        """Seconds of optimizer overhead per suggestion (None when nothing was suggested)."""
        if not self.suggestions:
            return None
        return max(0.0, self.wall_s - self.eval_s / self.workers) / self.suggestions


class Method(abc.ABC):
    """A way to minimise a :class:`Problem`: one of our searchers or a peer.

    Args:
        name: The name a suite uses (``automl:tpe``, ``optuna:tpe``...).
        options: Keyword options from the suite, passed to the underlying optimizer.
    """

    #: Whether the method optimises several objectives (else it may only run single-objective tasks).
    multi_objective: bool = False
    #: Whether it can search conditional spaces (``when``).
    conditional: bool = False

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.options = dict(options or {})

    def check(self, problem: Problem) -> None:
        """Raise :class:`BenchmarkError` when this method cannot run ``problem``."""
        if getattr(problem, "engine", False):
            raise BenchmarkError(
                f"task {problem.name!r} runs through the whole engine: its methods are automl:SEARCHER+SCHEDULER "
                f"(e.g. automl:tpe+asha) or optuna:SAMPLER+PRUNER on S2, not {self.name!r}"
            )
        if problem.n_objectives > 1 and not self.multi_objective:
            raise BenchmarkError(
                f"method {self.name!r} is single-objective and task {problem.name!r} has {problem.n_objectives} "
                f"objectives: restrict the method with `tasks: [...]` in the suite"
            )
        if problem.space.is_conditional and not self.conditional:
            raise BenchmarkError(f"method {self.name!r} cannot search the conditional space of task {problem.name!r}")

    @abc.abstractmethod
    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        """Minimise ``problem`` with ``iterations * batch`` evaluations, seeded by ``seed``.

        ``trace`` (a new one by default) is filled as the run goes, so that the caller keeps
        what a run found before a library error ended it.
        """

    def version(self) -> str:
        """``package==version`` of what the method runs."""
        return "?"


def package_version(dist: str) -> str:
    try:
        return f"{dist}=={md.version(dist)}"
    except md.PackageNotFoundError:
        return f"{dist}==?"


def check_options(owner: str, target: Callable[..., Any], options: Mapping[str, Any], skip: Sequence[str]) -> None:
    """Raise a clear error for an option ``target`` does not take (before any run starts)."""
    params = inspect.signature(target).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if n not in skip and n != "self" and p.kind is not p.VAR_POSITIONAL]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise BenchmarkError(f"method {owner!r} has no option {unknown[0]!r}; valid options: {', '.join(valid) or '(none)'}")
