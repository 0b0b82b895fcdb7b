"""Engine-driven tasks (suites S2, R2, R3): every run is a whole ``automl.search``.

The searcher benchmarks of S1, S3 and R1 drive a searcher in-process; these tasks instead run the
engine end to end (spec, plan, Ray Tune, scheduler, store, exports) with a method
``automl:SEARCHER+SCHEDULER`` (``automl:random+fifo``, ``automl:tpe+asha``, ``automl:tpe+moasha``...),
so what is compared is a searcher *and* a scheduler as a user runs them.

Budget: a suite's ``iterations x batch`` is the **cost** a run may spend, in full-trial
equivalents (one full trial = ``max_steps`` budget steps: S2's 27 fidelity steps, R3's epochs,
R2's ``steps``); ``batch`` trials run at once. Early-stopping schedulers get enough trials to
spend that cost (see :func:`trials_for`) and every run is cut at the same cost: only trials
that *completed* (reached their full budget) before the cumulative budget steps passed the cost
count as evaluations. So the figures are regret (S2), hypervolume (R2) or error (R3) against
cumulative cost, the curve that shows what early stopping buys.

Tasks:

* ``s2-branin``, ``s2-hartmann3``: the multi-fidelity functions of
  :mod:`automl_bench.multifidelity` through the ``function`` trainer (27 steps, one unit of
  cost per step); score log10 simple regret of the best full-fidelity value.
* ``r2-DATASET`` (digits, breast_cancer, wine, iris): the ``sklearn`` trainer with objectives
  accuracy, latency_ms and size_bytes; hypervolume of ``(1 - accuracy, latency_ms, size_bytes)``
  against the reference point frozen in ``automl_bench/references/r2.yaml`` (versioned: a task
  states the reference version it was scored with, and a mismatch is an error).
* ``r3-digits-mlp``: the ``torch`` trainer on digits, LCBench-like MLP space, epochs as fidelity
  (27 by default, ASHA rungs 1, 3, 9); score the validation error of the best completed trial,
  with the time and the epochs to a target accuracy beside it.

Peers: ``optuna:SAMPLER+PRUNER`` (``optuna:tpe+sha``, ``optuna:tpe+hyperband``...) runs the S2
functions in-process with Optuna's own pruners and the same cost accounting; ``raytune:SEARCHER+SCHEDULER``
(``raytune:bohb+hyperband``...; :mod:`automl_bench.ray_mf`) runs them through Ray Tune's own searchers and schedulers.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

import automl
from automl.plugin import Objective, PluginError, get_plugin_manager
from automl_bench import multifidelity
from automl_bench.base import BenchmarkError, Method, Problem, Trace, package_version, unit_space
from automl_bench.scoring import best_so_far

__all__ = [
    "ENGINE_TASKS",
    "REFERENCES_DIR",
    "EngineMethod",
    "EngineTask",
    "OptunaPrunerPeer",
    "engine_task_names",
    "make_engine_task",
    "trials_for",
]

REFERENCES_DIR = Path(__file__).resolve().parent / "references"
#: Datasets an R2 task may use (bundled with scikit-learn, registered by automl-sklearn).
R2_DATASETS = ("digits", "breast_cancer", "wine", "iris")


class EngineTask(Problem):
    """A task run through ``automl.search``: it writes the spec and reads the figures off the run.

    Attributes:
        engine: Marks the task for :meth:`Method.check` (in-process methods cannot run it).
        suite_kind: ``s2``, ``r2`` or ``r3``.
        max_steps: Budget steps of a full trial.
        cost_unit: What a budget step is (for the figures).
        options: The task's options from the suite file.
    """

    engine = True

    def __init__(self, name: str, suite_kind: str, objectives: tuple[Objective, ...], *, max_steps: int,
                 cost_unit: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.suite_kind = suite_kind
        self.objectives = objectives
        self.max_steps = max_steps
        self.cost_unit = cost_unit
        self.options = dict(options)
        self.space = unit_space(1)  # replaced by the tasks that search unit boxes; see describe()

    # what the engine runs ------------------------------------------------------------------------

    def spec(self, *, searcher: Mapping[str, Any], scheduler: Mapping[str, Any], trials: int, concurrency: int,
             seed: int) -> dict[str, Any]:
        raise NotImplementedError

    def search_space(self) -> dict[str, Any]:
        raise NotImplementedError

    def loss(self, metrics: Mapping[str, Any]) -> list[float] | None:
        """The losses of a completed trial's metrics (None when one is missing)."""
        raise NotImplementedError

    def evaluate(self, config: Mapping[str, Any]) -> list[float]:
        raise BenchmarkError(f"task {self.name!r} runs through the whole engine: it has no in-process evaluation")

    def describe(self) -> dict[str, Any]:
        return {
            "dims": len(self.search_space()),
            "objectives": self.metrics,
            "optimum": self.optimum,
            "reference": list(self.reference) if self.reference else None,
            "max_hypervolume": self.max_hypervolume,
            "engine": self.suite_kind,
            "max_steps": self.max_steps,
            "cost_unit": self.cost_unit,
            **({"target": self.options["target"]} if "target" in self.options else {}),
            **({"reference_version": self.options["reference_version"]} if "reference_version" in self.options
               else {}),
        }


# -- S2 ------------------------------------------------------------------------------------------

S2_PROBLEMS: dict[str, tuple[str, int, float]] = {
    # name -> (function in automl_bench.multifidelity, dimensions, known minimum at full fidelity)
    "s2-branin": ("augmented_branin", 2, 0.397887),
    "s2-hartmann3": ("mf_hartmann3", 3, -3.86278),
}


class S2Task(EngineTask):
    """A multi-fidelity synthetic function through the ``function`` trainer (fidelity = budget step)."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        function, dims, optimum = S2_PROBLEMS[name]
        super().__init__(name, "s2", (Objective("loss", "min"),), max_steps=multifidelity.STEPS, cost_unit="budget steps",
                         options=options)
        self.function_name = function
        self.optimum = optimum
        self.space = unit_space(dims)
        self.names = [f"x{i}" for i in range(1, dims + 1)]

    def function(self) -> Callable[..., dict[str, float]]:
        return getattr(multifidelity, self.function_name)  # type: ignore[no-any-return]

    def search_space(self) -> dict[str, Any]:
        return {n: {"type": "float", "low": 0.0, "high": 1.0} for n in self.names}

    def spec(self, *, searcher: Mapping[str, Any], scheduler: Mapping[str, Any], trials: int, concurrency: int,
             seed: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainer": {"name": "function", "params": {
                "function": f"automl_bench.multifidelity:{self.function_name}", "metrics": {"loss": "min"},
                "steps": self.max_steps}},
            "space": self.search_space(),
            "objectives": [{"metric": "loss", "mode": "min"}],
            "searcher": dict(searcher), "scheduler": dict(scheduler),
            "budget": {"trials": trials}, "resources": {"cpu": 1, "max_concurrent": concurrency}, "seed": seed,
        }

    def loss(self, metrics: Mapping[str, Any]) -> list[float] | None:
        value = metrics.get("loss")
        return [float(value)] if value is not None and math.isfinite(float(value)) else None


# -- R2 ------------------------------------------------------------------------------------------

R2_SPACE: dict[str, Any] = {
    "model": {"type": "choice", "values": ["linear", "knn", "tree", "forest"]},
    "C": {"type": "float", "low": 0.01, "high": 100, "log": True, "when": {"model": "linear"}},
    "n_neighbors": {"type": "int", "low": 1, "high": 15, "when": {"model": "knn"}},
    "max_depth": {"type": "int", "low": 2, "high": 20, "when": {"model": ["tree", "forest"]}},
    "n_estimators": {"type": "int", "low": 10, "high": 150, "log": True, "when": {"model": "forest"}},
}


def load_reference(task: str, version: int) -> dict[str, float]:
    """The frozen R2 reference point of ``task`` (``{metric: worst value that counts}``).

    Raises:
        BenchmarkError: When the file is missing, at another version, or has no entry for ``task``.
    """
    path = REFERENCES_DIR / "r2.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BenchmarkError(f"cannot read the R2 reference points {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), dict):
        raise BenchmarkError(f"{path}: expected a mapping with version and tasks")
    if raw.get("version") != version:
        raise BenchmarkError(
            f"task {task!r} asks for R2 reference points version {version}, but {path} is at version "
            f"{raw.get('version')!r}: a changed reference changes every hypervolume, so bump the suite's version "
            f"together with reference_version")
    ref = raw["tasks"].get(task)
    if not isinstance(ref, dict) or set(ref) != {"error", "latency_ms", "size_bytes"}:
        raise BenchmarkError(f"{path}: no reference point (error, latency_ms, size_bytes) for task {task!r}; "
                             f"tasks there: {', '.join(raw['tasks'])}")
    return {k: float(v) for k, v in ref.items()}


class R2Task(EngineTask):
    """scikit-learn models on a bundled data set, accuracy x batch-1 latency x serialized size."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.dataset = name.removeprefix("r2-")
        if self.dataset not in R2_DATASETS:
            raise BenchmarkError(f"unknown R2 data set {self.dataset!r}; R2 tasks: "
                                 f"{', '.join('r2-' + d for d in R2_DATASETS)}")
        version = options.get("reference_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BenchmarkError(f"task {name!r}: give options.reference_version (the version of "
                                 f"automl_bench/references/r2.yaml its hypervolumes use), got {version!r}")
        steps = options.get("steps", 3)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise BenchmarkError(f"task {name!r}: option steps must be a positive integer, got {steps!r}")
        ref = load_reference(name, version)
        # Losses are the objectives divided by the frozen reference, so the reference point is 1 in each.
        objectives = (Objective("error/ref", "min", 1.0), Objective("latency_ms/ref", "min", 1.0),
                      Objective("size_bytes/ref", "min", 1.0))
        super().__init__(name, "r2", objectives, max_steps=steps, cost_unit="budget steps", options=options)
        self.reference = (1.0, 1.0, 1.0)
        self.ref = ref

    def search_space(self) -> dict[str, Any]:
        return dict(R2_SPACE)

    def spec(self, *, searcher: Mapping[str, Any], scheduler: Mapping[str, Any], trials: int, concurrency: int,
             seed: int) -> dict[str, Any]:
        return {
            "name": self.name, "task": "classification",
            "data": {"dataset": self.dataset, "validation": 0.2, "test": 0.2},
            "trainer": {"name": "sklearn", "params": {"export": "skops", "steps": self.max_steps}},
            "space": self.search_space(),
            "objectives": [
                {"metric": "accuracy", "mode": "max", "reference": 1.0 - self.ref["error"]},
                {"metric": "latency_ms", "mode": "min", "reference": self.ref["latency_ms"]},
                {"metric": "size_bytes", "mode": "min", "reference": self.ref["size_bytes"]},
            ],
            "searcher": dict(searcher), "scheduler": dict(scheduler),
            "budget": {"trials": trials}, "resources": {"cpu": 1, "max_concurrent": concurrency}, "seed": seed,
        }

    def loss(self, metrics: Mapping[str, Any]) -> list[float] | None:
        values = [metrics.get("accuracy"), metrics.get("latency_ms"), metrics.get("size_bytes")]
        if any(v is None or not math.isfinite(float(v)) for v in values):
            return None
        raw = [1.0 - float(values[0]), float(values[1]), float(values[2])]  # type: ignore[arg-type]
        return [v / self.ref[k] for v, k in zip(raw, ("error", "latency_ms", "size_bytes"), strict=True)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "reference_point": dict(self.ref)}


# -- R3 ------------------------------------------------------------------------------------------

#: LCBench-like space of benchmarks.md (searchspaces/torch-mlp-digits.yaml).
R3_SPACE: dict[str, Any] = {
    "batch_size": {"type": "int", "low": 16, "high": 512, "log": True},
    "lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": True},
    "momentum": {"type": "float", "low": 0.1, "high": 0.99},
    "weight_decay": {"type": "float", "low": 0.00001, "high": 0.1, "log": True},
    "layers": {"type": "int", "low": 1, "high": 5},
    "units": {"type": "int", "low": 64, "high": 1024, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


class R3Task(EngineTask):
    """An MLP on digits with the torch trainer, one epoch per budget step."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        epochs = options.get("epochs", 27)
        target = options.get("target", 0.95)
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise BenchmarkError(f"task {name!r}: option epochs must be a positive integer, got {epochs!r}")
        if not isinstance(target, (int, float)) or not 0 < float(target) <= 1:
            raise BenchmarkError(f"task {name!r}: option target must be an accuracy in (0, 1], got {target!r}")
        super().__init__(name, "r3", (Objective("error", "min"),), max_steps=epochs, cost_unit="epochs",
                         options={**options, "target": float(target)})
        self.target = float(target)

    def search_space(self) -> dict[str, Any]:
        return dict(R3_SPACE)

    def spec(self, *, searcher: Mapping[str, Any], scheduler: Mapping[str, Any], trials: int, concurrency: int,
             seed: int) -> dict[str, Any]:
        return {
            "name": self.name, "task": "classification",
            "data": {"dataset": "digits", "validation": 0.2, "test": 0.2},
            "trainer": {"name": "torch", "params": {"network": "mlp", "epochs": self.max_steps, "optimizer": "sgd",
                                                    "schedule": "cosine"}},
            "space": self.search_space(),
            "objectives": [{"metric": "accuracy", "mode": "max"}],
            "searcher": dict(searcher), "scheduler": dict(scheduler),
            "budget": {"trials": trials}, "resources": {"cpu": 1, "max_concurrent": concurrency}, "seed": seed,
        }

    def loss(self, metrics: Mapping[str, Any]) -> list[float] | None:
        value = metrics.get("accuracy")
        return [1.0 - float(value)] if value is not None and math.isfinite(float(value)) else None


#: Engine task names -> (builder, the options it accepts).
ENGINE_TASKS: dict[str, tuple[Callable[[str, Mapping[str, Any]], EngineTask], tuple[str, ...]]] = {
    **{n: (S2Task, ()) for n in S2_PROBLEMS},
    **{f"r2-{d}": (R2Task, ("reference_version", "steps")) for d in R2_DATASETS},
    "r3-digits-mlp": (R3Task, ("epochs", "target")),
}


def engine_task_names() -> list[str]:
    return sorted(ENGINE_TASKS)


def make_engine_task(name: str, options: Mapping[str, Any]) -> EngineTask:
    build, valid = ENGINE_TASKS[name]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise BenchmarkError(f"task {name!r} has no option {unknown[0]!r}; valid options: {', '.join(valid) or '(none)'}")
    return build(name, options)


# -- reading a run ----------------------------------------------------------------------------------


def trials_for(cost: int, max_steps: int, scheduler: str, options: Mapping[str, Any]) -> int:
    """Trials to give a search so that it can spend ``cost`` full-trial equivalents.

    fifo runs every trial to ``max_steps``: ``cost`` trials. A successive-halving scheduler with
    grace period ``g`` and reduction factor ``eta`` spends about ``sum_k eta^-k (r_k - r_{k-1})``
    steps per trial (rungs ``r_k = g eta^k``); asynchronous promotion spends somewhat more, and a
    run is cut at ``cost`` anyway, so the estimate only needs to be large enough.
    """
    if scheduler == "fifo" or max_steps <= 1:
        return cost
    g = max(1, int(options.get("grace_period", 1)))
    eta = max(2, int(options.get("reduction_factor", 3)))
    per_trial, previous, rung, k = 0.0, 0, g, 0
    while previous < max_steps:
        rung = min(rung, max_steps)
        per_trial += (rung - previous) / eta**k
        previous, rung, k = rung, rung * eta, k + 1
    return max(cost, math.ceil(cost * max_steps / per_trial - 1e-9))


def fill_trace(task: EngineTask, run: Any, cost_budget: int, trace: Trace) -> dict[str, Any]:
    """Fill ``trace`` from a finished run cut at ``cost_budget`` budget steps; return the extra figures.

    Every budget step any trial reported costs one unit, in the order they were reported. A
    trial counts as an evaluation when it completed (its full budget, or its trainer's own early
    stop) before the cumulative cost passed ``cost_budget``; a failed trial counts as a failed
    evaluation at the time it failed.
    """
    info = run.info()
    trials = run.trials()
    step_times = sorted(float(s["at"]) for s in run.steps())

    def cost_at(moment: float) -> int:
        import bisect

        return bisect.bisect_right(step_times, moment)

    events = []
    for t in trials:
        if t["status"] not in ("completed", "failed") or t["finished_at"] is None:
            continue
        last = max((float(s["at"]) for s in run.steps(t["number"])), default=float(t["finished_at"]))
        moment = max(last, float(t["finished_at"])) if t["status"] == "failed" else last
        events.append((moment, t))
    events.sort(key=lambda e: e[0])
    xs: list[int] = []
    bests: list[float | None] = []
    multi = task.n_objectives > 1
    target_s = target_cost = None
    for moment, t in events:
        spent = cost_at(moment)
        if spent > cost_budget:
            break
        losses = task.loss(t["metrics"] or {}) if t["status"] == "completed" else None
        trace.losses.append(losses)
        if t["status"] == "failed" and len(trace.errors) < 5:
            trace.errors.append(f"trial {t['number']}: {t['error']}"[:500])
        if isinstance(task, R3Task) and losses is not None and target_s is None and 1 - losses[0] >= task.target:
            target_s, target_cost = moment - float(info["created_at"]), spent
        xs.append(spent)
        if multi:
            assert task.reference is not None
        bests.append(best_so_far(trace.losses, task.reference if multi else None))
    if not xs or xs[-1] < min(cost_budget, len(step_times)):  # the curve runs to the cost actually spent
        xs.append(min(cost_budget, len(step_times)))
        bests.append(bests[-1] if bests else (0.0 if multi else None))
    trace.curve = {"evals": xs, "best": bests, "x": f"cumulative {task.cost_unit}"}
    statuses = [t["status"] for t in trials]
    durations = [float(t["duration"]) for t in trials if t["duration"]]
    trace.eval_s = sum(durations)
    trace.suggestions = len(trials)
    extra = {
        "cost_unit": task.cost_unit, "cost_budget": cost_budget, "cost_spent": min(cost_budget, len(step_times)),
        "cost_run": len(step_times), "trials": len(trials), "completed": statuses.count("completed"),
        "stopped": statuses.count("stopped"), "failed": statuses.count("failed"),
        "full_trial_equivalents": cost_budget / task.max_steps,
    }
    if isinstance(task, R3Task):
        extra.update({"target": task.target, "time_to_target_s": target_s, "cost_to_target": target_cost})
    return extra


# -- methods --------------------------------------------------------------------------------------


class SearcherSchedulerMethod(Method):
    """A method ``PREFIX:SEARCHER+SCHEDULER`` that runs a registered searcher with a registered scheduler.

    Options: ``searcher`` and ``scheduler``, each the options that spec section takes (for an
    early-stopping scheduler, grace_period 1 and reduction_factor 3 unless given).

    Attributes:
        prefix: What the method's name starts with (``automl:``, ``rungs:``).
        example: A valid name, for the message that refuses a malformed one.
    """

    prefix = ""
    example = ""

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        searcher, _, scheduler = name.removeprefix(self.prefix).partition("+")
        if not searcher or not scheduler:
            raise BenchmarkError(f"method {name!r}: write {self.prefix}SEARCHER+SCHEDULER, e.g. {self.example}")
        unknown = sorted(set(self.options) - {"searcher", "scheduler"})
        if unknown:
            raise BenchmarkError(f"method {name!r} has no option {unknown[0]!r}; valid options: searcher, scheduler "
                                 f"(each a mapping of that spec section's options)")
        pm = get_plugin_manager()
        try:
            self.searcher_spec = pm.searchers.get(searcher)
            self.scheduler_spec = pm.schedulers.get(scheduler)
        except PluginError as exc:
            raise BenchmarkError(f"method {name!r}: {exc}") from exc
        self.searcher_options = dict(self.options.get("searcher") or {})
        defaults = {"grace_period": 1, "reduction_factor": 3} if self.scheduler_spec.uses_steps else {}
        valid = set(self.scheduler_spec.option_names())
        self.scheduler_options = {**{k: v for k, v in defaults.items() if k in valid},
                                  **dict(self.options.get("scheduler") or {})}
        for what, given, allowed in (("searcher", self.searcher_options, self.searcher_spec.option_names()),
                                     ("scheduler", self.scheduler_options, sorted(valid))):
            bad = sorted(set(given) - set(allowed))
            if bad:
                raise BenchmarkError(f"method {name!r}: the {what} has no option {bad[0]!r}; valid: "
                                     f"{', '.join(allowed) or '(none)'}")

    def version(self) -> str:
        pm = get_plugin_manager()
        versions = [pm.version_of("searcher", self.searcher_spec.name),
                    pm.version_of("scheduler", self.scheduler_spec.name)]
        return "+".join(dict.fromkeys(versions))


class EngineMethod(SearcherSchedulerMethod):
    """``automl:SEARCHER+SCHEDULER``: a whole ``automl.search`` per run, on an engine task (options as
    :class:`SearcherSchedulerMethod`'s)."""

    prefix = "automl:"
    example = "automl:tpe+asha"
    multi_objective = True
    needs_ray = True

    def check(self, problem: Problem) -> None:
        if not isinstance(problem, EngineTask):
            raise BenchmarkError(f"method {self.name!r} runs the whole engine: it runs engine tasks "
                                 f"({', '.join(engine_task_names())}), not {problem.name!r}")
        if self.scheduler_spec.uses_steps and problem.max_steps < 2:
            raise BenchmarkError(f"method {self.name!r}: scheduler {self.scheduler_spec.name!r} stops trials between "
                                 f"budget steps and task {problem.name!r} has one step")

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        assert isinstance(problem, EngineTask)
        trace = trace if trace is not None else Trace()
        cost = iterations * batch
        scheduler = self.scheduler_spec.name
        trials = trials_for(cost, problem.max_steps, scheduler, self.scheduler_options)
        spec = problem.spec(
            searcher={"name": self.searcher_spec.name, **({"options": self.searcher_options}
                                                          if self.searcher_options else {})},
            scheduler={"name": scheduler, **({"options": self.scheduler_options} if self.scheduler_options else {})},
            trials=trials, concurrency=batch, seed=seed)
        trace.workers = batch
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
            path = Path(tmp) / "spec.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            run = automl.search(path, out=Path(tmp) / "run")
            trace.wall_s = time.perf_counter() - t0
            trace.extra = fill_trace(problem, run, cost * problem.max_steps, trace)
            run.store.close()
        return trace


class CostCurve:
    """An in-process S2 run's best completed loss against its cumulative cost, written into a trace.

    The methods that run the S2 functions in-process (``optuna:``, ``rungs:``) count cost as
    :func:`fill_trace` reads it off an engine run: each budget step one unit, and only trials that
    completed (reached the full fidelity) count as evaluations.
    """

    def __init__(self, problem: S2Task, trace: Trace, budget: int) -> None:
        self.problem, self.trace, self.budget = problem, trace, budget
        self.spent = self.trials = self.stopped = 0
        self.xs: list[int] = []
        self.bests: list[float | None] = []
        self.best: float | None = None
        self._fn = problem.function()
        self._t0 = time.perf_counter()

    @property
    def left(self) -> bool:
        """Whether some cost is left to spend."""
        return self.spent < self.budget

    def step(self, config: Mapping[str, Any], step: int) -> float:
        """The loss of ``config`` at budget step ``step``: one unit of cost, its time counted as evaluation time."""
        e0 = time.perf_counter()
        value = float(self._fn(config, step)["loss"])
        self.trace.eval_s += time.perf_counter() - e0
        self.spent += 1
        return value

    def completed(self, loss: float) -> None:
        """A trial reached the full fidelity with ``loss``: an evaluation, a point of the curve."""
        finite = math.isfinite(loss)
        self.trace.losses.append([loss] if finite else None)
        if finite:
            self.best = loss if self.best is None else min(self.best, loss)
        self.xs.append(self.spent)
        self.bests.append(self.best)

    def finish(self) -> Trace:
        """The trace, its curve run to the cost spent and its extra figures those of :func:`fill_trace`."""
        trace, problem = self.trace, self.problem
        trace.wall_s = time.perf_counter() - self._t0
        trace.suggestions = self.trials
        if not self.xs or self.xs[-1] < self.spent:
            self.xs.append(self.spent)
            self.bests.append(self.best)
        trace.curve = {"evals": self.xs, "best": self.bests, "x": f"cumulative {problem.cost_unit}"}
        trace.extra = {"cost_unit": problem.cost_unit, "cost_budget": self.budget, "cost_spent": self.spent,
                       "cost_run": self.spent, "trials": self.trials, "completed": len(trace.losses),
                       "stopped": self.stopped, "failed": 0, "full_trial_equivalents": self.budget / problem.max_steps}
        return trace


OPTUNA_SAMPLERS = ("tpe", "random")
OPTUNA_PRUNERS = ("sha", "hyperband", "median", "nop")


class OptunaPrunerPeer(Method):
    """``optuna:SAMPLER+PRUNER`` on an S2 task: Optuna's own pruning, in-process, the same cost accounting.

    Each trial reports the function at every budget step (one unit of cost each) and stops when
    the pruner says so; trials run one after the other until the cost is spent.
    """

    multi_objective = False

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        sampler, _, pruner = name.removeprefix("optuna:").partition("+")
        if sampler not in OPTUNA_SAMPLERS or pruner not in OPTUNA_PRUNERS:
            raise BenchmarkError(f"method {name!r}: write optuna:SAMPLER+PRUNER with SAMPLER one of "
                                 f"{', '.join(OPTUNA_SAMPLERS)} and PRUNER one of {', '.join(OPTUNA_PRUNERS)}")
        if self.options:
            raise BenchmarkError(f"method {name!r} takes no options")
        self.sampler, self.pruner = sampler, pruner

    def check(self, problem: Problem) -> None:
        if not isinstance(problem, S2Task):
            raise BenchmarkError(f"method {self.name!r} runs the S2 tasks ({', '.join(S2_PROBLEMS)}) in-process, "
                                 f"not {problem.name!r}")

    def _pruner(self, max_steps: int) -> Any:
        import optuna

        if self.pruner == "sha":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_steps, reduction_factor=3)
        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        return optuna.pruners.NopPruner()

    def run(self, problem: Problem, *, iterations: int, batch: int, seed: int, trace: Trace | None = None) -> Trace:
        import optuna

        assert isinstance(problem, S2Task)
        trace = trace if trace is not None else Trace()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        curve = CostCurve(problem, trace, iterations * batch * problem.max_steps)
        sampler = (optuna.samplers.TPESampler(seed=seed) if self.sampler == "tpe"
                   else optuna.samplers.RandomSampler(seed=seed))
        # Named: Optuna's HyperbandPruner puts a trial in a bracket by a hash of the study's name and the trial's
        # number, and an unnamed study gets a random name (the same seed then gave other brackets each run).
        study = optuna.create_study(study_name=f"{problem.name}-{seed}", sampler=sampler,
                                    pruner=self._pruner(problem.max_steps), direction="minimize")
        while curve.left:
            trial = study.ask()
            curve.trials += 1
            config = {n: trial.suggest_float(n, 0.0, 1.0) for n in problem.names}
            value = math.nan
            pruned = False
            for step in range(1, problem.max_steps + 1):
                if not curve.left:
                    break
                value = curve.step(config, step)
                trial.report(value, step)
                if step < problem.max_steps and trial.should_prune():
                    pruned = True
                    break
            else:
                study.tell(trial, value)
                curve.completed(value)
                continue
            # Pruned, or the cost ran out mid-trial.
            study.tell(trial, state=optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.FAIL)
            curve.stopped += 1
        return curve.finish()

    def version(self) -> str:
        return package_version("optuna")
