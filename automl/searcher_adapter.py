"""The searcher adapter: one of our :class:`~automl.interfaces.Searcher` objects presented to Ray Tune as its
``Searcher``, with the cost model that keeps it from starting a trial the wall time cannot finish.

Runs in the driver process (Tune calls ``suggest`` and ``on_trial_complete`` there); the user-facing
strategy it wraps is the plugin's searcher, as Ray Tune keeps its ``Searcher`` apart from the engine-side
``SearchGenerator``. What it shares with the trial workers is in :mod:`automl.trial_job`.
"""

from __future__ import annotations

import math
import os
import pickle
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ray.tune.search import Searcher as TuneSearcher

from automl.interfaces import RungResult, Searcher, TrialOutcome
from automl.trial_job import BUDGET, ERROR, FINAL, NUMBER, TIMINGS

__all__ = ["CostModel", "SearcherAdapter", "metrics_of", "outcome_from_row", "outcome_of"]


class Rungs(Protocol):
    """What the adapter asks of a promotion-type scheduler (:class:`automl.schedulers.RungScheduler`)."""

    def next_promotion(self) -> int | None:
        """A paused trial to re-issue now, or None."""

    def no_more_trials(self, first_unissued: int) -> None:
        """No trial number from ``first_unissued`` on will be handed out."""

    def trials_ended(self, numbers: Iterable[int]) -> None:
        """These trials will not report again."""


class SearcherAdapter(TuneSearcher):
    """Presents one of our :class:`Searcher` objects to Tune.

    Numbers trials in suggestion order (after re-issuing, on resume, the trials a killed
    driver left unfinished and the numbers it handed out that the store never recorded), and
    records each number handed out (``on_issue``: a ``pending`` row) before its state file
    counts it, so a driver killed at any point leaves no number that a resume would skip. Tells
    the searcher the truth about each end (completed at full
    budget, stopped early by the scheduler, or failed) and keeps the searcher's state in a
    file written by the engine itself (``state_path``), at most every ``save_every`` seconds
    and at the end.

    With a promotion-type scheduler (``rungs``: a :class:`Rungs`, the engine's :class:`RungScheduler`),
    a paused trial that became promotable is re-issued, under its own number and config,
    before any new configuration is drawn. The searcher is told of it when it pauses (as stopped
    at the budget it reached) and once more if it completes after a promotion (as completed at
    the full budget): the one number a searcher may be told twice. Searchers that hold a trial
    only until its first outcome (optuna's, hyperopt's, FLAML's) take the second one as they take
    an outcome of a trial they did not suggest (the contract: learn from it or ignore it).

    A searcher that implements :meth:`Searcher.observe_rung` is told each trial's result at each rung
    (``milestones``: the scheduler's) once: as it arrives for a trial that goes on (Tune tells the search
    algorithm only those), and, for a trial the scheduler stopped or paused there, from its last result just
    before the stopped outcome.
    """

    def __init__(
        self,
        searcher: Searcher,
        *,
        max_budget: int,
        first_number: int = 0,
        limit: int | None = None,
        queue: Sequence[tuple[int, dict[str, Any]]] = (),
        state_path: Path | None = None,
        save_every: float = 1.0,
        rungs: Rungs | None = None,
        configs: Mapping[int, Mapping[str, Any]] | None = None,
        deadline: float | None = None,
        on_skip: Callable[[int, dict[str, Any], str], None] | None = None,
        start: Sequence[Mapping[str, Any]] = (),
        reissue: Sequence[int] = (),
        on_issue: Callable[[int, dict[str, Any]], None] | None = None,
        cost_units: Callable[[Mapping[str, Any]], float | None] | None = None,
        milestones: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.strategy = searcher
        self.max_budget = max_budget
        self.next_number = first_number
        self.limit = limit
        self.queue = list(queue)
        #: A promotion-type scheduler: asked for paused trials to re-issue, told when no trial number from a given
        #: one on will be handed out and which trials were drawn but not started, too costly for the time left (a
        #: synchronous scheduler's open rungs stop waiting for them).
        self.rungs = rungs
        #: Config of each trial number that may be re-issued (promotion type).
        self.configs: dict[int, dict[str, Any]] = {n: dict(c) for n, c in (configs or {}).items()}
        self.live: dict[str, tuple[int, dict[str, Any]]] = {}
        self.observed: set[int] = set()
        self.exhausted = False
        self.state_path, self.save_every = state_path, save_every
        self._saved_at, self._dirty = 0.0, False
        #: When the wall-time budget ends (``time.time()``); a new trial predicted to need longer is not started.
        self.deadline = deadline
        #: Records a trial that was drawn but not started (number, config, reason).
        self.on_skip = on_skip
        #: Records a trial number as it is handed out (number, config), before the state file counts it.
        self.on_issue = on_issue
        #: Numbers below ``first_number`` handed out before but never recorded: drawn again, first.
        self.reissue = sorted(reissue)
        self.costs = CostModel()
        #: A configuration's cost relative to others of its kind (the trainer's ``cost``), or None.
        self.cost_units = cost_units
        #: Configs that trials 0, 1, ... run before the searcher is asked (the trainer's low-cost starting
        #: points); the searcher learns from their outcomes like from any trial it did not suggest.
        self.start = [dict(c) for c in start]
        #: The scheduler's rungs (budget steps below the full budget); empty without a rung scheduler.
        self.milestones = frozenset(int(m) for m in milestones)
        #: (trial number, rung) pairs the searcher was told through ``observe_rung``.
        self.rungs_told: set[tuple[int, int]] = set()
        #: Trials told as stopped at a pause (promotion type): told again if they complete after a promotion.
        self.paused_told: set[int] = set()

    #: Draws in a row predicted not to finish before the deadline after which the search ends.
    MAX_SKIPS = 5

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its search algorithm with the experiment; the store writer is a live object
        # (our resume builds a new adapter from the store and the searcher state file).
        return {**self.__dict__, "on_skip": None, "on_issue": None, "cost_units": None}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # FINISHED is a str
        promoted = self.rungs.next_promotion() if self.rungs is not None and not self.queue else None
        if self.queue:
            number, config = self.queue.pop(0)
        elif promoted is not None:
            number, config = promoted, self.configs[promoted]
        else:
            spent = self.limit is not None and self.next_number >= self.limit and not self.reissue
            drawn = None if spent else self._draw()
            if drawn is None and (spent or self.exhausted):
                # No new configuration will come; a running trial may still make a paused one promotable: ask
                # again later. Then a synchronous scheduler ranks its open rungs with what they hold.
                if self.rungs is not None and self.live:
                    return None
                if self.rungs is None:
                    return TuneSearcher.FINISHED
                self.rungs.no_more_trials(self.next_number)
                last = self.rungs.next_promotion()
                if last is None:
                    return TuneSearcher.FINISHED
                drawn = last, self.configs[last]
            if drawn is None:
                # Only configurations too costly for the time left were drawn: ask again when a trial ends,
                # unless not even the cheapest kind seen can finish any more.
                floor = self.costs.floor()
                left = self.deadline - time.time() if self.deadline is not None else math.inf
                if floor is None or floor > left:
                    return TuneSearcher.FINISHED
                return None
            number, config = drawn
        self.live[trial_id] = (number, config)
        if self.rungs is not None:
            self.configs[number] = config
        return {**config, NUMBER: number}

    def _draw(self) -> tuple[int, dict[str, Any]] | None:
        """A new configuration from the searcher, skipping those predicted not to finish before the deadline."""
        for _ in range(self.MAX_SKIPS):
            again = bool(self.reissue)
            if not again and self.limit is not None and self.next_number >= self.limit:
                return None
            number = self.reissue[0] if again else self.next_number
            if number < len(self.start):
                suggested: dict[str, Any] | None = self.start[number]
            else:
                suggested = self.strategy.suggest(number)
            if suggested is None:
                self.exhausted = True
                return None
            config = dict(suggested)
            if again:
                self.reissue.pop(0)
            else:
                self.next_number += 1
            left = self.deadline - time.time() if self.deadline is not None else math.inf
            need = self.costs.predict(config, self._units(config))
            if need is None or need <= left:
                if self.on_issue is not None:
                    # In the store first, then in the state file: a driver killed in between leaves a pending
                    # row that a resume runs, never a number counted as handed out that nobody re-issues.
                    self.on_issue(number, config)
                self._changed()
                return number, config
            reason = (f"not started: trials like it took at least {need:.1f}s and {max(left, 0.0):.1f}s of the "
                      "wall-time budget were left" if self._units(config) is None else
                      f"not started: predicted to take at least {need:.1f}s (the cheapest fit of its kind and, "
                      f"beyond its size, the slope of its kind's fits) and {max(left, 0.0):.1f}s of the wall-time budget were left")
            if self.on_skip is not None:
                self.on_skip(number, config, reason)
            if self.rungs is not None:
                self.rungs.trials_ended([number])
            self.tell(TrialOutcome(number, config, "stopped", {}, 0, self.max_budget, 0.0))
        return None  # every recent draw was too expensive for the time left: start nothing more

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.live:
            number, config = self.live[trial_id]
            self.tell_rung(number, config, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        number, config = self.live.pop(trial_id)
        if result and result.get(ERROR):  # a failure the worker reported (and outlived): an error all the same
            error, result = True, None
        if not error and result:
            self.tell_rung(number, config, result)  # a trial stopped at a rung: its rung result first
        self.tell(outcome_of(number, config, result, error, self.max_budget))

    def tell_rung(self, number: int, config: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Tell the searcher ``result`` when it is a rung result it was not told yet (see the class docstring)."""
        raw = result.get(BUDGET)
        if not self.strategy.observes_rungs or result.get(FINAL) or not isinstance(raw, (int, float)):
            return
        budget = int(raw)
        if budget not in self.milestones or (number, budget) in self.rungs_told:
            return
        self.rungs_told.add((number, budget))
        self.strategy.observe_rung(RungResult(number, dict(config), budget, metrics_of(result), self.max_budget))
        self._changed()

    def _promoted(self, outcome: TrialOutcome) -> bool:
        """A completion of a trial told as stopped at a pause: told again, but its seconds are no cost."""
        return outcome.status == "completed" and outcome.number in self.paused_told

    def retell(self, outcome: TrialOutcome) -> None:
        """A finished trial of this run read back from the store on resume: told as :meth:`tell` tells it; one
        the searcher was told before its state was saved only adds its cost (the state holds no cost model)."""
        if outcome.number in self.observed and not self._promoted(outcome):
            if outcome.status == "completed":
                self.costs.add(outcome, self._units(outcome.config))
            return
        self.tell(outcome)

    def tell(self, outcome: TrialOutcome) -> None:
        promoted = self._promoted(outcome)
        if outcome.number in self.observed and not promoted:
            return
        if outcome.status == "completed" and not promoted:
            # A promoted trial's result holds the seconds of its last piece only (it restarted from a checkpoint
            # as a new Tune trial): no measure of what the configuration costs.
            self.costs.add(outcome, self._units(outcome.config))
        self.strategy.observe(outcome)
        self.observed.add(outcome.number)
        if promoted:
            self.paused_told.discard(outcome.number)
        elif outcome.status == "stopped" and self.rungs is not None and outcome.budget > 0:
            self.paused_told.add(outcome.number)
        self._changed()

    def _units(self, config: Mapping[str, Any]) -> float | None:
        if self.cost_units is None:
            return None
        try:
            units = self.cost_units(config)
            return None if units is None else float(units)
        except Exception:  # a plugin's estimate must never stop the search: predict as without it
            return None

    def _changed(self) -> None:
        self._dirty = True
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if self._dirty and time.monotonic() - self._saved_at >= self.save_every:
            self.flush()

    def flush(self) -> None:
        """Write the searcher's state now if it changed (atomically)."""
        if not self._dirty or self.state_path is None:
            return
        from automl.trust import sign_bytes

        tmp = self.state_path.with_suffix(".tmp")
        # Written and read only by the engine itself (see the security rule on unpickling): signed before it
        # replaces the last state, whose signature stays valid (a kill in between leaves a state that verifies).
        state = pickle.dumps({"strategy": self.strategy, "next_number": self.next_number, "observed": self.observed,
                              "rungs_told": self.rungs_told, "paused_told": self.paused_told})
        sign_bytes(self.state_path.parent, self.state_path.name, state)
        with open(tmp, "wb") as f:
            f.write(state)
        os.replace(tmp, self.state_path)
        self._saved_at = time.monotonic()
        self._dirty = False

    @staticmethod
    def load_state(path: Path) -> dict[str, Any] | None:
        """The state :meth:`flush` wrote to ``path``, or None without one.

        Raises:
            UntrustedRunError: When the file is not signed with this user's key (:mod:`automl.trust`):
                it is never unpickled then.
        """
        from automl.trust import UntrustedRunError, verify_bytes

        if not path.is_file() or path.is_symlink():
            return None
        state = path.read_bytes()
        verdict = verify_bytes(path.parent, path.name, state)
        if not verdict:
            raise UntrustedRunError(f"refusing to unpickle {str(path)!r}: {verdict.reason}; resume the run with "
                                    "--trust if you trust whoever wrote it")
        return dict(pickle.loads(state))

    def save(self, checkpoint_path: str) -> None:
        # Tune's own experiment checkpoint; our resume reads ``state_path`` instead.
        with open(checkpoint_path, "wb") as f:
            pickle.dump((self.next_number, sorted(self.observed)), f)

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError("automl resumes from its own store and searcher state, not from Tune's")


class CostModel:
    """Predicts what a configuration costs from the completed trials seen so far.

    Configurations are grouped by their categorical values (the model chosen, its
    preprocessing...). Without cost units (``TrainerSpec.cost``), or while a group has been seen
    at one size only, the prediction for a configuration is the cheapest completed trial of its
    group. With units seen at two sizes or more, fitting is a line through the group's cheapest
    fit and its largest size (a fixed part - cross-validation folds, preprocessing, start-up of the
    library - and a part per unit), plus the group's lowest other seconds (export, measurement:
    about constant per kind). A line, not seconds per unit alone: 4 boosted trees that fitted in
    0.34 s are nearly all fixed cost, and per unit they predicted 57 s for 251 trees that fit in
    about 2. None for a group never seen. The lowest, not a mean: a trial is refused only when even
    the cheapest estimate of its kind says it would not finish, so a cheap corner of an expensive
    model family is still tried.
    """

    def __init__(self) -> None:
        self.cheapest: dict[str, float] = {}
        #: Per group: the cheapest fitting seconds and the units of that trial.
        self.fixed: dict[str, tuple[float, float]] = {}
        #: Per group: the largest units seen and the lowest fitting seconds at that size.
        self.largest: dict[str, tuple[float, float]] = {}
        #: Lowest seconds besides fitting seen, per group.
        self.overhead: dict[str, float] = {}

    @staticmethod
    def key(config: Mapping[str, Any]) -> str:
        return repr(sorted((k, v) for k, v in config.items() if isinstance(v, (str, bool)) or v is None))

    def add(self, outcome: TrialOutcome, units: float | None = None) -> None:
        if outcome.cost_s is None or not math.isfinite(outcome.cost_s) or outcome.number < 0:
            return  # warm-start trials ran on another machine, at another time
        key = self.key(outcome.config)
        cost = float(outcome.cost_s)
        self.cheapest[key] = min(self.cheapest.get(key, math.inf), cost)
        if units is None or units <= 0 or not math.isfinite(units):
            return
        fit = outcome.fit_s
        if fit is not None and math.isfinite(fit) and 0 <= fit <= cost:
            fit = float(fit)
            self.overhead[key] = min(self.overhead.get(key, math.inf), cost - fit)
        else:
            fit = cost  # an old store: the whole cost counts as fitting
        if fit < self.fixed.get(key, (math.inf, 0.0))[0]:
            self.fixed[key] = (fit, units)
        size, seconds = self.largest.get(key, (-math.inf, math.inf))
        if units > size or (units == size and fit < seconds):
            self.largest[key] = (units, fit)

    def seconds_per_unit(self, key: str) -> float:
        """The slope of the group's fitting line (0 while it has been seen at one size only)."""
        (base, at), (size, seconds) = self.fixed[key], self.largest[key]
        return max(0.0, seconds - base) / (size - at) if size > at else 0.0

    def predict(self, config: Mapping[str, Any], units: float | None = None) -> float | None:
        key = self.key(config)
        if units is not None and key in self.fixed and units > 0 and math.isfinite(units):
            base, at = self.fixed[key]
            return base + max(0.0, units - at) * self.seconds_per_unit(key) + self.overhead.get(key, 0.0)
        return self.cheapest.get(key)

    def floor(self) -> float | None:
        """The cheapest trial of any kind: with less time left than this, nothing can finish."""
        return min(self.cheapest.values(), default=None)


def outcome_of(
    number: int, config: Mapping[str, Any], result: Mapping[str, Any] | None, error: bool, max_budget: int
) -> TrialOutcome:
    result = result or {}
    budget = int(result.get(BUDGET, 0) or 0)
    if error:
        status = "failed"
    elif result.get(FINAL):
        status = "completed"
    else:
        status = "stopped"
    values = metrics_of(result)
    # Tune's own clock of the trial's run (training, evaluation, export, measurement).
    cost = result.get("time_total_s")
    cost_s = float(cost) if isinstance(cost, (int, float)) and math.isfinite(cost) else None
    return TrialOutcome(number, dict(config), status, values, budget, max_budget, cost_s,  # type: ignore[arg-type]
                        _fit_seconds(result.get(TIMINGS)))


def _fit_seconds(timings: Any) -> float | None:
    fit = timings.get("fit_s") if isinstance(timings, Mapping) else None
    return float(fit) if isinstance(fit, (int, float)) and math.isfinite(fit) else None


def outcome_from_row(row: Mapping[str, Any]) -> TrialOutcome:
    """A stored trial as the searcher is told about it (resume, warm start)."""
    return TrialOutcome(
        int(row["number"]), dict(row["config"]), row["status"], {k: v for k, v in (row["metrics"] or {}).items()
                                                                 if v is not None},
        int(row["budget"] or 0), int(row["max_budget"] or 1),
        float(row["duration"]) if row.get("duration") is not None else None,
        _fit_seconds(row.get("timings")),
    )


#: What Tune adds to every result besides the trial's own metrics.
_TUNE_KEYS = frozenset({
    "time_this_iter_s", "time_total_s", "timestamp", "training_iteration", "pid", "time_since_restore",
    "iterations_since_restore", "timesteps_total", "episodes_total", "timesteps_since_restore", "done",
})


def metrics_of(result: Mapping[str, Any], keys: set[str] | None = None) -> dict[str, float]:
    """The metrics in a Tune result: ``keys`` (and ``test_*``), or every number but Tune's bookkeeping
    and our own keys when ``keys`` is None."""
    return {
        k: float(v) for k, v in result.items()
        if (k in keys or k.startswith("test_") if keys is not None else k not in _TUNE_KEYS)
        and not k.startswith("_") and k != BUDGET and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
