"""The seams between our strategies and Ray Tune: the trial function, the searcher
adapter over Tune's ``Searcher`` API, and the driver callback that writes the store.

Workers never write the store: a trial reports to Tune, and the driver-side callback
records each report as it arrives.
"""

from __future__ import annotations

import math
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search import Searcher as TuneSearcher

from automl.data import Splits
from automl.errors import TrialError
from automl.interfaces import Objective, Searcher, Task, Trainer, TrialContext, TrialOutcome
from automl.measure import file_size, measure_latency

__all__ = ["Job", "SearcherAdapter", "StoreCallback", "run_trial"]

#: Reserved keys in the configs and results that travel through Tune.
NUMBER = "_automl_number"
FINAL = "_automl_final"
ERROR = "_automl_error"
TRACE = "_automl_traceback"
ARTIFACT = "_automl_artifact"
BUDGET = "budget"


@dataclass(frozen=True)
class Job:
    """What every trial of a search shares; pickled once and sent to the workers."""

    trainer: type[Trainer]
    params: Mapping[str, Any]
    task: Task
    seed: int
    run_dir: str
    measured: bool
    batch_size: int
    warmup: int
    repeats: int
    cpus: float
    gpus: float


def _finite(metrics: Mapping[str, float], where: str) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        value = float(value)
        if not math.isfinite(value):
            raise TrialError(f"metric {key!r} is {value} {where}")
        out[key] = value
    return out


def run_trial(config: dict[str, Any], data: Splits | None = None, job: Job | None = None) -> None:
    """One trial inside a Ray worker: fit step by step, report, export, measure.

    A Python error is reported as the trial's last result (``_automl_error``) instead of
    raised, so the driver records it as failed with its reason and the search goes on;
    a worker that dies still reaches Tune's error path.
    """
    assert job is not None  # always bound by tune.with_parameters
    config = dict(config)
    number = int(config.pop(NUMBER))
    trial_dir = Path(job.run_dir) / "trials" / f"{number:05d}"
    trial_dir.mkdir(parents=True, exist_ok=True)
    context = TrialContext(job.task, job.seed + number, data, trial_dir, job.cpus, job.gpus)  # type: ignore[arg-type]
    step = 0
    try:
        trainer = job.trainer(config, job.params, context)
        steps = int(trainer.budget_steps)
        metrics: dict[str, float] = {}
        for step in trainer.run_steps(1):
            metrics = _finite(trainer.evaluate("valid"), f"after budget step {step}")
            if step < steps:
                tune.report({**metrics, BUDGET: step})
        if not metrics:
            raise TrialError("the trainer ran no budget step")
        final: dict[str, Any] = dict(metrics)
        if data is not None and len(data.test):
            final.update({f"test_{k}": v for k, v in trainer.evaluate("test").items()})
        artifact = trainer.export(trial_dir)
        if job.measured:
            final["size_bytes"] = float(file_size(artifact))
            predict = trainer.load_predictor(artifact)
            batch = trainer.sample_input(job.batch_size)
            final["latency_ms"] = measure_latency(predict, batch, warmup=job.warmup, repeats=job.repeats)
        tune.report({**final, BUDGET: steps, FINAL: True, ARTIFACT: str(artifact)})
    except Exception as exc:  # any trial failure is data for the store, not a crash
        message = str(exc) if isinstance(exc, TrialError) else f"{type(exc).__name__}: {exc}"
        tune.report({ERROR: message, TRACE: traceback.format_exc(limit=20), BUDGET: step})


class SearcherAdapter(TuneSearcher):
    """Presents one of our :class:`Searcher` objects to Tune.

    Numbers trials in suggestion order, tells the searcher the truth about each end
    (completed at full budget, stopped early by the scheduler, or failed) and saves the
    searcher with Tune's experiment state.
    """

    def __init__(self, searcher: Searcher, *, max_budget: int, first_number: int = 0, limit: int | None = None) -> None:
        super().__init__()
        self.strategy = searcher
        self.max_budget = max_budget
        self.next_number = first_number
        self.limit = limit
        self.live: dict[str, tuple[int, dict[str, Any]]] = {}
        self.exhausted = False

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.limit is not None and self.next_number >= self.limit:
            return TuneSearcher.FINISHED
        config = self.strategy.suggest(self.next_number)
        if config is None:
            self.exhausted = True
            return TuneSearcher.FINISHED
        number = self.next_number
        self.next_number += 1
        self.live[trial_id] = (number, dict(config))
        return {**config, NUMBER: number}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        number, config = self.live.pop(trial_id)
        self.strategy.observe(outcome_of(number, config, result, error, self.max_budget))

    def save(self, checkpoint_path: str) -> None:
        # Written and read only by the engine itself (see the security rule on unpickling).
        with open(checkpoint_path, "wb") as f:
            pickle.dump((self.strategy, self.next_number, self.live), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.strategy, self.next_number, self.live = pickle.load(f)


def outcome_of(
    number: int, config: Mapping[str, Any], result: Mapping[str, Any] | None, error: bool, max_budget: int
) -> TrialOutcome:
    result = result or {}
    budget = int(result.get(BUDGET, 0) or 0)
    if error or ERROR in result:
        status = "failed"
    elif result.get(FINAL):
        status = "completed"
    else:
        status = "stopped"
    values = {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not k.startswith("_") and k != BUDGET}
    return TrialOutcome(number, dict(config), status, values, budget, max_budget)  # type: ignore[arg-type]


def metrics_of(result: Mapping[str, Any], keys: set[str] | None = None) -> dict[str, float]:
    """The metrics in a Tune result (our own keys and Tune's bookkeeping left out)."""
    return {
        k: v for k, v in result.items()
        if (keys is None or k in keys or k.startswith("test_")) and not k.startswith("_") and k != BUDGET
        and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


@dataclass
class Counts:
    """What the progress display shows."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    stopped: int = 0
    best: float | None = None
    best_number: int | None = None
    started: float = field(default_factory=time.time)


class StoreCallback(tune.Callback):
    """Driver side: writes each trial event to the store as it arrives, then notifies plugins."""

    def __init__(
        self, store: Any, run_id: int, *, metric_keys: set[str], primary: Objective, max_budget: int,
        notify: Callable[[dict[str, Any]], None], total: int, on_progress: Callable[[Counts], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.metric_keys = metric_keys
        self.primary = primary
        self.max_budget = max_budget
        self.notify = notify
        self.counts = Counts(total=total)
        self.on_progress = on_progress
        self.first_start: float | None = None
        self.finished: set[int] = set()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the store, the plugin
        # notifier and the progress display are live objects that a resume passes anew.
        state = dict(self.__dict__)
        for key in ("store", "notify", "on_progress", "_lock"):
            state[key] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _number(self, trial: Any) -> int:
        return int(trial.config[NUMBER])

    def _config(self, trial: Any) -> dict[str, Any]:
        return {k: v for k, v in trial.config.items() if k != NUMBER}

    def _emit(self, number: int) -> None:
        row = self.store.trial(self.run_id, number)
        if row:
            self.notify(row)
        if self.on_progress:
            self.on_progress(self.counts)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        now = time.time()
        self.first_start = self.first_start or now
        number = self._number(trial)
        self.store.save_trial(
            self.run_id, number, tune_id=trial.trial_id, status="running", config=self._config(trial),
            started_at=now, max_budget=self.max_budget,
        )
        self.counts.running += 1
        self._emit(number)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        number = self._number(trial)
        if ERROR in result or result.get(FINAL):
            return  # recorded once, at completion
        self.store.add_step(self.run_id, number, int(result.get(BUDGET, 0)), metrics_of(result, self.metric_keys))
        self._emit(number)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        outcome = outcome_of(self._number(trial), self._config(trial), result, False, self.max_budget)
        error = str(result[ERROR]) if ERROR in result else None
        self._finish(trial, outcome.status, result, error)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finish(trial, "failed", trial.last_result or {}, _error_text(trial))

    def _finish(self, trial: Any, status: str, result: Mapping[str, Any], error: str | None) -> None:
        number = self._number(trial)
        if number in self.finished:
            return
        self.finished.add(number)
        now = time.time()
        metrics = metrics_of(result, self.metric_keys)
        budget = int(result.get(BUDGET, 0) or 0)
        if status == "completed":
            self.store.add_step(self.run_id, number, budget, metrics, status=status)
        fields: dict[str, Any] = {"status": status, "finished_at": now, "budget": budget}
        if metrics:
            fields["metrics"] = metrics
        if error:
            fields["error"] = error
        if ARTIFACT in result:
            fields["artifact"] = str(result[ARTIFACT])
        row = self.store.trial(self.run_id, number)
        if row and row["started_at"]:
            fields["duration"] = now - row["started_at"]
        self.store.save_trial(self.run_id, number, **fields)
        c = self.counts
        c.running = max(0, c.running - 1)
        c.done += 1
        if status == "failed":
            c.failed += 1
        elif status == "stopped":
            c.stopped += 1
        value = metrics.get(self.primary.metric)
        if status == "completed" and value is not None:
            if c.best is None or self.primary.to_min(value) < self.primary.to_min(c.best):
                c.best, c.best_number = value, number
        self._emit(number)


def _error_text(trial: Any) -> str:
    """The last line of Tune's error file for a trial whose worker failed."""
    try:
        text = Path(trial.error_file).read_text() if trial.error_file else ""
    except OSError:
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Failure #")]
    for line in reversed(lines):
        if "Error" in line or "error" in line or "killed" in line.lower():
            return line[:2000]
    return lines[-1][:2000] if lines else "the trial's worker failed"
