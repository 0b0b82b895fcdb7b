"""``raytune:SEARCHER+SCHEDULER``: Ray Tune's own multi-fidelity searchers and schedulers on an S2 task, used directly.

The peer of issue 20's figure: ``raytune:bohb+hyperband`` is Ray Tune's ``TuneBOHB`` (HpBandSter's BOHB model:
kernel densities of good and bad configurations on the largest budget with enough results) with
``HyperBandForBOHB`` (HyperBand whose brackets pause their trials at each rung and resume the best from their
checkpoints), the pair Ray's documentation gives for BOHB. ``raytune:random+hyperband`` is Ray's
``HyperBandScheduler``, ``raytune:random+asha`` its ``ASHAScheduler`` and ``raytune:random+fifo`` no early stopping,
with random proposals. The brackets are Ray's: ``max_t`` the task's budget steps, reduction factor 3, grace period
1 step (ASHA).

Each run is one ``tune.Tuner.fit`` on the local Ray of :func:`automl_bench.local_ray.ensure_ray`, one trial at a
time: a trial asks for every CPU, so a paused bracket lets the next trial start. Tune keeps one trial pending beside
the running one for a searcher such as ``TuneBOHB`` (a proposal has seen every result but the running trial's) and
many for its random variants. The trainable reports the task's loss at each budget step and checkpoints the step it
reached, so a resumed trial goes on from there. The task is put once in Ray's object store and its function kept per
worker process (Tune reuses its workers), so a trial does not unpickle the task again. The cost is counted as the
in-process methods count it (:class:`automl_bench.engine_tasks.CostCurve`): one unit per reported budget step, in
the order Tune received them; a trial that reports the last step is a completed evaluation; results past the budget
are not counted (Tune stops every trial once the budget is spent).

``TuneBOHB`` needs ``hpbandster`` and ``ConfigSpace`` (``pip install hpbandster ConfigSpace``), which are not
among this package's dependencies: the method says so when they are missing.
"""

from __future__ import annotations

import importlib.util
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from automl_bench.base import BenchmarkError, Method, Problem, Trace, package_version
from automl_bench.engine_tasks import CostCurve, S2Task
from automl_bench.local_ray import ensure_ray

__all__ = ["RAY_PAIRS", "RayMultiFidelityPeer"]

#: searcher -> the schedulers it runs with (Ray's TuneBOHB only works with HyperBandForBOHB).
RAY_PAIRS: dict[str, tuple[str, ...]] = {"bohb": ("hyperband",), "random": ("hyperband", "asha", "fifo")}
REDUCTION_FACTOR = 3
STEP_FILE = "step"


#: Per worker process: the task's function of each run (the key: its object's id in Ray's object store).
_FUNCTIONS: dict[str, Any] = {}


class _TaskRef:
    """The task, put once in Ray's object store: a trial on a reused worker takes its function from
    :data:`_FUNCTIONS` instead of unpickling the task again (the R3 surrogate holds a 100-tree forest, and its
    function keeps the curves it predicted)."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def function(self) -> Any:
        key = self.ref.hex()
        if key not in _FUNCTIONS:
            import ray

            _FUNCTIONS.clear()  # one run's task at a time per worker
            _FUNCTIONS[key] = ray.get(self.ref).function()
        return _FUNCTIONS[key]


def _trainable(config: dict[str, Any], task: _TaskRef | None = None, names: tuple[str, ...] = (),
               max_steps: int = 0) -> None:
    """One trial: the task's loss at each budget step from the checkpointed one on, each step checkpointed."""
    from ray import tune

    assert task is not None  # bound by tune.with_parameters
    fn = task.function()
    start = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = int(Path(folder, STEP_FILE).read_text()) + 1
    point = {n: float(config[n]) for n in names}
    for step in range(start, max_steps + 1):
        loss = float(fn(point, step)["loss"])
        with tempfile.TemporaryDirectory(prefix="raymf-") as folder:
            Path(folder, STEP_FILE).write_text(str(step))
            tune.report({"loss": loss, "budget_step": step}, checkpoint=tune.Checkpoint.from_directory(folder))


class RayMultiFidelityPeer(Method):
    """``raytune:SEARCHER+SCHEDULER`` on an S2 task (or a table task shaped like one); takes no options."""

    multi_objective = False

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        searcher, _, scheduler = name.removeprefix("raytune:").partition("+")
        if scheduler not in RAY_PAIRS.get(searcher, ()):
            pairs = ", ".join(f"raytune:{s}+{c}" for s, cs in RAY_PAIRS.items() for c in cs)
            raise BenchmarkError(f"method {name!r}: Ray Tune's multi-fidelity pairs here are {pairs}")
        if self.options:
            raise BenchmarkError(f"method {name!r} takes no options")
        self.searcher, self.scheduler = searcher, scheduler
        self.events: list[tuple[str, int, float]] = []

    def check(self, problem: Problem) -> None:
        if not isinstance(problem, S2Task):
            raise BenchmarkError(f"method {self.name!r} runs the S2 tasks (and tables shaped like them), "
                                 f"not {problem.name!r}")
        missing = [m for m in ("hpbandster", "ConfigSpace") if importlib.util.find_spec(m) is None]
        if self.searcher == "bohb" and missing:
            raise BenchmarkError(f"method {self.name!r} needs Ray Tune's BOHB dependencies, which are not installed "
                                 f"({', '.join(missing)}): pip install hpbandster ConfigSpace")

    def _parts(self, problem: S2Task, seed: int) -> tuple[Any, Any]:
        """(search algorithm or None for Tune's random variants, scheduler)."""
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandForBOHB, HyperBandScheduler

        steps = problem.max_steps
        if self.searcher == "bohb":
            from ray.tune.search.bohb import TuneBOHB

            # No concurrency limit on the searcher: Tune keeps one trial pending beside the running one (its rule
            # for a searcher), so BOHB proposes one trial ahead. With max_concurrent=1 it proposed only after the
            # last trial paused or ended, and then HyperBandForBOHB put each new trial into the finished bracket's
            # emptied last rung (a bracket counts as filled only while its trials are live): every trial after the
            # first bracket ran the full budget (seen here: 37 of 64 trials on s2-hartmann3).
            return (TuneBOHB(seed=seed),
                    HyperBandForBOHB(time_attr="training_iteration", max_t=steps, reduction_factor=REDUCTION_FACTOR,
                                     stop_last_trials=True))
        if self.scheduler == "hyperband":
            return None, HyperBandScheduler(time_attr="training_iteration", max_t=steps,
                                            reduction_factor=REDUCTION_FACTOR, stop_last_trials=True)
        if self.scheduler == "asha":
            return None, ASHAScheduler(time_attr="training_iteration", max_t=steps, grace_period=1,
                                       reduction_factor=REDUCTION_FACTOR)
        return None, FIFOScheduler()

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        self.check(problem)
        assert isinstance(problem, S2Task)
        ensure_ray()
        import ray
        from ray import tune
        from ray.tune import Callback, FailureConfig, RunConfig, Stopper, TuneConfig
        from ray.tune.search.basic_variant import BasicVariantGenerator

        budget = iterations * batch * problem.max_steps
        curve = CostCurve(problem, trace if trace is not None else Trace(), budget)
        events: list[tuple[str, int, float]] = []

        class Collect(Callback):
            """Every reported budget step, in the order Tune received it (one trial runs at a time)."""

            def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                                **info: Any) -> None:
                if "budget_step" in result:
                    events.append((trial.trial_id, int(result["budget_step"]), float(result["loss"])))

        class Spent(Stopper):
            """Ends the whole run once the budget steps are spent."""

            def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
                return False

            def stop_all(self) -> bool:
                return len(events) >= budget

        # hpbandster's BOHB draws from numpy's and Python's global generators (ConfigSpace's from its own, seeded).
        np.random.seed(seed)
        random.seed(seed)
        search_alg, scheduler = self._parts(problem, seed)
        if search_alg is None:
            search_alg = BasicVariantGenerator(random_state=seed)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        space = {n: tune.uniform(0.0, 1.0) for n in problem.names}
        with tempfile.TemporaryDirectory(prefix="raymf-") as storage:
            tuner = tune.Tuner(
                tune.with_resources(tune.with_parameters(_trainable, task=_TaskRef(ray.put(problem)),
                                                         names=tuple(problem.names), max_steps=problem.max_steps),
                                    {"cpu": cpus}),
                param_space=space,
                tune_config=TuneConfig(search_alg=search_alg, scheduler=scheduler, metric="loss", mode="min",
                                       num_samples=budget, reuse_actors=True),
                run_config=RunConfig(name=f"raymf-{seed}", storage_path=storage, verbose=0, callbacks=[Collect()],
                                     stop=Spent(), failure_config=FailureConfig(max_failures=0)),
            )
            tuner.fit()
        self.events = events  # (trial id, budget step, loss) of the last run, in the order Tune received them
        seen: set[str] = set()
        done: set[str] = set()
        for trial_id, step, loss in events[:budget]:
            if trial_id not in seen:
                seen.add(trial_id)
                curve.trials += 1
            curve.spent += 1
            if step == problem.max_steps:
                done.add(trial_id)
                curve.completed(loss)
        curve.stopped = len(seen - done)
        return curve.finish()

    def version(self) -> str:
        if self.searcher == "bohb":
            return f"{package_version('ray')}+hpbandster=={package_version('hpbandster')}"
        return package_version("ray")
