"""The strategies plugins implement and the named records they register.

Plugins answer registry hooks (see :mod:`automl.hookspecs`) with the records defined
here; a spec then picks one record by name. The strategies are small ABCs: a few
abstract methods and no-op defaults for the optional ones.
"""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from automl.data import DataSummary, Splits, Table
    from automl.ensemble import EnsembleMember
    from automl.space import SearchSpace

__all__ = [
    "COMPRESSOR_SEPARATOR",
    "TIE_BREAKS",
    "TIE_BREAK_SCALE",
    "UNCOMPRESSED",
    "Compressor",
    "CompressorSpec",
    "Constraint",
    "DatasetSpec",
    "DefaultSpace",
    "Objective",
    "RungResult",
    "Searcher",
    "SchedulerSpec",
    "SearcherSpec",
    "Trainer",
    "TrainerSpec",
    "TrialContext",
    "TrialOutcome",
    "Mode",
    "Status",
    "Task",
    "split_config",
]

Mode = Literal["min", "max"]
Task = Literal["classification", "regression"]
Status = Literal["pending", "running", "paused", "completed", "stopped", "failed"]

#: Objectives every trainer provides: measured on the exported model by the engine.
ENGINE_METRICS: dict[str, Mode] = {"latency_ms": "min", "size_bytes": "min"}


#: Continuous losses that order results equal on a coarse objective (accuracy), first reported wins
#: (:meth:`Objective.tie_broken`; the end-of-search ensemble selection breaks its ties with them too).
TIE_BREAKS: tuple[tuple[str, str], ...] = (("log_loss", "min"), ("rmse", "min"))
#: The most :meth:`Objective.tie_broken` moves a value: below any step of a metric counted over
#: at most a million rows (accuracy on n rows moves in steps of 1/n).
TIE_BREAK_SCALE = 1e-6


@dataclass(frozen=True)
class Objective:
    """One thing to optimise: a metric name and its direction."""

    metric: str
    mode: Mode
    #: Hypervolume reference value (the worst value that still counts); None = from the data.
    reference: float | None = None

    def to_min(self, value: float) -> float:
        """The value in minimisation form (negated for ``max``)."""
        return -value if self.mode == "max" else value

    def tie_broken(self, values: Mapping[str, float]) -> float | None:
        """This objective's value in ``values``, moved by less than :data:`TIE_BREAK_SCALE` toward worse by
        the first continuous loss of :data:`TIE_BREAKS` the trial also reported (None without the value).

        For a searcher that must rank results a coarse metric calls equal: two trials of the same
        accuracy (every boosted model of a few trees predicts the majority class of a 70/30 table)
        are ordered by their log loss, so a local search still sees which way is better, while two
        results apart by a distinct accuracy (on at most a million rows, at least ``1e-6`` apart)
        keep their order. Never stored: the trial's recorded metrics are the measured ones.
        """
        raw = values.get(self.metric)
        if not isinstance(raw, (int, float)) or isinstance(raw, bool) or not math.isfinite(raw):
            return None
        value = float(raw)
        for metric, mode in TIE_BREAKS:
            loss = values.get(metric)
            if metric == self.metric or mode != "min" or not isinstance(loss, (int, float)) or isinstance(loss, bool):
                continue
            if math.isfinite(loss) and loss >= 0:
                shift = TIE_BREAK_SCALE * float(loss) / (1.0 + float(loss))  # in [0, scale): never a whole step
                return value - shift if self.mode == "max" else value + shift
        return value


@dataclass(frozen=True)
class Constraint:
    """A bound a trial's metric must respect to be feasible (``latency_ms <= 2``)."""

    metric: str
    op: Literal["<=", "<", ">=", ">"]
    bound: float

    def violation(self, value: float | None) -> float:
        """0 when satisfied, else how far off (inf when the metric is missing or not finite)."""
        if value is None or not math.isfinite(value):
            return math.inf
        if self.op in ("<=", "<"):
            over = value - self.bound
            return 0.0 if (over <= 0 if self.op == "<=" else over < 0) else max(over, 1e-12)
        under = self.bound - value
        return 0.0 if (under <= 0 if self.op == ">=" else under < 0) else max(under, 1e-12)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class TrialOutcome:
    """What a searcher is told about a finished trial.

    Attributes:
        number: The trial number the searcher suggested for.
        config: The config the trial ran.
        status: ``completed`` (full budget), ``stopped`` (early-stopped by the scheduler
            at ``budget``, or paused there by a promotion-type one) or ``failed``.
        values: The last metrics the trial reported (objectives included when completed).
        budget: Budget steps the trial reached.
        max_budget: Budget steps of a full trial.
        cost_s: Seconds the trial ran (training, evaluation, export and measurement), or None
            when unknown (a warm start from a run that did not record it). Cost-aware searchers
            (FLAML's CFO, cost-aware acquisition) weigh what a region of the space costs with it;
            others ignore it.
        fit_s: Of ``cost_s``, the seconds of the budget steps and their evaluation, or None when
            unknown. What grows with a configuration's size; the rest (start-up, export,
            measurement) is closer to a constant per kind of model.
    """

    number: int
    config: Mapping[str, Any]
    status: Status
    values: Mapping[str, float] = field(default_factory=dict)
    budget: int = 0
    max_budget: int = 1
    cost_s: float | None = None
    fit_s: float | None = None


@dataclass(frozen=True)
class RungResult:
    """What a searcher is told when a running trial reaches a rung of the scheduler (see
    :meth:`Searcher.observe_rung`).

    Attributes:
        number: The trial number (the searcher suggested it, or a start point / re-issued trial).
        config: The config the trial runs.
        budget: The rung: budget steps the trial has reached (a milestone of the scheduler, below
            ``max_budget``).
        values: The metrics the trial reported at that step.
        max_budget: Budget steps of a full trial.
    """

    number: int
    config: Mapping[str, Any]
    budget: int
    values: Mapping[str, float] = field(default_factory=dict)
    max_budget: int = 1


class Searcher(abc.ABC):
    """Suggests configs and learns from outcomes (ask/tell).

    Subclasses take ``space``, ``objectives`` and ``seed`` plus their own keyword
    options; the spec's ``searcher.options`` are checked against the constructor's
    signature, so an unknown option is reported with the valid ones.

    Args:
        space: What to search.
        objectives: All objectives of the spec, primary first.
        seed: Seed for every random choice; the same seed gives the same suggestions
            for a sequential run.
    """

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = seed

    @abc.abstractmethod
    def suggest(self, number: int) -> dict[str, Any] | None:
        """Return the config for trial ``number``, or None when the search is exhausted."""

    def observe(self, outcome: TrialOutcome) -> None:  # noqa: B027 - optional hook
        """Learn from a finished, stopped or failed trial. Default: ignore.

        May be called for a number this searcher never suggested: a warm start from
        another run's trials (negative numbers) or, on resume, a trial suggested just
        before the driver died. Searchers that can should learn from it; others ignore it.
        """

    def observe_rung(self, result: RungResult) -> None:  # noqa: B027 - optional hook
        """Learn from an intermediate result: a running trial reached a rung (ASHA, HyperBand, MO-ASHA).

        Optional; the default ignores it, and a searcher that does not override it is never told.
        Called by the engine's driver at most once per trial and rung: when the result of a trial that
        goes on arrives, and for a trial the scheduler stops (or pauses) at a rung, just before it is
        told through :meth:`observe` as ``stopped`` at that budget (never as completed). So a
        model-based multi-fidelity searcher (BOHB) learns from every rung, not only from full-budget
        results. Only with a scheduler that has rungs (``asha``, ``hyperband``, ``moasha``). May be
        called for a number this searcher never suggested (a start point, a re-issued trial). Rung
        results after the searcher's last saved state are not replayed on resume.
        """

    @property
    def observes_rungs(self) -> bool:
        """True when this searcher overrides :meth:`observe_rung` (the driver then calls it)."""
        return type(self).observe_rung is not Searcher.observe_rung

    def primary_loss(self, outcome: TrialOutcome) -> float | None:
        """The primary objective in minimisation form, or None when it is missing; ties of a coarse objective
        (equal accuracies) broken by the trial's log loss or RMSE, by less than a millionth
        (:meth:`Objective.tie_broken`). A value to rank on, never to store or report."""
        value = self.objectives[0].tie_broken(outcome.values)
        return None if value is None else self.objectives[0].to_min(value)

    def losses(self, outcome: TrialOutcome) -> list[float] | None:
        """All objectives in minimisation form, or None when one is missing.

        A rung result or a stopped trial has latency / size only as the rung's estimates
        (``latency_ms_estimate``): those stand in, as they do for MO-ASHA's ranking at that rung.
        """
        from automl.records import estimate_key

        out = []
        for objective in self.objectives:
            value = outcome.values.get(objective.metric, outcome.values.get(estimate_key(objective.metric)))
            if value is None or not math.isfinite(value):
                return None
            out.append(objective.to_min(float(value)))
        return out


@dataclass
class TrialContext:
    """What a trainer gets besides its config, inside the trial's worker.

    Attributes:
        task: ``classification`` or ``regression``.
        seed: The trial's seed (spec seed + trial number).
        data: Train, validation and test splits.
        trial_dir: A directory the trial may write to (checkpoints, exports).
        cpus: CPUs the trial was given; set thread pools to this.
        gpus: GPUs the trial was given (fractions allowed).
        deadline: When the search's wall-time budget ends (``time.time()``), or None without one: the worker
            ends a trial still running then, so a trainer that can stop early may save and return before it
            (the ``loop`` trainer's ``automl.should_stop()`` turns true).
    """

    task: Task
    seed: int
    data: Splits
    trial_dir: Path
    cpus: float = 1.0
    gpus: float = 0.0
    deadline: float | None = None


class Trainer(abc.ABC):
    """Builds one trial's model, fits it budget step by budget step and exports it.

    Optional: :meth:`predictions`, :meth:`score_predictions` and :meth:`build_ensemble` together
    make the engine end each search with a greedy ensemble of the completed trials
    (:mod:`automl.ensemble`), recorded as one more trial.

    Args:
        config: The searched values for this trial (inactive parameters absent).
        params: The spec's fixed ``trainer.params``.
        context: Task, data, seed, directory and resources of the trial.
    """

    def __init__(self, config: Mapping[str, Any], params: Mapping[str, Any], context: TrialContext) -> None:
        self.config = dict(config)
        self.params = dict(params)
        self.context = context

    @property
    def budget_steps(self) -> int:
        """How many budget steps a full trial runs (epochs, boosting rounds...). Default 1.

        Must depend only on the fixed ``params``, not on the searched config nor the data:
        schedulers compare trials at equal budgets, and the plan asks a trainer built with an
        empty config and no data (``context.data`` is None), before any trial. The trainer
        conformance kit checks both (``automl.testing.TrainerConformance``).
        """
        return 1

    @abc.abstractmethod
    def fit_step(self, step: int) -> None:
        """Fit budget step ``step`` (1-based); called in order up to :attr:`budget_steps`."""

    def run_steps(self, start: int = 1) -> Iterator[int]:
        """Fit the budget steps from ``start`` on, yielding each step number once it is done.

        The engine evaluates and reports after each yield (so a scheduler can stop the
        trial there). The default calls :meth:`fit_step` in order; a trainer whose
        training runs elsewhere (distributed workers) overrides this to yield as its
        steps finish.
        """
        for step in range(start, self.budget_steps + 1):
            self.fit_step(step)
            yield step

    @abc.abstractmethod
    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        """Every metric the trainer reports, on ``split`` of the data."""

    @abc.abstractmethod
    def export(self, directory: Path) -> Path:
        """Write the fitted model to a file under ``directory`` in a format safe to load; return it."""

    @abc.abstractmethod
    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        """Load an exported file and return a predict function over a batch of inputs.

        Latency is measured on this function, so it must use the exported artifact,
        not the in-memory model.
        """

    def model_size(self, path: Path) -> tuple[int, str]:
        """The size of the exported model at ``path`` in bytes, and what was counted (stored with the trial).

        Default: the file (or directory) as written, ``"file"``. A trainer whose file format
        carries a container larger than the model itself (a schema, metadata) may count the
        model alone, saying how (e.g. ``"skops arrays and values, schema left out"``).
        """
        from automl.measure import file_size

        return file_size(path), "file"

    def rung_estimates(self, which: Sequence[str]) -> dict[str, float]:
        """Cheap estimates of engine metrics (``latency_ms``, ``size_bytes``) of the model as trained so far.

        A multi-objective scheduler compares trials on them at its rungs, before any export
        exists. Whatever this leaves out, the engine measures on a quick export of the current
        model (2 warm-up and 10 timed calls), which can cost more than a training step of a
        small model. Estimates only need to rank models like the final measurement would:
        every trial at a rung is estimated the same way. Default: none.
        """
        return {}

    #: Every export format this trainer writes or converts to, each with the file name endings that
    #: hold it (``{"skops": (".skops",), "onnx": (".onnx",)}``; the longest matching ending wins).
    #: ``automl export --format`` accepts exactly these names. Empty (the default): ``onnx``,
    #: ``torchscript`` and ``skops`` (:data:`automl.export.COMMON_FORMATS`).
    formats: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    #: Export formats :meth:`convert` can write, each with the formats it converts from
    #: (``{"onnx": ("skops",)}``); every name is one of :attr:`formats`. ``automl export`` offers
    #: them beside the files of the trial's measured model.
    conversions: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def convert(self, source: Path, fmt: str, directory: Path) -> Path:
        """Write the model in ``source`` in format ``fmt`` under ``directory``; return the new file.

        Called by ``automl export`` when a trial has no file in ``fmt`` but one in a format
        :attr:`conversions` lists for it. ``source`` is a file this trainer exported for this
        trial (found in the run directory); the trainer is built with the trial's config,
        params and context (data included) but not fitted: convert the file, never retrain.
        Load ``source`` only as safely as :meth:`load_predictor` does (no unpickling of
        anything the engine did not write), and check that the new file predicts what the
        source predicts. Default: not supported.

        Raises:
            NotImplementedError: The trainer converts nothing (the default).
            ValueError: This model cannot be converted; the message says why.
        """
        raise NotImplementedError(f"{type(self).__name__} converts no export format")

    def evaluate_artifact(self, path: Path, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        """Every metric :meth:`evaluate` reports, scored on the predictions of the exported file at ``path``.

        Called when a compressor rewrote the export (a quantized ONNX file), so the metrics
        describe what is deployed. Default: not supported.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot score an exported file (evaluate_artifact)")

    def sample_input(self, batch_size: int) -> Any:
        """A batch of ``batch_size`` validation inputs, for latency measurement."""
        return self.context.data.valid.X.iloc[:batch_size]

    def save_checkpoint(self, directory: Path, step: int | None = None) -> bool:
        """Save what is needed to continue after budget step ``step`` under ``directory``.

        Called by the engine after each budget step but the last (once the step is evaluated
        and before it is reported), into a fresh directory that replaces the previous checkpoint
        only when this returns True; return False (the default) when the trainer does not
        checkpoint, and a restarted trial then starts over.

        ``step`` is the step just completed, the one :meth:`load_checkpoint` must return (the
        restarted trial goes on at ``step + 1``). Since 0.2.0 the engine passes it as a keyword,
        and only to a method whose signature takes ``step`` (or ``**kwargs``): a trainer written
        for 0.1, ``save_checkpoint(self, directory)``, is called as before and keeps track of its
        steps itself. Declare it ``step: int | None = None``; ``None``: the caller did not say.
        """
        return False

    def load_checkpoint(self, directory: Path) -> int:
        """Restore from :meth:`save_checkpoint`'s files; return the last completed step (the ``step`` it was told)."""
        raise NotImplementedError(f"{type(self).__name__} does not restore checkpoints")

    # -- ensembles of the completed trials (optional; see automl.ensemble) ------------------
    # A trainer that overrides all three gets, at the end of each search, a greedy ensemble
    # (Caruana et al., 2004) of its completed trials recorded as one more trial.

    def predictions(self, split: Literal["valid", "test"] = "valid") -> Any:
        """The fitted model's predictions on ``split``, for ensemble selection; None (the default): none.

        Called after the final export, only when the search builds an ensemble; the engine saves
        the array in the trial directory. Class probabilities (rows x classes, classes in sorted
        order) for classification, values for regression. ``valid``: the rows the validation
        metrics were computed on, in a fixed order (under ``data.folds``: out-of-fold predictions
        over the train and validation rows, in their concatenated order, once per round of
        ``Splits.repeats``); ``test``: the test part.
        A trainer may also write into the trial directory what :meth:`build_ensemble` needs to
        load this trial as a member (a loadable copy of a model exported in another format).
        """
        return None

    def score_predictions(
        self, predictions: Any, split: Literal["valid", "test"] = "valid", metrics: Sequence[str] | None = None
    ) -> dict[str, float]:
        """The metrics :meth:`evaluate` reports, computed from an array laid out as :meth:`predictions` returns.

        Called on a trainer built with an empty config and the search's data (never fitted), many
        times during the selection with ``metrics`` naming the one needed (computing only those is
        allowed; more is fine). Must score predictions exactly as :meth:`evaluate` scores a trial
        (under ``data.folds``: per fold of every round, then averaged), so an ensemble compares fairly.

        Raises:
            NotImplementedError: The trainer builds no ensembles (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} does not score predictions")

    def build_ensemble(self, members: Sequence[EnsembleMember], directory: Path,
                       expected: Mapping[str, Any]) -> Path:
        """Write one exported model that averages ``members``' predictions with their weights; return it.

        Called on a trainer built with an empty config and the search's data (never refitted
        members: load them from their exports, as safely as :meth:`load_predictor` does). The file
        is measured (latency, size) and re-measured like any trial's, through
        :meth:`load_predictor` and :meth:`sample_input` of a trainer built with the ensemble
        trial's config ``{"ensemble": "3x2 7x1"}``.

        Args:
            members: The trials picked, each with its weight (weights sum to 1).
            directory: The ensemble trial's directory, to write the file into.
            expected: The weighted predictions the selection scored, per split (``valid``; ``test``
                when the data has a test part): the file must predict them, else raise.

        Raises:
            NotImplementedError: The trainer builds no ensembles (the default).
            ValueError: These members cannot be combined, or the file does not predict ``expected``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not build ensembles")


@dataclass(frozen=True)
class SearcherSpec:
    """A searcher a plugin provides.

    Attributes:
        name: The name a spec selects it by (``searcher.name``).
        factory: A :class:`Searcher` subclass (or a callable with its signature).
        multi_objective: True when it optimises all objectives; otherwise it optimises
            the primary objective and the front is still built over all trials.
        description: One line for ``automl plugins``.
        check_space: Raises ``ValueError`` with a reason for a space it cannot search.
    """

    name: str
    factory: Callable[..., Searcher]
    multi_objective: bool = False
    description: str = ""
    check_space: Callable[[SearchSpace], None] | None = None

    def option_names(self) -> list[str]:
        """Keyword options the factory accepts besides space, objectives and seed."""
        return _option_names(self.factory, {"self", "space", "objectives", "seed"})


@dataclass(frozen=True)
class DefaultSpace:
    """The space a trainer proposes for a spec without ``space:`` (see :attr:`TrainerSpec.default_space`).

    Attributes:
        space: Space entries in the YAML shape of a spec's ``space:`` (``{"model": {"type": "choice",
            "values": [...]}, ...}``); they are validated and built like a spec's own.
        start: Configs to evaluate first, cheapest first (low-cost starting points); each must
            be a complete config of ``space`` (every active parameter, nothing else).
        notes: Lines ``automl validate`` prints (a model left out because its library is missing).
    """

    space: Mapping[str, Mapping[str, Any]]
    start: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[str] = ()


#: What the engine passes, by keyword, to a trainer's ``check_data`` that names it (the search space).
CHECK_DATA_ENGINE_ARGUMENTS = ("space",)


@dataclass(frozen=True)
class TrainerSpec:
    """A trainer a plugin provides.

    Attributes:
        name: The name a spec selects it by (``trainer.name``).
        factory: A :class:`Trainer` subclass.
        tasks: Tasks it can train.
        metrics: ``metrics(task, params) -> {name: mode}``: what it reports for a task.
        check: Optional ``check(task, params, space)`` raising ``ValueError`` for a spec
            it cannot run (bad fixed params, unknown model names...), before any trial.
        description: One line for ``automl plugins``.
        needs_data: False for trainers that bring their own data (the function trainer).
        measurable: True when its exports can be timed and sized, so ``latency_ms`` and
            ``size_bytes`` may be objectives.
        extra_resources: Optional ``extra_resources(params) -> {"CPU": n, "GPU": m}``: what a
            trial reserves on the cluster besides its own ``resources`` (e.g. DDP worker
            processes), so the engine runs only as many trials at once as fit whole.
        default_space: Optional ``default_space(task, params, summary)`` returning a
            :class:`DefaultSpace` (or just its ``space`` mapping): what to search when a spec has
            no ``space:`` (or ``space: auto``). ``params`` are the spec's fixed ``trainer.params``;
            ``summary`` describes the loaded table (an empty :class:`~automl.data.DataSummary`
            for a trainer that needs no data). Called once, at plan time.
        cross_validates: True when it honours ``Splits.folds`` (k-fold cross-validation over the
            train and validation rows), so ``data.folds: auto`` may choose folds for it.
        cost: Optional ``cost(config, params) -> float``: a configuration's cost relative to others
            of its kind (same categorical values), e.g. its number of trees. Under a wall time the
            engine learns seconds per unit from the finished trials of each kind and does not
            start one predicted not to finish in the time left. Without it, a configuration is
            predicted to cost as much as the cheapest finished trial of its kind.
        check_data: Optional ``check_data(task, params, table)`` raising ``ValueError`` for data it
            cannot train on (text columns for a trainer that takes numbers only, naming them): called
            when the table is loaded (``automl validate``, a search), before any trial. One that names a
            ``space`` keyword (:data:`CHECK_DATA_ENGINE_ARGUMENTS`) also gets the search space, by keyword
            and without the compressors' entries, so it can refuse a value the data cannot take (an image
            network searched on a table of no image shape); when the space is the trainer's own default
            (``space: auto`` or none, made from the loaded data) it gets an empty space: what the trainer
            chose for this data needs no check. It may append lines to ``table.notes`` (what it took from
            the data), which ``automl validate`` prints.
    """

    name: str
    factory: type[Trainer]
    tasks: tuple[Task, ...]
    metrics: Callable[[Task, Mapping[str, Any]], Mapping[str, Mode]]
    check: Callable[[Task, Mapping[str, Any], SearchSpace], None] | None = None
    description: str = ""
    needs_data: bool = True
    measurable: bool = True
    extra_resources: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None
    default_space: Callable[[Task, Mapping[str, Any], DataSummary], DefaultSpace | Mapping[str, Mapping[str, Any]]] | None = None
    cross_validates: bool = False
    cost: Callable[[Mapping[str, Any], Mapping[str, Any]], float] | None = None
    check_data: Callable[[Task, Mapping[str, Any], Table], None] | None = None

    def run_check_data(self, task: Task, params: Mapping[str, Any], table: Table, space: SearchSpace) -> None:
        """Call :attr:`check_data` as the engine does: ``space`` passed by keyword only to one that names it
        (a 3-argument ``check_data`` written before the keyword keeps working).

        Raises:
            ValueError: What :attr:`check_data` raises.
        """
        if self.check_data is None:
            return
        check: Callable[..., None] = self.check_data
        try:
            named = _option_names(check, set())
        except (TypeError, ValueError):  # no signature to read (a builtin): the 3-argument call
            named = []
        known = {"space": space}
        check(task, params, table, **{k: known[k] for k in CHECK_DATA_ENGINE_ARGUMENTS if k in named})


@dataclass(frozen=True)
class DatasetSpec:
    """A named data source.

    Attributes:
        name: The name a spec selects it by (``data.dataset``).
        load: ``load(options) -> Table`` with every row and the target.
        task: The task it is made for, or None when it fits either.
        check: Optional cheap ``check(options)`` raising ``ValueError`` before any trial
            (a missing file or column), without loading everything.
        description: One line for ``automl plugins``.
    """

    name: str
    load: Callable[[Mapping[str, Any]], Table]
    task: Task | None = None
    check: Callable[[Mapping[str, Any]], None] | None = None
    description: str = ""


def _option_names(factory: Callable[..., Any], skip: set[str]) -> list[str]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = inspect.signature(target).parameters
    return [n for n, p in params.items() if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


#: What the engine passes to a scheduler factory that names it (the search space, the trainer's record, the
#: spec's seed); never a spec option.
SCHEDULER_ENGINE_ARGUMENTS = ("space", "trainer", "seed")


@dataclass(frozen=True)
class SchedulerSpec:
    """A trial scheduler a plugin provides (early stopping between budget steps).

    Attributes:
        name: The name a spec selects it by (``scheduler.name``).
        factory: ``factory(objectives, *, max_budget, **options)`` returning a Ray Tune
            ``TrialScheduler``; ``objectives`` are the spec's, primary first. A factory that names
            ``space``, ``trainer`` or ``seed`` (:data:`SCHEDULER_ENGINE_ARGUMENTS`) gets them from the
            engine, by keyword: the search space, the trainer's :class:`TrainerSpec` and the spec's seed;
            they are never spec options. The plugin manager refuses a factory the engine cannot call so
            (:meth:`signature_problem`).
        uses_steps: True when it acts between budget steps, so it is useless (and refused)
            for a trainer that reports a single step.
        multi_objective: True when it compares trials on all objectives.
        description: One line for ``automl plugins``.
    """

    name: str
    factory: Callable[..., Any]
    uses_steps: bool = True
    multi_objective: bool = False
    description: str = ""

    def option_names(self) -> list[str]:
        """Keyword options a spec may set (not those the engine passes: objectives, max_budget, engine_arguments)."""
        return _option_names(self.factory, {"self", "objectives", "max_budget", *SCHEDULER_ENGINE_ARGUMENTS})

    def engine_arguments(self) -> list[str]:
        """Which of :data:`SCHEDULER_ENGINE_ARGUMENTS` the factory names: the engine passes those (Population Based
        Training perturbs configs within the space, and copies checkpoints, which only some trainers write)."""
        return [n for n in _option_names(self.factory, {"self"}) if n in SCHEDULER_ENGINE_ARGUMENTS]

    def build(self, objectives: Sequence[Objective], *, max_budget: int, options: Mapping[str, Any],
              space: Any, trainer: Any, seed: int | None) -> Any:
        """The scheduler as the engine builds it: ``factory(objectives, max_budget=..., **options)``, plus those
        of ``space``, ``trainer`` and ``seed`` the factory names (:meth:`engine_arguments`), by keyword.

        Raises:
            ValueError: ``options`` holds one of the engine's arguments, or the factory refused its options.
            TypeError: The factory refused its arguments.
        """
        clash = sorted(set(options) & set(SCHEDULER_ENGINE_ARGUMENTS))
        if clash:
            raise ValueError(self.engine_argument_message(clash[0]))
        known = {"space": space, "trainer": trainer, "seed": seed}
        return self.factory(objectives, max_budget=max_budget, **options,
                            **{k: known[k] for k in self.engine_arguments()})

    def engine_argument_message(self, option: str) -> str:
        """Why ``option``, one of :data:`SCHEDULER_ENGINE_ARGUMENTS`, is refused as a spec option (the one wording
        of :meth:`build` and of spec validation)."""
        return (f"scheduler {self.name!r} has no option {option!r}: the engine passes the search's "
                f"{', '.join(SCHEDULER_ENGINE_ARGUMENTS)} to a scheduler factory that names them (the seed is the "
                f"spec's seed)")

    def signature_problem(self) -> str | None:
        """Why the engine cannot call :attr:`factory` as :meth:`build` does, or None when it can.

        The engine passes the objectives as the first positional argument and ``max_budget`` and the
        engine arguments the factory names by keyword: a factory whose first parameter is one of those names
        (it would get the objectives and then the same name again), or that takes one of them positional-only,
        or that takes no ``max_budget``, cannot be called. A factory whose signature Python cannot read is
        not checked.
        """
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        try:
            params = list(inspect.signature(target).parameters.values())
        except (TypeError, ValueError):
            return None
        if inspect.isclass(self.factory):
            params = params[1:]  # self
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if not params or params[0].kind not in (*positional, inspect.Parameter.VAR_POSITIONAL):
            return "its factory takes no positional argument: the engine passes the objectives as the first one"
        keywords = {"max_budget", *SCHEDULER_ENGINE_ARGUMENTS}
        if params[0].name in keywords:
            return (f"its factory's first parameter is {params[0].name!r}, where the engine passes the objectives "
                    f"(and it passes {params[0].name!r} by keyword too): take the objectives first")
        for p in params[1:]:
            if p.name in keywords and p.kind == inspect.Parameter.POSITIONAL_ONLY:
                return f"its factory takes {p.name!r} positional-only: the engine passes it by keyword"
        if not any(p.name == "max_budget" or p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
            return "its factory takes no max_budget: the engine passes the budget steps of a full trial by keyword"
        return None


#: Joins a compressor's name and its parameter in a space entry (``prune.amount``).
COMPRESSOR_SEPARATOR = "."
#: Suffix of a trial's metrics before compression (``accuracy_uncompressed``), kept so the loss shows.
UNCOMPRESSED = "_uncompressed"


class Compressor(abc.ABC):  # noqa: B024 - both steps are optional: a compressor overrides one or both
    """Compresses one trial's trained model; the spec's ``compression`` list is applied in order.

    The trial runs every compressor's :meth:`compress_model` in order on the trained
    model, evaluates the result on the validation data, exports it, then runs every
    :meth:`compress_artifact` in order on the exported file. When the file changed, the
    metrics are those of the file (:meth:`Trainer.evaluate_artifact`); size and latency are
    always measured on the final file.

    Args:
        params: The compressor's fixed ``params`` from the spec plus its searched values
            (space entries ``<name>.<param>``, with the prefix stripped; searched values win).
        context: Task, data, seed, directory and resources of the trial.
    """

    def __init__(self, params: Mapping[str, Any], context: TrialContext) -> None:
        self.params = dict(params)
        self.context = context

    def compress_model(self, trainer: Trainer) -> None:  # noqa: B027 - optional step
        """Change the trained model in memory (prune, distil, factorise...). Default: nothing.

        Raise :class:`~automl.errors.TrialError` (or ``ValueError``) with the reason when this
        model cannot be compressed as asked; the trial then fails with it.
        """

    def compress_artifact(self, trainer: Trainer, path: Path) -> Path | None:
        """Rewrite the exported file at ``path`` (quantize an ONNX model...). Default: leave it.

        Returns:
            The new file (written next to ``path``, in a format the trainer's
            :meth:`~Trainer.load_predictor` and :meth:`~Trainer.evaluate_artifact` read), or
            None when the artifact is unchanged.
        """
        return None

    def metrics(self) -> dict[str, float]:
        """Metrics of its own this compressor reports after compressing (declared in
        :attr:`CompressorSpec.metrics`), e.g. the sparsity it reached. Default: none."""
        return {}


def split_config(config: Mapping[str, Any], names: Sequence[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split a trial's config into the trainer's part and each compressor's part.

    Entries named ``<compressor>.<param>`` for a compressor in ``names`` go to that
    compressor (prefix stripped); everything else is the trainer's.
    """
    trainer: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in config.items():
        head, sep, rest = key.partition(COMPRESSOR_SEPARATOR)
        if sep and head in parts:
            parts[head][rest] = value
        else:
            trainer[key] = value
    return trainer, parts


@dataclass(frozen=True)
class CompressorSpec:
    """A compressor a plugin provides (applied to a trained model, in spec order).

    Attributes:
        name: The name a spec selects it by (``compression[].name``); its searched
            parameters are space entries ``<name>.<param>``.
        factory: A :class:`Compressor` subclass, called as ``factory(params, context)``.
        description: One line for ``automl plugins``.
        trainers: Names of the trainers whose models it can compress; None: any trainer.
        check: Optional ``check(params, space, trainer_params)`` raising ``ValueError`` for
            values it cannot use, before any trial: ``params`` are its fixed params,
            ``space`` its searched parameters (prefix stripped, conditions left out) and
            ``trainer_params`` the spec's fixed ``trainer.params``.
        metrics: Metrics of its own it reports (``{name: "min" | "max"}``), see
            :meth:`Compressor.metrics`.
    """

    name: str
    factory: Callable[..., Compressor]
    description: str = ""
    trainers: tuple[str, ...] | None = None
    check: Callable[[Mapping[str, Any], SearchSpace, Mapping[str, Any]], None] | None = None
    metrics: Mapping[str, Mode] = field(default_factory=dict)
