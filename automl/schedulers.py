"""Trial schedulers: asynchronous successive halving for one objective (ASHA) and several
(MO-ASHA), presented to Ray Tune as ``TrialScheduler`` objects.

Why our own rung bookkeeping rather than Ray's ``AsyncHyperBandScheduler``: MO-ASHA needs the
same rungs with a multi-objective ranking, and a resumed search must rebuild the rungs from the
store (Ray's scheduler keys its rungs by Tune trial ids of the killed process). For one
objective the promotion rule is Ray's own (stop when below the ``1 - 1/rf`` percentile of the
results recorded at the rung); a test checks the decisions against Ray's scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from automl.interfaces import Objective
from automl.pareto import crowding_distance, non_dominated_sort

__all__ = ["RungScheduler", "rung_milestones"]

NUMBER = "_automl_number"


def rung_milestones(grace_period: int, reduction_factor: float, max_budget: int) -> list[int]:
    """Budgets at which trials are compared: grace * rf^k below ``max_budget``, ascending."""
    out: list[int] = []
    k = 0
    while True:
        m = int(round(grace_period * reduction_factor**k))
        if m >= max_budget:
            return out
        if not out or m > out[-1]:
            out.append(m)
        k += 1


class RungScheduler(FIFOScheduler):
    """ASHA / MO-ASHA: stop a trial at a rung unless it is in the top ``1/reduction_factor``.

    Args:
        objectives: What to compare; one objective gives ASHA, several give MO-ASHA
            (ranked by non-dominated sorting, ties broken by crowding distance, as in
            Schmucker et al. 2021's NSGA-II variant).
        max_budget: Budget steps of a full trial.
        grace_period: First rung: no trial is stopped before this many steps.
        reduction_factor: Keep about one trial in ``reduction_factor`` at each rung.
        budget_attr: The result key holding the budget reached.
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        max_budget: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        budget_attr: str = "budget",
    ) -> None:
        super().__init__()
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be above 1, got {reduction_factor}")
        if not 1 <= grace_period <= max_budget:
            raise ValueError(f"grace_period must be between 1 and the trainer's {max_budget} budget steps, got {grace_period}")
        self.objectives = list(objectives)
        self.max_budget = max_budget
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.budget_attr = budget_attr
        self.milestones = rung_milestones(grace_period, reduction_factor, max_budget)
        #: milestone -> {trial number: objective vector in minimisation form}
        self.recorded: dict[int, dict[int, list[float]]] = {m: {} for m in self.milestones}
        self.stopped: set[int] = set()

    @property
    def metric(self) -> str | None:
        # None: Tune must not insist that every result carries one metric (ours are checked here).
        return None

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    def _vector(self, values: Mapping[str, Any]) -> list[float] | None:
        out = []
        for o in self.objectives:
            v = values.get(o.metric)
            if v is None or isinstance(v, bool) or not math.isfinite(float(v)):
                return None
            out.append(o.to_min(float(v)))
        return out

    def decide(self, number: int, budget: int, values: Mapping[str, Any]) -> str:
        """Record trial ``number`` at the highest rung it newly reached and say whether it goes on."""
        vector = self._vector(values)
        if vector is None:
            return TrialScheduler.CONTINUE
        for milestone in reversed(self.milestones):
            if budget < milestone:
                continue
            recorded = self.recorded[milestone]
            if number in recorded:
                break  # decided at this rung already
            keep = self._keep(vector, recorded)
            recorded[number] = vector
            if not keep:
                self.stopped.add(number)
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def _keep(self, vector: list[float], recorded: Mapping[int, list[float]]) -> bool:
        if not recorded:
            return True
        if len(self.objectives) == 1:
            losses = [v[0] for v in recorded.values()]
            # Ray's rule in minimisation form: stop above the 1/rf percentile of recorded losses.
            cutoff = float(np.nanpercentile(losses, 100 / self.reduction_factor))
            return vector[0] <= cutoff
        points = np.asarray([*recorded.values(), vector], dtype=float)
        me = len(points) - 1
        order: list[int] = []
        for front in non_dominated_sort(points):
            crowd = crowding_distance(points[front])
            order += [front[i] for i in np.argsort(-crowd, kind="stable")]
        keep = max(1, math.ceil(len(points) / self.reduction_factor))
        return order.index(me) < keep

    # -- Tune's TrialScheduler interface ----------------------------------------------------

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if NUMBER not in trial.config or self.budget_attr not in result:
            return TrialScheduler.CONTINUE
        budget = int(result[self.budget_attr])
        if budget >= self.max_budget:
            return TrialScheduler.CONTINUE  # the final report: the trial ends by itself
        return self.decide(int(trial.config[NUMBER]), budget, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        if result and NUMBER in trial.config and self.budget_attr in result:
            budget = int(result[self.budget_attr])
            if budget < self.max_budget:
                self.decide(int(trial.config[NUMBER]), budget, result)

    def replay(self, steps: Sequence[Mapping[str, Any]]) -> None:
        """Rebuild the rungs from stored step rows (``number``, ``step``, ``metrics``) in time order."""
        for row in steps:
            if row["step"] < self.max_budget:
                self.decide(int(row["number"]), int(row["step"]), row["metrics"] or {})

    def debug_string(self) -> str:
        rungs = ", ".join(f"{m}: {len(r)}" for m, r in self.recorded.items())
        return f"{type(self).__name__}(rungs {rungs}; stopped {len(self.stopped)})"
