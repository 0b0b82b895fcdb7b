"""The seams between our strategies and Ray Tune: the trial function, the searcher
adapter over Tune's ``Searcher`` API, and the driver callback that writes the store.

Workers never write the store: a trial reports to Tune, and the driver-side callback
records each report as it arrives.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import pickle
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search import Searcher as TuneSearcher

from automl.data import Splits
from automl.errors import TrialError
from automl.interfaces import (
    UNCOMPRESSED,
    Compressor,
    Objective,
    Searcher,
    Task,
    Trainer,
    TrialContext,
    TrialOutcome,
    split_config,
)
from automl.measure import measure_latency
from automl.records import TrialRecord

__all__ = ["Job", "SearcherAdapter", "StoreCallback", "compress", "run_trial"]

#: Reserved keys in the configs and results that travel through Tune.
NUMBER = "_automl_number"
FINAL = "_automl_final"
ERROR = "_automl_error"
ARTIFACT = "_automl_artifact"
TIMINGS = "_automl_timings"
MEASURED_AS = "_automl_measured_as"
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
    #: Engine metrics to measure at intermediate steps too (for a multi-objective scheduler).
    rung_metrics: tuple[str, ...] = ()
    #: Steps where the scheduler compares trials (empty: every step): the only ones that need rung_metrics.
    rung_steps: tuple[int, ...] = ()
    trial_timeout: float | None = None
    #: When the trial phase of the search ends (``time.time()``): a trial still running then ends there.
    deadline: float | None = None
    #: Where the spec's import paths resolve from (the spec's directory, the driver's working directory).
    sys_path: tuple[str, ...] = ()
    #: The spec's compressors in order: (name, factory, fixed params).
    compressors: tuple[tuple[str, Callable[..., Compressor], Mapping[str, Any]], ...] = ()
    #: Save each completed trial's predictions (the search builds an ensemble from them, automl.ensemble).
    predictions: bool = False
    #: ``models.export: top``: (primary metric, mode, how many): a trial exports its model only when its
    #: primary value is within the best that many completed so far (read from :data:`EXPORT_BAR`).
    export_top: tuple[str, str, int] | None = None


def trial_dir(run_dir: str | Path, number: int) -> Path:
    return Path(run_dir) / "trials" / f"{number:05d}"


FAILURE_FILE = "failure.txt"
CHECKPOINT_DIR = "checkpoint"
#: Where a trial's model is exported to estimate objectives at a rung (replaced at each rung).
RUNG_DIR = "rung"


def remove_restart_files(directory: Path) -> None:
    """Drop what a trial keeps only to go on (its checkpoint, its rung export): disk stays bounded."""
    shutil.rmtree(directory / CHECKPOINT_DIR, ignore_errors=True)
    shutil.rmtree(directory / RUNG_DIR, ignore_errors=True)


def _finite(metrics: Mapping[str, float], where: str) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        value = float(value)
        if not math.isfinite(value):
            raise TrialError(f"metric {key!r} is {value} {where}")
        out[key] = value
    return out


def _measure(trainer: Trainer, artifact: Path, job: Job, which: Sequence[str], quick: bool,
             how: dict[str, str] | None = None) -> dict[str, float]:
    """Size and latency of the exported file; ``how`` (when given) receives what each figure is."""
    out: dict[str, float] = {}
    notes: dict[str, str] = {}
    if "size_bytes" in which:
        size, kind = trainer.model_size(artifact)
        out["size_bytes"] = float(size)
        notes["size_bytes"] = f"{artifact.suffix.lstrip('.') or artifact.name}: {kind}"
    if "latency_ms" in which:
        predict = trainer.load_predictor(artifact)
        batch = trainer.sample_input(job.batch_size)
        warmup, repeats = (2, 10) if quick else (job.warmup, job.repeats)
        out["latency_ms"] = measure_latency(predict, batch, warmup=warmup, repeats=repeats)
        notes["latency_ms"] = (f"{artifact.suffix.lstrip('.') or artifact.name}, batch {job.batch_size}, 1 thread, "
                               f"median of {repeats} calls after {warmup}")
    if how is not None:
        how.update(notes)
    return out


def _rung_metrics(trainer: Trainer, directory: Path, job: Job) -> dict[str, float]:
    """Latency/size at a rung: the trainer's own cheap estimates, else a quick export measured."""
    out = {k: float(v) for k, v in trainer.rung_estimates(job.rung_metrics).items() if k in job.rung_metrics}
    missing = [m for m in job.rung_metrics if m not in out]
    if missing:
        out.update(_measure(trainer, trainer.export(directory), job, missing, quick=True))
    return out


def _fail(directory: Path, reason: str) -> None:
    """Leave the reason where the driver finds it, whatever becomes of this process."""
    with contextlib.suppress(OSError):
        (directory / FAILURE_FILE).write_text(reason)


#: The reason a trial still running when the wall-time budget ends leaves (recorded as stopped, best step kept).
DEADLINE_REASON = "stopped when the wall-time budget ran out"


def _watchdog(directory: Path, seconds: float, reason: str) -> threading.Timer:
    """End the trial after ``seconds`` with ``reason``: a step cannot be interrupted from inside, so the worker exits.

    Used for ``trial_timeout`` (the trial fails) and for the wall-time budget: Tune lets a running
    trial finish its step for up to 10 s after the experiment's time budget, and a fit step can
    take far longer, so the search would end late.
    """

    def fire() -> None:
        _fail(directory, reason)
        os._exit(3)

    timer = threading.Timer(max(0.0, seconds), fire)
    timer.daemon = True
    timer.start()
    return timer


def compress(
    trainer: Trainer, compressors: Sequence[tuple[str, Compressor]], directory: Path, *, test: bool
) -> tuple[Path, dict[str, float]]:
    """Compress a trained model, export it and score what is exported.

    Runs every ``compress_model`` in order, evaluates the model in memory, exports it, runs
    every ``compress_artifact`` in order on the file; when one rewrote the file, the metrics
    are the file's own (``trainer.evaluate_artifact``).

    Returns:
        The final artifact and its metrics: the validation metrics, ``test_<metric>`` when
        ``test``, and each compressor's own metrics.

    Raises:
        TrialError: When a metric is NaN or infinite after compression.
    """
    names = ", ".join(name for name, _ in compressors)
    for _, compressor in compressors:
        compressor.compress_model(trainer)
    valid = _finite(trainer.evaluate("valid"), f"after compression ({names})")
    tested = trainer.evaluate("test") if test else {}
    artifact = trainer.export(directory)
    rewritten = False
    for _, compressor in compressors:
        new = compressor.compress_artifact(trainer, artifact)
        if new is not None:
            artifact, rewritten = Path(new), True
    if rewritten:
        valid = _finite(trainer.evaluate_artifact(artifact, "valid"), f"on the compressed file {artifact.name} ({names})")
        if test:
            tested = trainer.evaluate_artifact(artifact, "test")
    out = {**valid, **{f"test_{k}": float(v) for k, v in tested.items()}}
    for name, compressor in compressors:
        out.update(_finite(compressor.metrics(), f"reported by compressor {name!r}"))
    return artifact, out


def run_trial(config: dict[str, Any], data: Splits | None = None, job: Job | None = None) -> None:
    """One trial inside a Ray worker: fit step by step, report, checkpoint, export, measure.

    A failure (an exception, a NaN or infinite metric, a timeout) writes its one-line reason to
    ``failure.txt`` in the trial directory and ends the trial with an error, so Tune retries
    it when the spec allows and the driver records the reason. A trial restarted after a
    failure or a resume continues from its last checkpoint when the trainer saves them.
    """
    assert job is not None  # always bound by tune.with_parameters
    for entry in job.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    config = dict(config)
    number = int(config.pop(NUMBER))
    directory = trial_dir(job.run_dir, number)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / FAILURE_FILE).unlink(missing_ok=True)
    context = TrialContext(job.task, job.seed + number, data, directory, job.cpus, job.gpus)  # type: ignore[arg-type]
    timers = []
    if job.trial_timeout:
        timers.append(_watchdog(directory, job.trial_timeout, f"exceeded trial_timeout of {job.trial_timeout:g}s"))
    if job.deadline is not None:
        timers.append(_watchdog(directory, job.deadline - time.time(), DEADLINE_REASON))
    checkpoint = directory / CHECKPOINT_DIR
    step = 0
    # The trainer never sees the compressors' entries (`prune.amount`); each compressor gets its own.
    trainer_config, compressor_config = split_config(config, [name for name, _, _ in job.compressors])
    began = time.perf_counter()
    spent = {"fit_s": 0.0, "export_s": 0.0, "measure_s": 0.0}
    try:
        trainer = job.trainer(trainer_config, job.params, context)
        steps = int(trainer.budget_steps)
        start = 1
        if checkpoint.is_dir():
            with contextlib.suppress(NotImplementedError):
                start = int(trainer.load_checkpoint(checkpoint)) + 1
        metrics: dict[str, float] = {}
        # Closed explicitly: a trainer whose steps run elsewhere (DDP workers) stops them as soon as
        # anything here raises, not when the generator happens to be collected.
        steps_iter = trainer.run_steps(start)
        try:
            mark = time.perf_counter()
            for step in steps_iter:
                metrics = _finite(trainer.evaluate("valid"), f"after budget step {step}")
                spent["fit_s"] += time.perf_counter() - mark
                if step < steps:
                    extra = {}
                    # Exporting and timing the model costs more than an epoch of a small network: only
                    # where the scheduler decides (and at the first step after a restart, which may be one).
                    if job.rung_metrics and (not job.rung_steps or step in job.rung_steps or step == start):
                        mark = time.perf_counter()
                        extra = _rung_metrics(trainer, directory / RUNG_DIR, job)
                        spent["measure_s"] += time.perf_counter() - mark
                    _save_checkpoint(trainer, checkpoint, step)
                    tune.report({**metrics, **extra, BUDGET: step})
                mark = time.perf_counter()
        finally:
            close = getattr(steps_iter, "close", None)
            if close is not None:
                close()
        if not metrics:
            raise TrialError("the trainer ran no budget step")
        final: dict[str, Any] = dict(metrics)
        test = data is not None and len(data.test) > 0
        if test:
            final.update({f"test_{k}": v for k, v in trainer.evaluate("test").items()})
        measured_as: dict[str, str] = {}
        skip = _below_export_bar(job, final)
        if skip is not None:  # far from the best: its metrics are kept, its model is not written
            remove_restart_files(directory)
            total = time.perf_counter() - began
            timings = {**spent, "other_s": max(0.0, total - sum(spent.values())), "total_s": total}
            tune.report({**final, BUDGET: steps, FINAL: True, TIMINGS: timings, MEASURED_AS: {"model": skip}})
            return
        if job.compressors:
            compressors = [(name, factory({**fixed, **compressor_config[name]}, context))
                           for name, factory, fixed in job.compressors]
            before = {f"{k}{UNCOMPRESSED}": v for k, v in final.items()}
            mark = time.perf_counter()
            artifact, after = compress(trainer, compressors, directory, test=test)
            spent["export_s"] += time.perf_counter() - mark  # compression included
            final = {**before, **after}
        else:
            mark = time.perf_counter()
            artifact = trainer.export(directory)
            spent["export_s"] += time.perf_counter() - mark
        if job.measured:
            mark = time.perf_counter()
            final.update(_measure(trainer, artifact, job, ("size_bytes", "latency_ms"), quick=False, how=measured_as))
            spent["measure_s"] += time.perf_counter() - mark
        if job.predictions:
            _save_predictions(trainer, directory, test)
        remove_restart_files(directory)
        total = time.perf_counter() - began
        timings = {**spent, "other_s": max(0.0, total - sum(spent.values())), "total_s": total}
        tune.report({**final, BUDGET: steps, FINAL: True, ARTIFACT: str(artifact), TIMINGS: timings,
                     MEASURED_AS: measured_as})
    except Exception as exc:  # any trial failure is data for the store, not a crash
        reason = str(exc) if isinstance(exc, TrialError) else f"{type(exc).__name__}: {exc}"
        _fail(directory, reason.strip().splitlines()[0][:2000] if reason.strip() else type(exc).__name__)
        (directory / "traceback.txt").write_text(traceback.format_exc(limit=30))
        raise TrialError(reason) from None
    finally:
        for timer in timers:
            timer.cancel()


#: The file (in the run directory) where the driver keeps the value a trial must reach to export its model.
EXPORT_BAR = "export-bar.json"


def _below_export_bar(job: Job, metrics: Mapping[str, Any]) -> str | None:
    """Why this trial does not export its model (``models.export: top``), or None when it does."""
    if job.export_top is None:
        return None
    metric, mode, top = job.export_top
    value = metrics.get(metric)
    try:
        bar = json.loads((Path(job.run_dir) / EXPORT_BAR).read_text())["value"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # fewer than `top` trials completed so far (or a bar being written): export
    if value is None or bar is None:
        return None
    worse = float(value) < float(bar) if mode == "max" else float(value) > float(bar)
    if not worse:
        return None
    return f"not exported: {metric} {float(value):.6g} is not among the {top} best completed so far ({float(bar):.6g})"


def _save_predictions(trainer: Trainer, directory: Path, test: bool) -> None:
    """Save the trainer's predictions for the ensemble step; a trainer that cannot costs the trial nothing.

    The trial stays completed whatever happens here: the reason is left in a file for the
    ensemble step's summary, and the trial is simply no ensemble candidate.
    """
    from automl.ensemble import PREDICTIONS, PREDICTIONS_ERROR, save_predictions

    for stale in (PREDICTIONS_ERROR, PREDICTIONS.format(split="valid"), PREDICTIONS.format(split="test")):
        (directory / stale).unlink(missing_ok=True)  # from an earlier attempt of this trial

    for split in ("valid", "test") if test else ("valid",):
        try:
            values = trainer.predictions(split)  # type: ignore[arg-type]
            if values is not None:
                save_predictions(directory, split, values)
        except Exception as exc:  # any trainer error: the trial keeps its result
            with contextlib.suppress(OSError):
                (directory / PREDICTIONS.format(split=split)).unlink(missing_ok=True)
                (directory / PREDICTIONS_ERROR).write_text(f"{split}: {type(exc).__name__}: {exc}"[:2000])
            return


@functools.cache
def _takes_step(cls: type[Trainer]) -> bool:
    """Whether ``cls.save_checkpoint`` takes ``step`` (asked once per trainer class).

    A trainer written for 0.1, ``save_checkpoint(self, directory)``, is called without it.
    """
    try:
        parameters = inspect.signature(cls.save_checkpoint).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): call it the 0.1 way
        return False
    return any(p.name == "step" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.kind == p.VAR_KEYWORD
               for p in parameters)


def _save_checkpoint(trainer: Trainer, checkpoint: Path, step: int) -> None:
    """Save after budget step ``step`` atomically: a crash while saving leaves the previous checkpoint intact."""
    tmp = checkpoint.with_name(CHECKPOINT_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    saved = trainer.save_checkpoint(tmp, step=step) if _takes_step(type(trainer)) else trainer.save_checkpoint(tmp)
    if saved:
        shutil.rmtree(checkpoint, ignore_errors=True)
        tmp.rename(checkpoint)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


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

    With a promotion-type scheduler (``promote``: its :meth:`RungScheduler.next_promotion`),
    a paused trial that became promotable is re-issued, under its own number and config,
    before any new configuration is drawn; the searcher was told of it once, when it paused
    (as stopped at the budget it reached: searchers such as optuna's cannot be told twice).
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
        promote: Callable[[], int | None] | None = None,
        configs: Mapping[int, Mapping[str, Any]] | None = None,
        deadline: float | None = None,
        on_skip: Callable[[int, dict[str, Any], str], None] | None = None,
        start: Sequence[Mapping[str, Any]] = (),
        reissue: Sequence[int] = (),
        on_issue: Callable[[int, dict[str, Any]], None] | None = None,
        cost_units: Callable[[Mapping[str, Any]], float | None] | None = None,
    ) -> None:
        super().__init__()
        self.strategy = searcher
        self.max_budget = max_budget
        self.next_number = first_number
        self.limit = limit
        self.queue = list(queue)
        self.promote = promote
        #: Config of each trial number that may be re-issued (promotion type).
        self.configs: dict[int, dict[str, Any]] = {n: dict(c) for n, c in (configs or {}).items()}
        self.live: dict[str, tuple[int, dict[str, Any]]] = {}
        self.observed: set[int] = set()
        self.exhausted = False
        self.state_path = state_path
        self.save_every = save_every
        self._saved_at = 0.0
        self._dirty = False
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

    #: Draws in a row predicted not to finish before the deadline after which the search ends.
    MAX_SKIPS = 5

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its search algorithm with the experiment; the store writer is a live object
        # (our resume builds a new adapter from the store and the searcher state file).
        return {**self.__dict__, "on_skip": None, "on_issue": None, "cost_units": None}

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # FINISHED is a str
        promoted = self.promote() if self.promote is not None and not self.queue else None
        if self.queue:
            number, config = self.queue.pop(0)
        elif promoted is not None:
            number, config = promoted, self.configs[promoted]
        else:
            if self.limit is not None and self.next_number >= self.limit and not self.reissue:
                # A running trial may still make a paused one promotable: ask again later.
                return None if self.promote is not None and self.live else TuneSearcher.FINISHED
            drawn = self._draw()
            if drawn is None:
                # Only configurations too costly for the time left were drawn: ask again when a trial ends,
                # unless not even the cheapest kind seen can finish any more (or the searcher is done).
                floor = self.costs.floor()
                left = self.deadline - time.time() if self.deadline is not None else math.inf
                if self.exhausted or floor is None or floor > left:
                    return TuneSearcher.FINISHED
                return None
            number, config = drawn
        self.live[trial_id] = (number, config)
        if self.promote is not None:
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
                      f"not started: predicted to take at least {need:.1f}s (its size times the lowest seconds per "
                      f"unit of its kind) and {max(left, 0.0):.1f}s of the wall-time budget were left")
            if self.on_skip is not None:
                self.on_skip(number, config, reason)
            self.tell(TrialOutcome(number, config, "stopped", {}, 0, self.max_budget, 0.0))
        return None  # every recent draw was too expensive for the time left: start nothing more

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        number, config = self.live.pop(trial_id)
        self.tell(outcome_of(number, config, result, error, self.max_budget))

    def tell(self, outcome: TrialOutcome) -> None:
        if outcome.number in self.observed:
            return
        if outcome.status == "completed":
            self.costs.add(outcome, self._units(outcome.config))
        self.strategy.observe(outcome)
        self.observed.add(outcome.number)
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
        tmp = self.state_path.with_suffix(".tmp")
        # Written and read only by the engine itself (see the security rule on unpickling).
        with open(tmp, "wb") as f:
            pickle.dump({"strategy": self.strategy, "next_number": self.next_number, "observed": self.observed}, f)
        os.replace(tmp, self.state_path)
        self._saved_at = time.monotonic()
        self._dirty = False

    @staticmethod
    def load_state(path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            return dict(pickle.load(f))

    def save(self, checkpoint_path: str) -> None:
        # Tune's own experiment checkpoint; our resume reads ``state_path`` instead.
        with open(checkpoint_path, "wb") as f:
            pickle.dump((self.next_number, sorted(self.observed)), f)

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError("automl resumes from its own store and searcher state, not from Tune's")


def best_step(steps: Sequence[Mapping[str, Any]], primary: Objective) -> dict[str, Any]:
    """``metrics`` and ``budget`` of the best of a trial's stored steps on the primary objective ({} when none)."""
    scored = [r for r in steps if isinstance((r["metrics"] or {}).get(primary.metric), (int, float))]
    if not scored:
        return {}
    best = min(scored, key=lambda r: (primary.to_min(float(r["metrics"][primary.metric])), -r["step"]))
    return {"metrics": dict(best["metrics"]), "budget": int(best["step"])}


class CostModel:
    """Predicts what a configuration costs from the completed trials seen so far.

    Configurations are grouped by their categorical values (the model chosen, its
    preprocessing...). Without cost units (``TrainerSpec.cost``) the prediction for a
    configuration is the cheapest completed trial of its group; with them, its units times the
    group's lowest fitting seconds per unit, plus the group's lowest other seconds (start-up,
    export, measurement: about constant per kind, so 10 trees that took 3 s, 2.9 of them
    exporting, do not predict 300 s for 1,000 trees); None for a group never seen. The lowest,
    not a mean: a trial is refused only when even the cheapest rate of its kind says it would
    not finish, so a cheap corner of an expensive model family is still tried.
    """

    def __init__(self) -> None:
        self.cheapest: dict[str, float] = {}
        #: Lowest seconds per cost unit seen, per group (fitting seconds where trials reported them).
        self.rate: dict[str, float] = {}
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
            self.rate[key] = min(self.rate.get(key, math.inf), float(fit) / units)
            self.overhead[key] = min(self.overhead.get(key, math.inf), cost - float(fit))
        else:
            self.rate[key] = min(self.rate.get(key, math.inf), cost / units)

    def predict(self, config: Mapping[str, Any], units: float | None = None) -> float | None:
        key = self.key(config)
        if units is not None and key in self.rate and units > 0 and math.isfinite(units):
            return units * self.rate[key] + self.overhead.get(key, 0.0)
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


@dataclass
class Counts:
    """What the progress display shows."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    stopped: int = 0
    paused: int = 0
    best: float | None = None
    best_number: int | None = None
    started: float = field(default_factory=time.time)


class TargetStopper(tune.Stopper):
    """Ends the whole search once a completed trial reaches ``budget.target`` (read from :class:`Counts`)."""

    def __init__(self, counts: Counts, primary: Objective, target: float) -> None:
        self.counts = counts
        self.primary = primary
        self.target = target

    def __getstate__(self) -> dict[str, Any]:
        # Tune saves its stopper with the experiment state; the live counts are rebuilt on resume.
        return {**self.__dict__, "counts": Counts(total=self.counts.total)}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # single trials end by their budget or the scheduler

    def stop_all(self) -> bool:
        best = self.counts.best
        return best is not None and self.primary.to_min(best) <= self.primary.to_min(self.target)


class StoreCallback(tune.Callback):
    """Driver side: writes each trial event to the store as it arrives, then notifies plugins."""

    def __init__(
        self, store: Any, run_id: int, *, run_dir: Path, metric_keys: set[str], primary: Objective, max_budget: int,
        notify: Callable[[TrialRecord], None], counts: Counts, adapter: SearcherAdapter,
        on_progress: Callable[[Counts], None] | None = None, rungs: Any = None, export_top: int | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        #: ``models.export: top``: keep :data:`EXPORT_BAR` at the ``export_top``-th best completed value.
        self.export_top = export_top
        self.values: list[float] = []
        self.run_dir = run_dir
        self.metric_keys = metric_keys
        self.primary = primary
        self.max_budget = max_budget
        self.notify = notify
        self.counts = counts
        self.adapter = adapter
        self.on_progress = on_progress
        #: A promotion-type :class:`~automl.schedulers.RungScheduler`: tells a pause from a stop.
        self.rungs = rungs
        self.first_start: float | None = None
        self.finished: set[int] = set()
        self.recovered: set[int] = set()
        #: When each trial's current run began (a promoted trial runs in several pieces).
        self.segment: dict[int, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the store, the plugin
        # notifier and the progress display are live objects (our resume builds new ones).
        state = dict(self.__dict__)
        for key in ("store", "notify", "on_progress", "adapter", "rungs"):
            state[key] = None
        return state

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

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.adapter.maybe_flush()

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        now = time.time()
        self.first_start = self.first_start or now
        number = self._number(trial)
        row = self.store.trial(self.run_id, number)
        self.segment[number] = now
        self.counts.running += 1
        if row and row.status == "paused":  # promoted: the same trial goes on from its checkpoint
            self.counts.paused = max(0, self.counts.paused - 1)
            self.store.save_trial(self.run_id, number, tune_id=trial.trial_id, status="running")
            self._emit(number)
            return
        if number in self.recovered:  # a retry: counted by on_trial_recover
            attempts = int(row.attempts or 1) if row else 1
        else:  # first start, or a restart of a trial a killed driver left behind
            attempts = int(row.attempts or 1) + 1 if row and row.started_at else 1
        self.store.save_trial(
            self.run_id, number, tune_id=trial.trial_id, status="running", config=self._config(trial),
            started_at=now, max_budget=self.max_budget, attempts=attempts,
        )
        self._emit(number)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        if result.get(FINAL):
            return  # recorded once, at completion
        number = self._number(trial)
        self.store.add_step(self.run_id, number, int(result.get(BUDGET, 0)), metrics_of(result, self.metric_keys))
        self._emit(number)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        number = self._number(trial)
        row = self.store.trial(self.run_id, number)
        self.recovered.add(number)
        self.counts.running = max(0, self.counts.running - 1)  # its worker ended; the restart counts it again
        self.store.save_trial(self.run_id, number, attempts=(int(row.attempts or 1) if row else 1) + 1,
                              error=f"retrying after: {self._failure(trial)}")
        self._emit(number)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        outcome = outcome_of(self._number(trial), self._config(trial), result, False, self.max_budget)
        self._finish(trial, outcome.status, result, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        reason = self._failure(trial)
        if reason == DEADLINE_REASON:  # not the trial's fault: stopped, and its best step is kept
            self._finish(trial, "stopped", trial.last_result or {}, reason)
            best = best_step(self.store.steps(self.run_id, self._number(trial)), self.primary)
            if best:
                self.store.save_trial(self.run_id, self._number(trial), **best)
            return
        self._finish(trial, "failed", trial.last_result or {}, reason)

    def _failure(self, trial: Any) -> str:
        path = trial_dir(self.run_dir, self._number(trial)) / FAILURE_FILE
        with contextlib.suppress(OSError):
            text = path.read_text().strip()
            if text:
                return text
        return _error_text(trial)

    def _finish(self, trial: Any, status: str, result: Mapping[str, Any], error: str | None) -> None:
        number = self._number(trial)
        if number in self.finished:
            return
        paused = status == "stopped" and self.rungs is not None and number in self.rungs.paused
        if not paused:
            self.finished.add(number)
        now = time.time()
        metrics = metrics_of(result, self.metric_keys) if not result.get(ERROR) else {}
        budget = int(result.get(BUDGET, 0) or 0)
        if status == "completed":
            self.store.add_step(self.run_id, number, budget, metrics, status=status)
        fields: dict[str, Any] = {"status": "paused" if paused else status, "finished_at": now, "budget": budget}
        if metrics:
            fields["metrics"] = metrics
        fields["error"] = error
        if ARTIFACT in result:
            fields["artifact"] = str(result[ARTIFACT])
        if isinstance(result.get(TIMINGS), Mapping):
            fields["timings"] = dict(result[TIMINGS])
        if isinstance(result.get(MEASURED_AS), Mapping):
            fields["measured_as"] = dict(result[MEASURED_AS])
        row = self.store.trial(self.run_id, number)
        began = self.segment.pop(number, row.started_at if row else None)
        if began:  # the time it ran: a promoted trial's pieces add up, its time paused does not
            fields["duration"] = float((row.duration if row else None) or 0.0) + now - began
        self.store.save_trial(self.run_id, number, **fields)
        c = self.counts
        c.running = max(0, c.running - 1)
        if paused:  # its checkpoint stays: a promotion continues from it
            c.paused += 1
        else:
            self._end_for_good(number, status)
        value = metrics.get(self.primary.metric)
        better = c.best is None or (value is not None and self.primary.to_min(value) < self.primary.to_min(c.best))
        if status == "completed" and value is not None and better:
            c.best, c.best_number = value, number
        if status == "completed" and value is not None:
            self.note_completed(float(value))
        if self.rungs is not None:
            for dropped in self.rungs.take_dropped():
                if dropped != number and dropped not in self.finished:
                    self.finished.add(dropped)
                    self.store.save_trial(self.run_id, dropped, status="stopped", error=(
                        f"paused, then stopped for good: not promoted, and only {self.rungs.max_paused} paused "
                        "trials keep their checkpoints (scheduler option max_paused)"))
                    c.paused = max(0, c.paused - 1)
                    self._end_for_good(dropped, "stopped")
                    self._emit(dropped)  # plugins are told of every early stop, this one too
        self._emit(number)

    def note_completed(self, value: float) -> None:
        """Count a completed trial's primary value; rewrite the export bar once ``export_top`` trials completed."""
        if self.export_top is None or not math.isfinite(value):
            return
        self.values.append(value)
        if len(self.values) < self.export_top:
            return
        ranked = sorted(self.values, key=self.primary.to_min)
        bar = ranked[self.export_top - 1]
        path = self.run_dir / EXPORT_BAR
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"metric": self.primary.metric, "value": bar}))
        os.replace(tmp, path)  # a worker never reads half a file

    def _end_for_good(self, number: int, status: str) -> None:
        """A trial ended for good: its checkpoints go (they only serve a restart; disk stays bounded)."""
        remove_restart_files(trial_dir(self.run_dir, number))
        c = self.counts
        c.done += 1
        if status == "failed":
            c.failed += 1
        elif status == "stopped":
            c.stopped += 1


def _error_text(trial: Any) -> str:
    """The most telling line of Tune's error file for a trial whose worker failed."""
    try:
        text = Path(trial.error_file).read_text() if trial.error_file else ""
    except OSError:
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Failure #")]
    for line in reversed(lines):
        if "Error" in line or "error" in line or "killed" in line.lower() or "died" in line.lower():
            return line[:2000]
    return lines[-1][:2000] if lines else "the trial's worker process failed"
