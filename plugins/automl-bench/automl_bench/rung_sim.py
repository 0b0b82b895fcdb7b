"""``rungs:SEARCHER+SCHEDULER``: the engine's own searcher and scheduler objects on an S2 task, in-process.

The searcher (``bohb``, ``tpe``, ``random``...) and the scheduler (``asha``, ``hyperband``, ``fifo``...) are
the registered ones, built as a plan builds them, and driven as the engine's driver drives them
(``suggest``; at each rung the scheduler's ``decide`` and the searcher's ``observe_rung``; ``observe`` with
``completed`` at the full budget or ``stopped`` at the rung; with the promotion type of ASHA, a paused trial that
became promotable is resumed from its next step before a new configuration is drawn, and the searcher is told of
it when it first paused and again when it completes, as the engine's searcher adapter does), one trial at a time,
without Ray. So a run is
deterministic for its seed and costs milliseconds per budget step rather than Ray's second per trial: the
figures compare algorithms (what each rung and each proposal buys) at budgets the whole engine could not run
on a shared 2-core machine, beside Optuna's own pruners (``optuna:SAMPLER+PRUNER``, in-process too). The
engine methods (``automl:SEARCHER+SCHEDULER``) run the same objects through Ray Tune with several trials at
once; their decisions then also depend on which trial reports first.

Cost accounting as the other S2 methods: one unit per budget step, only trials that completed count.
"""

from __future__ import annotations

from typing import Any

from automl.plugin import Float, Objective, RungResult, SearchSpace, TrialOutcome
from automl_bench.base import BenchmarkError, Problem, Trace
from automl_bench.engine_tasks import CostCurve, S2Task, SearcherSchedulerMethod

__all__ = ["RungSimMethod"]

STOP = "STOP"  # Ray Tune's TrialScheduler.STOP, what RungScheduler.decide returns to stop a trial


class RungSimMethod(SearcherSchedulerMethod):
    """``rungs:SEARCHER+SCHEDULER`` on an S2 task (options as :class:`SearcherSchedulerMethod`'s)."""

    prefix = "rungs:"
    example = "rungs:bohb+hyperband"
    multi_objective = False

    def check(self, problem: Problem) -> None:
        if not isinstance(problem, S2Task):
            raise BenchmarkError(f"method {self.name!r} runs the S2 tasks in-process, not {problem.name!r}")

    def run(self, problem: Any, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        self.check(problem)
        steps = problem.max_steps
        curve = CostCurve(problem, trace if trace is not None else Trace(), iterations * batch * steps)
        objectives = [Objective("loss", "min")]
        space = SearchSpace([Float(n, low=0.0, high=1.0) for n in problem.names])
        searcher = self.searcher_spec.factory(space, objectives, seed=seed, **self.searcher_options)
        scheduler = self.scheduler_spec.factory(objectives, max_budget=steps, **self.scheduler_options)
        milestones = set(getattr(scheduler, "milestones", ()))
        promotes = bool(getattr(scheduler, "promotes", False))
        paused: dict[int, tuple[dict[str, Any], int]] = {}  # promotion type: number -> (config, next step)
        observed: set[int] = set()  # told as stopped at its first pause (the adapter's rule)
        resumed = 0
        while curve.left:
            # As the engine's searcher adapter: a paused trial that became promotable before a new configuration.
            number = scheduler.next_promotion() if promotes else None
            if number is not None:
                config, first = paused.pop(number)
                curve.stopped -= 1
                resumed += 1
            else:
                number, first = curve.trials, 1
                config = searcher.suggest(number)
                if config is None:
                    break
                curve.trials += 1
            for step in range(first, steps + 1):
                if not curve.left:
                    break  # the cost ran out mid-trial: it does not count
                values = {"loss": curve.step(config, step)}
                if step == steps:
                    # Told even when it was told at a pause: a promoted trial's full-budget result (the adapter's rule).
                    searcher.observe(TrialOutcome(number, config, "completed", values, steps, steps))
                    observed.add(number)
                    curve.completed(values["loss"])
                elif step in milestones:
                    decision = scheduler.decide(number, step, values)
                    if searcher.observes_rungs:
                        searcher.observe_rung(RungResult(number, config, step, values, steps))
                    if decision == STOP:
                        if number not in observed:
                            searcher.observe(TrialOutcome(number, config, "stopped", values, step, steps))
                            observed.add(number)
                        if promotes and number in scheduler.paused:
                            paused[number] = (config, step + 1)  # may be re-issued from its checkpoint
                        curve.stopped += 1
                        break
        trace = curve.finish()
        assert trace.extra is not None
        trace.extra["resumed"] = resumed  # paused trials promoted later (promotion type)
        return trace
