"""Fakes for the driver-side classes without Ray: a Tune trial as the searcher adapter and the recorder read
it, a scripted searcher, a settable clock, and :class:`Driver`, which calls the adapter, the rung scheduler
and the recorder (``Recorder``) in the order Ray Tune's ``TuneController`` does, one event at a time.

The order followed (Ray 2.x ``ray/tune/execution/tune_controller.py``):

- a trial starts: ``searcher.suggest(trial_id)``, then ``callback.on_trial_start``;
- a result: ``scheduler.on_trial_result``, then ``callback.on_trial_result``, then ``trial.last_result``;
  on ``STOP`` the trial is stopped as below;
- a trial ends (its function returned, or the scheduler stopped it): ``scheduler.on_trial_complete``,
  ``searcher.on_trial_complete(trial_id, result=last_result)``, ``callback.on_trial_complete``;
- a failure with a retry left: ``callback.on_trial_recover``, and the same trial starts again later
  (``callback.on_trial_start``); without one: ``scheduler.on_trial_error``,
  ``searcher.on_trial_complete(trial_id, error=True)``, ``callback.on_trial_error``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl.interfaces import Objective, Searcher, TrialOutcome
from automl.recorder import Counts, Recorder
from automl.records import StepRecord, TrialRecord
from automl.searcher_adapter import SearcherAdapter
from automl.space import Float, SearchSpace
from automl.store import Store
from automl.trial_job import ARTIFACT, BUDGET, CHECKPOINT_DIR, FAILURE_FILE, FINAL, NUMBER, TIMINGS, trial_dir

LOSS = Objective("loss", "min")
SPACE = SearchSpace([Float("x", {}, 0.0, 1.0)])


@dataclass
class FakeTrial:
    """What the driver-side classes read of Ray Tune's ``Trial``."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None

    @property
    def number(self) -> int:
        return int(self.config[NUMBER])


class Promotions:
    """A promotion-type scheduler's side of the searcher adapter (:class:`automl.searcher_adapter.Rungs`) that
    promotes what ``next_promotion`` says and is told nothing else."""

    def __init__(self, next_promotion: Callable[[], int | None]) -> None:
        self.next_promotion = next_promotion

    def no_more_trials(self, first_unissued: int) -> None:
        pass

    def trials_ended(self, numbers: Iterable[int]) -> None:
        pass


class Scripted(Searcher):
    """Suggests ``{"x": 0.0}``, ``{"x": 0.01}``, ... (or the configs it is given, then None) and keeps what it is told."""

    def __init__(self, configs: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(SPACE, [LOSS])
        self.configs = None if configs is None else [dict(c) for c in configs]
        self.asked: list[int] = []
        self.told: list[TrialOutcome] = []

    def suggest(self, number: int) -> dict[str, Any] | None:
        self.asked.append(number)
        if self.configs is None:
            return {"x": number / 100}
        return self.configs.pop(0) if self.configs else None

    def observe(self, outcome: TrialOutcome) -> None:
        self.told.append(outcome)


class Clock:
    """A settable stand-in for ``time.time`` / ``time.monotonic``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Driver:
    """The adapter and the recorder wired as ``engine._tune`` wires them, over a SQLite store in ``directory``.

    Args:
        directory: The run directory (the store's file and the trial directories go there).
        searcher: The strategy the adapter presents.
        max_budget: Budget steps of a full trial.
        scheduler: A :class:`~automl.schedulers.RungScheduler`, or None for FIFO; a promotion-type one is
            also the adapter's ``promote`` and the recorder's ``rungs``, as in ``engine._tune``.
        adapter_options: More keyword arguments of :class:`SearcherAdapter`.
    """

    def __init__(self, directory: Path, searcher: Searcher, *, max_budget: int = 3, scheduler: Any = None,
                 counts: Counts | None = None, export_top: int | None = None, **adapter_options: Any) -> None:
        self.dir = directory
        self.store = Store(f"sqlite:///{directory / 'automl.db'}")
        self.run_id = self.store.create_run(name="driver", directory=str(directory), spec_text="", spec_hash="h",
                                            seed=0, objectives={}, versions={})
        self.max_budget = max_budget
        self.scheduler = scheduler
        rungs = scheduler if scheduler is not None and scheduler.promotes else None
        self.adapter = SearcherAdapter(searcher, max_budget=max_budget, rungs=rungs, **adapter_options)
        self.counts = counts or Counts(total=adapter_options.get("limit") or 0)
        self.notified: list[TrialRecord] = []
        self.progress: list[tuple[int, int, int]] = []
        self.recorder = Recorder(
            self.store, self.run_id, run_dir=directory, metric_keys={"loss"}, primary=LOSS, max_budget=max_budget,
            notify=self.notified.append, counts=self.counts, adapter=self.adapter,
            on_progress=lambda c: self.progress.append((c.done, c.running, c.paused)), rungs=rungs,
            export_top=export_top,
        )
        self._ids = 0

    # -- Tune's events ---------------------------------------------------------------------

    def suggest(self) -> FakeTrial | str | None:
        """Ask the adapter for a trial as Tune does; the trial (not started yet), or what the adapter answered."""
        trial_id = f"tune_{self._ids:03d}"
        self._ids += 1
        config = self.adapter.suggest(trial_id)
        if not isinstance(config, dict):
            return config
        return FakeTrial(trial_id, config)

    def start(self) -> FakeTrial:
        """A new (or promoted) trial from the adapter, started."""
        trial = self.suggest()
        assert isinstance(trial, FakeTrial), f"the adapter gave no trial: {trial!r}"
        self.recorder.on_trial_start(0, [], trial)
        return trial

    def restart(self, trial: FakeTrial) -> None:
        """Tune starts a trial again after a retry (same Tune trial, same id)."""
        self.recorder.on_trial_start(0, [], trial)

    def report(self, trial: FakeTrial, budget: int, loss: float) -> str:
        """The trial reports a budget step; returns the scheduler's decision (a stop also ends the trial)."""
        result = {"loss": loss, BUDGET: budget, "time_total_s": float(budget), "training_iteration": budget}
        decision = self.scheduler.on_trial_result(None, trial, result) if self.scheduler is not None else "CONTINUE"
        if decision == "STOP":
            result["done"] = True
        self.recorder.on_trial_result(0, [], trial, result)
        trial.last_result = result
        if decision == "STOP":
            self._stop(trial)
        return str(decision)

    def complete(self, trial: FakeTrial, loss: float, *, cost: float = 5.0) -> None:
        """The trial's final report (model exported, timed) and the end of its function."""
        result = {"loss": loss, "test_loss": loss + 0.1, BUDGET: self.max_budget, FINAL: True,
                  ARTIFACT: str(trial_dir(self.dir, trial.number) / "model.onnx"), TIMINGS: {"fit_s": 1.0},
                  "time_total_s": cost, "training_iteration": self.max_budget + 1}
        self.recorder.on_trial_result(0, [], trial, result)
        trial.last_result = result
        self._stop(trial)

    def fail(self, trial: FakeTrial, reason: str | None, *, retry: bool = False) -> None:
        """The trial's worker fails, leaving ``reason`` in ``failure.txt`` (None: leaves none)."""
        directory = trial_dir(self.dir, trial.number)
        directory.mkdir(parents=True, exist_ok=True)
        if reason is not None:
            (directory / FAILURE_FILE).write_text(reason)
        if retry:
            self.recorder.on_trial_recover(0, [], trial)
            return
        if self.scheduler is not None:
            self.scheduler.on_trial_error(None, trial)
        self.adapter.on_trial_complete(trial.trial_id, error=True)
        self.recorder.on_trial_error(0, [], trial)

    def _stop(self, trial: FakeTrial) -> None:
        if self.scheduler is not None:
            self.scheduler.on_trial_complete(None, trial, trial.last_result)
        self.adapter.on_trial_complete(trial.trial_id, result=trial.last_result)
        self.recorder.on_trial_complete(0, [], trial)

    # -- reading back ----------------------------------------------------------------------

    def row(self, number: int) -> TrialRecord:
        row = self.store.trial(self.run_id, number)
        assert row is not None, f"trial {number} is not in the store"
        return row

    def steps(self, number: int) -> list[StepRecord]:
        return self.store.steps(self.run_id, number)

    def checkpoint(self, number: int) -> Path:
        """Make trial ``number``'s checkpoint directory as a worker would; returns it."""
        path = trial_dir(self.dir, number) / CHECKPOINT_DIR
        path.mkdir(parents=True, exist_ok=True)
        (path / "state").write_text("step")
        return path

    def close(self) -> None:
        self.store.close()
