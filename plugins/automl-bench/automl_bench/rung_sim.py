"""``rungs:SEARCHER+SCHEDULER``: the engine's own searcher and scheduler objects on an S2 task, in-process.

The searcher (``bohb``, ``tpe``, ``random``...) and the scheduler (``asha``, ``hyperband``, ``fifo``...) are
the registered ones, built as a plan builds them, and driven as the engine's driver drives them
(``suggest``; at each rung the scheduler's ``decide`` and the searcher's ``observe_rung``; ``observe`` with
``completed`` at the full budget or ``stopped`` at the rung), one trial at a time, without Ray. So a run is
deterministic for its seed and costs milliseconds per budget step rather than Ray's second per trial: the
figures compare algorithms (what each rung and each proposal buys) at budgets the whole engine could not run
on a shared 2-core machine, beside Optuna's own pruners (``optuna:SAMPLER+PRUNER``, in-process too). The
engine methods (``automl:SEARCHER+SCHEDULER``) run the same objects through Ray Tune with several trials at
once; their decisions then also depend on which trial reports first.

Cost accounting as the other S2 methods: one unit per budget step, only trials that completed count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from automl.plugin import Float, Objective, PluginError, RungResult, SearchSpace, TrialOutcome, get_plugin_manager
from automl_bench.base import BenchmarkError, Method, Problem, Trace

__all__ = ["RungSimMethod"]

STOP = "STOP"  # Ray Tune's TrialScheduler.STOP, what RungScheduler.decide returns to stop a trial


class RungSimMethod(Method):
    """``rungs:SEARCHER+SCHEDULER`` on an S2 task (options: ``searcher`` and ``scheduler``, as the spec's)."""

    multi_objective = False

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        searcher, _, scheduler = name.removeprefix("rungs:").partition("+")
        if not searcher or not scheduler:
            raise BenchmarkError(f"method {name!r}: write rungs:SEARCHER+SCHEDULER, e.g. rungs:bohb+hyperband")
        pm = get_plugin_manager()
        try:
            self.searcher_spec = pm.searchers.get(searcher)
            self.scheduler_spec = pm.schedulers.get(scheduler)
        except PluginError as exc:
            raise BenchmarkError(f"method {name!r}: {exc}") from exc
        self.searcher_options = dict(self.options.get("searcher") or {})
        defaults = {"grace_period": 1, "reduction_factor": 3} if self.scheduler_spec.uses_steps else {}
        self.scheduler_options = {**defaults, **dict(self.options.get("scheduler") or {})}

    def check(self, problem: Problem) -> None:
        # By its kind, not its class: engine_tasks builds this method (importing it back would make a cycle).
        if getattr(problem, "suite_kind", None) != "s2":
            raise BenchmarkError(f"method {self.name!r} runs the S2 tasks in-process, not {problem.name!r}")

    def run(self, problem: Any, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        self.check(problem)
        trace = trace if trace is not None else Trace()
        fn, steps = problem.function(), problem.max_steps
        objectives = [Objective("loss", "min")]
        space = SearchSpace([Float(n, low=0.0, high=1.0) for n in problem.names])
        searcher = self.searcher_spec.factory(space, objectives, seed=seed, **self.searcher_options)
        scheduler = self.scheduler_spec.factory(objectives, max_budget=steps, **self.scheduler_options)
        milestones = set(getattr(scheduler, "milestones", ()))
        budget = iterations * batch * steps
        spent, number, stopped = 0, 0, 0
        xs: list[int] = []
        bests: list[float | None] = []
        best: float | None = None
        t0 = time.perf_counter()
        while spent < budget:
            config = searcher.suggest(number)
            if config is None:
                break
            for step in range(1, steps + 1):
                if spent >= budget:
                    break  # the cost ran out mid-trial: it does not count
                e0 = time.perf_counter()
                values = {"loss": float(fn(config, step)["loss"])}
                trace.eval_s += time.perf_counter() - e0
                spent += 1
                if step == steps:
                    searcher.observe(TrialOutcome(number, config, "completed", values, steps, steps))
                    trace.losses.append([values["loss"]] if math.isfinite(values["loss"]) else None)
                    best = values["loss"] if best is None else min(best, values["loss"])
                    xs.append(spent)
                    bests.append(best)
                elif step in milestones:
                    decision = scheduler.decide(number, step, values)
                    if searcher.observes_rungs:
                        searcher.observe_rung(RungResult(number, config, step, values, steps))
                    if decision == STOP:
                        searcher.observe(TrialOutcome(number, config, "stopped", values, step, steps))
                        stopped += 1
                        break
            number += 1
        trace.wall_s = time.perf_counter() - t0
        trace.suggestions = number
        if not xs or xs[-1] < spent:
            xs.append(spent)
            bests.append(best)
        trace.curve = {"evals": xs, "best": bests, "x": f"cumulative {problem.cost_unit}"}
        trace.extra = {"cost_unit": problem.cost_unit, "cost_budget": budget, "cost_spent": spent, "cost_run": spent,
                       "trials": number, "completed": len(trace.losses), "stopped": stopped, "failed": 0,
                       "full_trial_equivalents": budget / steps}
        return trace

    def version(self) -> str:
        pm = get_plugin_manager()
        versions = [pm.version_of("searcher", self.searcher_spec.name),
                    pm.version_of("scheduler", self.scheduler_spec.name)]
        return "+".join(dict.fromkeys(versions))
