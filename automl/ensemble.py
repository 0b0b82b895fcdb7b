"""Ensembles from what ran: greedy ensemble selection over the completed trials' predictions.

After the search (Tune has returned, before the front is computed) the engine combines the
completed trials into one model by greedy ensemble selection with replacement (Caruana,
Niculescu-Mizil, Crew and Ksikes, "Ensemble selection from libraries of models", ICML 2004):
start from the best single trial, then repeatedly add (again, possibly) the trial whose
addition most improves the validation score of the averaged predictions; keep the best
ensemble seen along the way. The result is recorded as one more trial of the run, so it is
a front member like any other.

What is the engine's and what is the trainer's:

- each trial saves its validation (and test) predictions when the search builds an ensemble
  (:meth:`~automl.interfaces.Trainer.predictions`, written by the trial as
  ``predictions-valid.npy`` / ``predictions-test.npy`` in its directory);
- the selection itself (:func:`greedy_selection`) is plain numpy;
- scoring averaged predictions and writing the ensemble's exported model are the trainer's
  (:meth:`~automl.interfaces.Trainer.score_predictions`,
  :meth:`~automl.interfaces.Trainer.build_ensemble`).

Weights are chosen on the validation rows only (the same rows, or out-of-fold rows under
``data.folds``, that the trials' objectives were computed on); the test part is scored once,
after the choice, and reported as ``test_<metric>``.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automl.interfaces import ENGINE_METRICS, TIE_BREAKS, Objective
from automl.records import TrialRecord, TrialStatus
from automl.trial_job import trial_dir

if TYPE_CHECKING:
    from automl.plan import Plan
    from automl.run import Run

__all__ = [
    "PREDICTIONS",
    "PREDICTIONS_ERROR",
    "EnsembleMember",
    "Selection",
    "build_ensemble_trial",
    "ensemble_config",
    "ensemble_counts",
    "greedy_selection",
    "is_ensemble_trial",
    "load_predictions",
    "save_predictions",
    "wants_ensemble",
]

log = logging.getLogger("automl")

#: The file a trial's predictions on each split are saved to (in its trial directory).
PREDICTIONS = "predictions-{split}.npy"
#: Where a trial leaves the reason its predictions could not be saved (the trial itself stays completed).
PREDICTIONS_ERROR = "predictions-error.txt"
#: The single config key of an ensemble trial; its value lists the members (``"3x2 7x1"``).
KEY = "ensemble"
_MEMBER = re.compile(r"(\d+)x(\d+)")


@dataclass(frozen=True)
class EnsembleMember:
    """One trial of an ensemble, as :meth:`~automl.interfaces.Trainer.build_ensemble` gets it.

    Attributes:
        number: The trial number.
        config: The trial's config (the trainer's part and any other entries).
        weight: Its weight in the ensemble (the weights of an ensemble sum to 1).
        artifact: The file the trial exported (as stored), or None.
        directory: The trial's directory (its exports, its saved predictions).
    """

    number: int
    config: Mapping[str, Any]
    weight: float
    artifact: Path | None
    directory: Path


# -- the selection ----------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`greedy_selection`.

    Attributes:
        counts: How many times each candidate (by index) was picked; the ensemble's weights are
            ``counts / counts.sum()``.
        loss: The ensemble's loss (what ``loss`` returned for its averaged predictions).
        best_single: Index of the best single candidate (where the selection started).
        best_single_loss: Its loss.
        history: The loss after the start and after each addition.
    """

    counts: np.ndarray
    loss: float
    best_single: int
    best_single_loss: float
    history: tuple[float, ...]

    @property
    def weights(self) -> np.ndarray:
        return self.counts / self.counts.sum()


def greedy_selection(
    predictions: Sequence[np.ndarray], loss: Callable[[np.ndarray], float], *, rounds: int = 25,
    tie_break: Callable[[np.ndarray], float] | None = None,
) -> Selection:
    """Greedy ensemble selection with replacement (Caruana et al., 2004).

    Starts from the single candidate of least loss, then adds, ``rounds`` times, the candidate
    (possibly one already in) whose addition gives the averaged predictions the least loss.
    Returns the ensemble of least loss seen along the way (the smallest one among equals), so
    its loss is never above the best single candidate's. Ties between candidates (losses equal to
    rounding, :data:`TIE_TOLERANCE`, then tie-break values equal to rounding) go to the lowest
    index (callers order candidates by trial number), so the result is deterministic and does not
    hang on the last bits of a log loss.

    Args:
        predictions: One array per candidate, all of one shape (class probabilities, or values).
        loss: Lower is better; called on an averaged prediction array. Non-finite losses lose.
        rounds: Additions after the start.
        tie_break: A second loss that decides between equal values of ``loss`` (both for the
            candidate picked and for the best ensemble seen): with a coarse ``loss`` such as
            accuracy on few rows, many additions tie and the selection would stop at once.

    Raises:
        ValueError: For no candidates, or arrays of different shapes.
    """
    if not predictions:
        raise ValueError("greedy selection needs at least one candidate")
    stack = [np.asarray(p, dtype=np.float64) for p in predictions]
    shapes = {p.shape for p in stack}
    if len(shapes) != 1:
        raise ValueError(f"candidate predictions differ in shape: {sorted(shapes)}")

    def pick(blend_of: Callable[[int], np.ndarray]) -> tuple[int, tuple[float, float]]:
        return _least(len(stack), blend_of, loss, tie_break)

    start, first = pick(stack.__getitem__)
    counts = np.zeros(len(stack), dtype=np.int64)
    counts[start] = 1
    total = stack[start].copy()
    history = [first[0]]
    best_counts, best = counts.copy(), first

    def added(i: int) -> np.ndarray:
        return (total + stack[i]) / (int(counts.sum()) + 1)  # the ensemble so far with candidate i once more

    for _ in range(max(0, int(rounds))):
        chosen, value = pick(added)
        counts[chosen] += 1
        total += stack[chosen]
        history.append(value[0])
        if _better(value, best):  # among equals (to rounding) the smaller ensemble stays
            best_counts, best = counts.copy(), value
    return Selection(best_counts, best[0], start, first[0], tuple(history))


def _safe(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else math.inf


def _least(count: int, blend_of: Callable[[int], np.ndarray], loss: Callable[[np.ndarray], float],
           tie_break: Callable[[np.ndarray], float] | None) -> tuple[int, tuple[float, float]]:
    """The first (lowest index) of ``count`` candidates whose blend has the least (loss, tie-break), equal to
    rounding, with that pair.

    The tie-break is computed only where the losses tie (with accuracy on many rows they seldom do, and log loss
    costs more than accuracy). Blends are made one at a time: 20 of them at once would hold 60 MB on 15,000 rows
    of 26 classes.
    """
    losses = [_safe(loss(blend_of(i))) for i in range(count)]
    tied = _first_least(losses, range(count))
    if tie_break is None:
        return tied[0], (losses[tied[0]], 0.0)
    ties = {i: _safe(tie_break(blend_of(i))) for i in tied}
    at = _first_least([ties[i] for i in tied], tied)[0]
    return at, (losses[at], ties[at])


#: Relative difference (absolute below 1) under which two losses are equal: the rounding of averaging blends.
TIE_TOLERANCE = 1e-12


def _lower(x: float, y: float) -> bool:
    """``x`` below ``y`` by more than rounding (infinities compare exactly)."""
    if math.isinf(x) or math.isinf(y):
        return x < y
    return y - x > TIE_TOLERANCE * max(1.0, abs(x), abs(y))


def _first_least(values: Sequence[float], indices: Sequence[int]) -> list[int]:
    """Those of ``indices`` (in their order) whose value equals the least of ``values`` to rounding."""
    low = min(values)
    return [i for i, v in zip(indices, values, strict=True) if not _lower(low, v)]


def _better(new: tuple[float, float], old: tuple[float, float]) -> bool:
    """Lexicographically lower by more than rounding: (3a + 3b) / 6 is no improvement on (a + b) / 2."""
    for x, y in zip(new, old, strict=True):
        if _lower(x, y) or _lower(y, x):
            return _lower(x, y)
    return False


def blend(predictions: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of the candidates' predictions (weights need not sum to 1)."""
    w = np.asarray(weights, dtype=np.float64)
    out = np.zeros_like(np.asarray(predictions[0], dtype=np.float64))
    for p, wi in zip(predictions, w, strict=True):
        if wi:
            out += wi * np.asarray(p, dtype=np.float64)
    return out / w.sum()


# -- files and configs --------------------------------------------------------------------


def save_predictions(directory: Path, split: str, values: Any) -> Path:
    """Write one split's predictions (numeric only, no pickles) atomically into a trial directory."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"predictions must be numeric, got dtype {array.dtype}")
    path = directory / PREDICTIONS.format(split=split)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a name
        np.save(f, array.astype(np.float64), allow_pickle=False)
    tmp.replace(path)
    return path


def load_predictions(directory: Path, split: str) -> np.ndarray | None:
    """A trial's saved predictions on ``split``, or None when it saved none (or they are unreadable)."""
    path = directory / PREDICTIONS.format(split=split)
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None


def ensemble_config(numbers: Sequence[int], counts: Sequence[int]) -> dict[str, str]:
    """The config an ensemble trial is stored with: ``{"ensemble": "3x2 7x1"}`` (trial 3 twice, trial 7 once).

    A string, not a mapping: reports and ``automl show`` treat config values as scalars.
    """
    return {KEY: " ".join(f"{n}x{c}" for n, c in zip(numbers, counts, strict=True) if c)}


def ensemble_counts(config: Mapping[str, Any] | None) -> dict[int, int] | None:
    """``{trial number: times picked}`` of an ensemble trial's config; None for any other config."""
    if not config or set(config) != {KEY} or not isinstance(config[KEY], str):
        return None
    parts = config[KEY].split()
    found = [_MEMBER.fullmatch(p) for p in parts]
    if not parts or not all(found):
        return None
    return {int(m.group(1)): int(m.group(2)) for m in found if m}


def is_ensemble_trial(row: Mapping[str, Any]) -> bool:
    """True for the trial an ensemble step recorded (not a trial the searcher suggested)."""
    return ensemble_counts(row.get("config")) is not None


# -- the engine step ------------------------------------------------------------------------


def supports_ensembles(trainer: type) -> bool:
    """Whether a trainer class overrides the three ensemble methods of :class:`~automl.interfaces.Trainer`."""
    from automl.interfaces import Trainer

    return all(getattr(trainer, name, None) is not getattr(Trainer, name)
               for name in ("predictions", "score_predictions", "build_ensemble"))


def _selection_objective(plan: Plan) -> Objective | None:
    """The first objective the trainer reports itself (latency and size say nothing about predictions)."""
    return next((o for o in plan.objectives if o.metric not in ENGINE_METRICS), None)




def _scored(trials: Sequence[TrialRecord], objective: Objective) -> list[TrialRecord]:
    """The completed trials with a finite value of ``objective``, best first (ties: lowest number)."""
    scored = [t for t in trials if t.status == TrialStatus.COMPLETED and not is_ensemble_trial(t)
              and isinstance(t.metrics.get(objective.metric), (int, float))
              and math.isfinite(float(t.metrics[objective.metric]))]
    scored.sort(key=lambda t: (objective.to_min(float(t.metrics[objective.metric])), t.number))
    return scored


def _scorer(trainer: Any, metric: Objective) -> Callable[[np.ndarray], float]:
    """The loss (lower is better) of blended validation predictions on ``metric``, as the trainer scores them."""
    def loss(predictions: np.ndarray) -> float:
        value = trainer.score_predictions(predictions, "valid", (metric.metric,)).get(metric.metric)
        return metric.to_min(float(value)) if value is not None else math.inf
    return loss


def _why_not(selection: Selection, objective: Objective, summary: Mapping[str, Any]) -> str | None:
    """Why the selection is not recorded as a trial (None: it is)."""
    if int(np.count_nonzero(selection.counts)) < 2:  # the best trial alone: recording it again adds nothing
        return f"no mix of trials improved on trial {summary['start']} alone ({objective.metric}, validation)"
    best = summary["best_single"]
    if selection.loss > objective.to_min(float(best["value"])):
        return (f"the ensemble's {objective.metric} ({summary['value']:.6g}) is worse than trial "
                f"{best['number']}'s ({best['value']:.6g}), which saved no usable predictions")
    return None


def _record(plan: Plan, run: Run, number: int, config: dict[str, Any], metrics: dict[str, float], artifact: Path,
            started: float) -> None:
    """Store the built ensemble as trial ``number``."""
    now = time.time()
    # Written once it is built: a failed build leaves no half-made trial (nor touches an earlier ensemble's row).
    run.store.save_trial(run.run_id, number, status="completed", config=config, metrics=metrics,
                         budget=plan.max_budget, max_budget=plan.max_budget, seed=plan.seed + number,
                         artifact=str(artifact), started_at=started, finished_at=now, duration=now - started,
                         error=None, attempts=1)


def _candidates(run: Run, scored: Sequence[TrialRecord], limit: int
                ) -> tuple[list[tuple[TrialRecord, np.ndarray]], dict[str, str]]:
    """The best ``limit`` of ``scored`` (best first) whose saved validation predictions are usable, with those
    predictions; and the trials among the best that could not take part, with the reason."""
    candidates: list[tuple[TrialRecord, np.ndarray]] = []
    skipped: dict[str, str] = {}
    shape = None
    for t in scored:
        if len(candidates) >= limit:
            break
        directory = trial_dir(run.dir, t.number)
        values = load_predictions(directory, "valid")
        if values is None or (shape is not None and values.shape != shape) or not np.all(np.isfinite(values)):
            error = directory / PREDICTIONS_ERROR
            skipped[str(t.number)] = (error.read_text()[:300] if error.is_file() else "no predictions saved"
                                         if values is None else "predictions of another shape or not finite")
            continue
        shape = values.shape
        candidates.append((t, values))
    return candidates, skipped


def _member(run: Run, trial: TrialRecord, weight: float) -> EnsembleMember:
    """``trial`` as a member of the ensemble, of ``weight``."""
    artifact = Path(trial.artifact) if trial.artifact else None
    return EnsembleMember(trial.number, dict(trial.config), weight, artifact, trial_dir(run.dir, trial.number))


def _blend_scores(trainer: Any, members: Sequence[EnsembleMember], valid: np.ndarray, test: bool
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The ensemble's metrics (validation; test when every member saved test predictions) and the blended
    predictions its files must reproduce."""
    metrics = {k: float(v) for k, v in trainer.score_predictions(valid, "valid").items()}
    expected = {"valid": valid}
    if test:
        tests = [load_predictions(m.directory, "test") for m in members]
        if all(p is not None for p in tests):
            blended = blend([p for p in tests if p is not None], [m.weight for m in members])
            expected["test"] = blended
            metrics.update({f"test_{k}": float(v) for k, v in trainer.score_predictions(blended, "test").items()})
    return metrics, expected


def _build_files(trainer: Any, members: Sequence[EnsembleMember], final_dir: Path,
                 expected: Mapping[str, np.ndarray]) -> Path:
    """Have the trainer write the ensemble's files into ``final_dir``; returns its model file."""
    # Built beside the trial directory and moved in once it succeeded: a failed rebuild (on resume) leaves the
    # earlier ensemble's files as they were, and a rebuild leaves no file of the earlier one behind.
    staging = final_dir.with_name(final_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        made = Path(trainer.build_ensemble(members, staging, expected)).resolve()
        shutil.rmtree(final_dir, ignore_errors=True)
        staging.rename(final_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final_dir / made.relative_to(staging.resolve())


def _tie_break(plan: Plan, objective: Objective) -> Objective | None:
    """The trainer's log loss (or RMSE) to break ties of the selection objective, when it reports one."""
    for metric, mode in TIE_BREAKS:
        if metric != objective.metric and plan.metrics.get(metric) == mode:
            return Objective(metric, mode)  # type: ignore[arg-type]
    return None


def wants_ensemble(plan: Plan) -> tuple[bool, str]:
    """Whether this search builds an ensemble at its end, and if not, why (one line)."""
    settings = plan.spec.ensemble
    if settings.enabled is False:
        return False, "disabled (ensemble.enabled: false)"
    if not supports_ensembles(plan.trainer.factory):
        why = f"the {plan.trainer.name!r} trainer does not build ensembles"
        if settings.enabled:
            log.warning("ensemble.enabled is true but %s", why)
        return False, why
    if plan.compressors:
        return False, "not with compression (members' predictions would not be those of their compressed files)"
    if _selection_objective(plan) is None:
        return False, "no objective is a metric of the trainer (only latency_ms / size_bytes)"
    return True, ""


def build_ensemble_trial(plan: Plan, run: Run, data: Any) -> dict[str, Any]:
    """Select, build, score and record the ensemble trial; returns its summary for the run.

    Raises:
        Exception: Whatever the trainer raises while scoring or building; the engine records
            the reason and finishes the search without an ensemble.
    """
    from automl.measure import measure_artifact

    t0 = time.time()
    settings = plan.spec.ensemble
    objective = _selection_objective(plan)
    assert objective is not None  # wants_ensemble checked it
    trials = run.trials()
    existing = next((t for t in trials if is_ensemble_trial(t)), None)
    scored = _scored(trials, objective)
    candidates, skipped = _candidates(run, scored, settings.candidates)
    if len(candidates) < 2:
        return {"built": False, "reason": f"{len(candidates)} completed trial(s) with saved predictions; "
                "an ensemble needs at least 2", "skipped": skipped}
    candidates.sort(key=lambda c: c[0].number)  # ties in the selection go to the lowest trial number
    number = existing.number if existing else max(t.number for t in trials) + 1
    trainer = plan.trial_trainer(number, {}, run.dir, data)
    tie = _tie_break(plan, objective)
    preds = [values for _, values in candidates]
    selection = greedy_selection(preds, _scorer(trainer, objective), rounds=settings.rounds,
                                 tie_break=_scorer(trainer, tie) if tie is not None else None)
    numbers = [t.number for t, _ in candidates]
    config = ensemble_config(numbers, [int(c) for c in selection.counts])
    start = candidates[selection.best_single][0]
    best_single = scored[0]  # the best recorded value, whether or not the trial saved predictions
    summary: dict[str, Any] = {
        "built": True, "number": number, "metric": objective.metric, "candidates": numbers,
        "weights": {str(n): float(w) for n, w in zip(numbers, selection.weights, strict=True) if w},
        "value": float(objective.to_min(selection.loss)),
        "best_single": {"number": best_single.number, "value": float(best_single.metrics[objective.metric])},
        "start": start.number,
        "tie_break": tie.metric if tie is not None else None,
        "skipped": skipped,
    }
    why = _why_not(selection, objective, summary)
    if why is not None:
        return {**{k: v for k, v in summary.items() if k != "number"}, "built": False, "reason": why,
                "seconds": time.time() - t0}
    if (existing and existing.config == config and existing.status == TrialStatus.COMPLETED
            and existing.artifact and Path(existing.artifact).exists()):
        return {**summary, "kept": True, "seconds": time.time() - t0}  # resumed: the same members, already built
    used = [i for i, c in enumerate(selection.counts) if c]
    members = [_member(run, candidates[i][0], float(selection.weights[i])) for i in used]
    valid = blend([preds[i] for i in used], [float(selection.counts[i]) for i in used])
    metrics, expected = _blend_scores(trainer, members, valid, data is not None and len(data.test) > 0)
    started = time.time()
    artifact = _build_files(trainer, members, trial_dir(run.dir, number), expected)
    if plan.measured:
        metrics.update(measure_artifact(trainer, artifact, plan.job(run.dir), ("size_bytes", "latency_ms"), quick=False))
    _record(plan, run, number, config, metrics, artifact, started)
    return {**summary, "replaced": bool(existing), "seconds": time.time() - t0}
