"""From a validated spec to a plan: the space built and every name resolved to a plugin.

Everything that can be checked before a trial starts is checked here, so that
``automl validate`` and ``automl search`` refuse a bad spec with its line and field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from automl.data import DataSummary, Splits, Table, check_table, split, summarize
from automl.data_profile import Profile, profile_of
from automl.errors import AutoMLError, DataError, PluginError, SpecError
from automl.interfaces import (
    COMPRESSOR_SEPARATOR,
    ENGINE_METRICS,
    SCHEDULER_ENGINE_ARGUMENTS,
    UNCOMPRESSED,
    CompressorSpec,
    Constraint,
    DatasetSpec,
    DefaultSpace,
    Mode,
    Objective,
    SchedulerSpec,
    Searcher,
    SearcherSpec,
    Task,
    Trainer,
    TrainerSpec,
    TrialContext,
    split_config,
)
from automl.plugins import PluginManager
from automl.searcher_choice import AUTO, choose_searcher, requested
from automl.space import Choice, Float, Int, Param, SearchSpace
from automl.spec import ChoiceParam, FloatParam, IntParam, SpaceEntry, Spec
from automl.trial_job import Job, trial_context, trial_dir

if TYPE_CHECKING:
    from automl.run import Run

__all__ = ["MIN_WALL_TIME_S", "Plan", "build_plan", "build_space", "recorded_folds", "recorded_repeats", "run_plan",
           "run_spec", "trainer_space"]

#: The shortest ``budget.wall_time`` accepted: Ray's start (~9-10 s on 2 cores, docs/architecture.md)
#: plus one cheap trial. It counts from the start of the command, so less would end before any result.
MIN_WALL_TIME_S = 15.0

#: ``budget.trials`` when a spec gives neither it nor a wall time.
DEFAULT_TRIALS = 20
#: ``budget.trials`` when only ``budget.wall_time`` bounds the search: more than any wall time runs.
UNBOUNDED_TRIALS = 100_000


@dataclass
class Plan:
    """A spec with its space built and its plugins resolved; what a search runs."""

    spec: Spec
    space: SearchSpace
    objectives: list[Objective]
    constraints: list[Constraint]
    trainer: TrainerSpec
    searcher: SearcherSpec
    scheduler: SchedulerSpec
    max_budget: int
    dataset: DatasetSpec | None
    dataset_options: dict[str, Any]
    metrics: dict[str, Mode]
    versions: dict[str, str] = field(default_factory=dict)
    #: The spec's compressors in order, each with its fixed params.
    compressors: list[tuple[CompressorSpec, dict[str, Any]]] = field(default_factory=list)
    #: Configs to evaluate before the searcher's own, in order (the trainer's low-cost starting points when
    #: the space is the trainer's default; empty otherwise). Each is a complete config of :attr:`space`.
    start: list[dict[str, Any]] = field(default_factory=list)
    #: ``spec`` (the spec's ``space:``) or ``trainer`` (the trainer's default space).
    space_source: str = "spec"
    #: What changed in the data (columns parsed, dropped) and the trainer's notes on its default space.
    notes: list[str] = field(default_factory=list)
    #: The data the default space was chosen for (None when the spec gave its space, or without data).
    summary: DataSummary | None = None
    _table: Table | None = field(default=None, repr=False)
    _profile: Profile | None = field(default=None, repr=False)
    _folds: int | None = field(default=None, repr=False)
    _repeats: int | None = field(default=None, repr=False)

    @property
    def compressor_names(self) -> list[str]:
        return [record.name for record, _ in self.compressors]

    def trainer_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The part of a trial's config the trainer sees (compressor entries left out)."""
        return split_config(config, self.compressor_names)[0]

    @property
    def task(self) -> Task:
        """``classification`` or ``regression``; a spec without data (a function trainer) says classification."""
        return _task(self.spec)

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def text(self) -> str:
        """The spec's text as written (stored with the run)."""
        return self.spec.text

    @property
    def source(self) -> str | None:
        """The spec's file, which relative paths in it resolve from (None for a spec given as text)."""
        return self.spec.source

    @property
    def trial_count(self) -> int:
        """The trials the search runs at most: ``budget.trials``; without it 20, or with a wall time
        :data:`UNBOUNDED_TRIALS` (the wall time ends the search, as FLAML's ``time_budget`` does)."""
        if self.spec.budget.trials is not None:
            return self.spec.budget.trials
        return UNBOUNDED_TRIALS if self.spec.budget.wall_time else DEFAULT_TRIALS

    @property
    def wall_time(self) -> float | None:
        """Seconds the whole search may take (``budget.wall_time``), or None."""
        return float(self.spec.budget.wall_time) if self.spec.budget.wall_time else None

    @property
    def target(self) -> float | None:
        """The first objective's value that ends the search once a completed trial reaches it (``budget.target``)."""
        return self.spec.budget.target

    @property
    def max_failures(self) -> int:
        """How many times a failed trial is retried (``budget.max_failures``)."""
        return self.spec.budget.max_failures

    @property
    def include_stopped(self) -> bool:
        """Whether trials stopped before their full budget may be on the front (``front.include_stopped``)."""
        return self.spec.front.include_stopped

    @property
    def trial_resources(self) -> dict[str, float]:
        """What each trial asks Ray for: ``{"cpu": ..., "gpu": ...}`` (``resources``)."""
        return {"cpu": self.spec.resources.cpu, "gpu": self.spec.resources.gpu}

    def trainer_resources(self) -> dict[str, float]:
        """What the trainer's own workers ask besides the trial's resources (``TrainerSpec.extra_resources``)."""
        extra = self.trainer.extra_resources
        return {k: float(v) for k, v in extra(self.spec.trainer.params).items()} if extra else {}

    @property
    def max_concurrent(self) -> int | None:
        return self.spec.resources.max_concurrent

    def final_latency(self) -> tuple[int, int, int]:
        """Batch size, warm-up and timed calls of the front's final, serial latency measurement."""
        latency = self.spec.latency
        return latency.batch_size, max(20, latency.warmup), latency.final_repeats

    def store_url(self, run_dir: Path) -> str:
        """The results store of a new run in ``run_dir`` (``store``, default a SQLite file in it)."""
        return self.spec.store or f"sqlite:///{run_dir / 'automl.db'}"

    def error(self, message: str, *path: str | int) -> SpecError:
        """An error about the spec, pointing at the field ``path`` (its file and line when known)."""
        return self.spec.error(message, *path)

    def changed_since(self, stored: Spec) -> list[str]:
        """The sections in which this plan's spec differs from ``stored`` (``budget`` and ``name`` aside)."""
        old = stored.model_dump(mode="json", exclude={"budget", "name"})
        new = self.spec.model_dump(mode="json", exclude={"budget", "name"})
        return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))

    def trial_context(self, number: int, run_dir: str | Path, data: Splits | None) -> TrialContext:
        """The context of trial ``number`` of a run in ``run_dir``: the one its worker gets (:meth:`job`)."""
        cpus, gpus = self.spec.resources.cpu, self.spec.resources.gpu
        return trial_context(self.task, self.spec.seed, number, data, run_dir, cpus, gpus)

    def trial_trainer(self, number: int, config: Mapping[str, Any], run_dir: str | Path,
                      data: Splits | None) -> Trainer:
        """The trainer of trial ``number`` (config ``config``) as its worker builds it, not fitted."""
        return self.trainer.factory(self.trainer_config(config), self.spec.trainer.params,
                                    self.trial_context(number, run_dir, data))

    def job(self, run_dir: str | Path, *, rung_steps: Sequence[int] = (), deadline: float | None = None) -> Job:
        """What every trial of a search in ``run_dir`` is sent (:func:`automl.trial_worker.run_trial`).

        Args:
            run_dir: The run directory.
            rung_steps: The steps where the scheduler compares trials (empty: every step).
            deadline: When the trial phase ends (``time.time()``), from the wall-time budget.
        """
        from automl.ensemble import wants_ensemble

        spec = self.spec
        primary = self.objectives[0]
        return Job(
            trainer=self.trainer.factory, params=dict(spec.trainer.params), task=self.task, seed=spec.seed,
            run_dir=str(run_dir), measured=self.measured, batch_size=spec.latency.batch_size,
            warmup=spec.latency.warmup, repeats=spec.latency.repeats, cpus=spec.resources.cpu,
            gpus=spec.resources.gpu, rung_metrics=tuple(self.rung_metrics), rung_steps=tuple(rung_steps),
            trial_timeout=float(spec.budget.trial_timeout) if spec.budget.trial_timeout else None,
            deadline=deadline, sys_path=tuple(user_paths(spec)),
            compressors=tuple((record.name, record.factory, params) for record, params in self.compressors),
            predictions=wants_ensemble(self)[0],
            export_top=(primary.metric, primary.mode, self.export_top) if self.export_top else None,
        )

    @property
    def name(self) -> str:
        if self.spec.name:
            return self.spec.name
        return self.spec.source.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml") if self.spec.source else "search"

    @property
    def spec_hash(self) -> str:
        """Identifies the search: the spec's text less the budget (which ``--trials`` may extend)."""
        dump = self.spec.model_dump(mode="json", exclude={"budget", "name"})
        return hashlib.sha256(repr(sorted(dump.items())).encode()).hexdigest()

    @property
    def measured(self) -> bool:
        """Whether trials must time and size their exports."""
        used = {o.metric for o in self.objectives} | {c.metric for c in self.constraints}
        return bool(used & set(ENGINE_METRICS))

    @property
    def export_top(self) -> int | None:
        """How many of the best trials so far a trial must be among to export its model; None: every trial exports.

        ``models.export: auto`` keeps only the best for a search under a wall time whose only objective
        is the trainer's (the front is then the best trial, and the ensemble draws on the best ones):
        writing every model can cost as much as fitting it.
        """
        models = self.spec.models
        if models.export == "all":
            return None
        if models.export == "auto" and not (
            self.spec.budget.wall_time and len(self.objectives) == 1 and not self.measured and not self.constraints
        ):
            return None
        return max(models.top, self.spec.ensemble.candidates if self.spec.ensemble.enabled is not False else 1)

    def make_searcher(self, workers: int | None = None) -> Searcher:
        """Build the searcher; a factory that takes ``budget`` / ``num_workers`` and was not given them in
        the spec gets the trial count and the number of concurrent trials."""
        options = dict(self.spec.searcher.options)
        accepted = self.searcher.option_names()
        if "budget" in accepted:
            options.setdefault("budget", self.trial_count)
        if "num_workers" in accepted and workers:
            options.setdefault("num_workers", workers)
        try:
            seed = self.spec.seed if self.spec.searcher.seed is None else self.spec.searcher.seed
            return self.searcher.factory(self.space, self.objectives, seed=seed, **options)
        except (TypeError, ValueError) as exc:
            raise self.spec.error(f"searcher {self.searcher.name!r} rejected its options: {exc}", "searcher") from exc

    def make_scheduler(self) -> Any:
        # A factory that names them gets the search's space, trainer record and seed (PBT perturbs configs within
        # the space, and copies checkpoints, which only a checkpointing trainer writes).
        try:
            return self.scheduler.build(self.objectives, max_budget=self.max_budget,
                                        options=self.spec.scheduler.options, space=self.space, trainer=self.trainer,
                                        seed=self.spec.seed)
        except (TypeError, ValueError) as exc:
            raise self.spec.error(f"scheduler {self.scheduler.name!r} rejected its options: {exc}", "scheduler") from exc

    @property
    def rung_metrics(self) -> list[str]:
        """Engine metrics a multi-objective scheduler needs at intermediate steps."""
        if not self.scheduler.multi_objective:
            return []
        return [o.metric for o in self.objectives if o.metric in ENGINE_METRICS]

    def load_table(self) -> Table | None:
        """The whole checked table (loaded once, then kept), its notes added to :attr:`notes`; None without data."""
        if self._table is not None:
            return self._table
        if self.dataset is None or self.spec.data is None or self.spec.task is None:
            return None
        try:
            table = self.dataset.load(self.dataset_options)
            table.name = table.name or self.dataset.name
            check_table(table, self.spec.task)
        except AutoMLError:
            raise
        except Exception as exc:  # a loader's own error, shown with the data source
            raise DataError(f"cannot load data {self.dataset.name!r}: {type(exc).__name__}: {exc}") from exc
        try:
            # The spec's space without the compressors' entries, as the trainer's check sees it. Empty for the
            # trainer's default space (made from this table, in _space's probe plan): its own space needs no check.
            space = trainer_space(self.space, self.compressor_names) if self.space_source == "spec" else SearchSpace([])
            self.trainer.run_check_data(self.task, self.spec.trainer.params, table, space)
        except ValueError as exc:  # data this trainer cannot train on: every trial would fail
            raise DataError(f"trainer {self.trainer.name!r} cannot train on data {self.dataset.name!r}: {exc}") from exc
        self.notes.extend(note for note in table.notes if note not in self.notes)
        self._table = table
        return table

    def profile(self) -> Profile | None:
        """The checked chunked profile of a CSV source (:mod:`automl.data_profile`): what validate and planning
        read instead of the whole table; None for other sources, and for a trainer that checks the table itself."""
        if self._profile is not None or self.dataset is None or self.spec.task is None:
            return self._profile
        if self.trainer.check_data is None and self._table is None:
            profile = profile_of(self.dataset.load, self.dataset_options)
            if profile is not None:
                profile.check(self.spec.task)
                self._profile = profile
        return self._profile

    def check_data(self) -> None:
        """What validate checks of the data: the profile's checks and the split's, else the table loaded and split."""
        profile = self.profile()
        if profile is None:
            self.load_data()
        elif self.spec.data is not None and self.spec.task is not None:
            d = self.spec.data
            profile.check_split(self.spec.task, valid=d.validation, test=d.test, folds=self.folds)

    def load_data(self) -> Splits | None:
        """Load and split the data (in the driver, once); None for trainers without data."""
        if self.dataset is None or self.spec.data is None or self.spec.task is None:
            return None
        table = self.load_table()
        assert table is not None
        d = self.spec.data
        splits = split(table, self.spec.task, valid=d.validation, test=d.test, seed=self.spec.seed, folds=self.folds,
                       repeats=self.repeats)
        if self._profile is not None:
            self._table = None  # planning read the profile: the driver keeps the parts, not the table beside them
        return splits

    @property
    def folds(self) -> int:
        """Cross-validation folds the trials use (0: the validation split); ``data.folds: auto`` resolved."""
        folds = self.spec.data.folds if self.spec.data is not None else 0
        if folds != "auto":
            return int(folds or 0)
        if self._folds is None:
            table = (self.profile() or self.load_table()) if self._auto_folds_possible() else None
            self._folds, note = (0, None) if table is None else auto_folds(self.spec, table)
            if note:
                self.notes.append(note)
        return self._folds

    @property
    def repeats(self) -> int:
        """Rounds of the folds (repeated cross-validation; 1 without folds); ``data.repeats: auto`` resolved."""
        if self.folds < 2 or self.spec.data is None:
            return 1
        given = self.spec.data.repeats
        if given != "auto":
            return int(given)
        if self._repeats is None:
            wall = self.spec.budget.wall_time
            table = (self.profile() or self.load_table()) if wall and float(wall) >= AUTO_REPEATS_MIN_WALL_TIME else None
            self._repeats, note = (1, None) if table is None else auto_repeats(self.spec, table, self.folds)
            if note:
                self.notes.append(note)
        return self._repeats

    def cost_units(self, config: Mapping[str, Any]) -> float | None:
        """A trial config's cost relative to others of its kind, from the trainer's ``cost``; None without one."""
        if self.trainer.cost is None:
            return None
        return float(self.trainer.cost(self.trainer_config(config), self.spec.trainer.params))

    def keep_folds(self, folds: int, repeats: int = 1) -> None:
        """Use ``folds`` for ``data.folds: auto`` and ``repeats`` for ``data.repeats: auto`` (a resumed run keeps
        the choices it was started with)."""
        if self.spec.data is not None and self.spec.data.folds == "auto":
            self._folds = folds
            self.notes[:] = [n for n in self.notes if not n.startswith("data.folds auto")]
        if self.spec.data is not None and self.spec.data.repeats == "auto":
            self._repeats = repeats
            self.notes[:] = [n for n in self.notes if not n.startswith("data.repeats auto")]

    def _auto_folds_possible(self) -> bool:
        return bool(self.trainer.cross_validates and not self.compressors and self.spec.budget.wall_time
                    and self.spec.data is not None and self.spec.task)


#: ``data.folds: auto`` cross-validates below this many cells (rows x columns) per hour of wall time, and
#: below :data:`AUTO_FOLDS_MAX_ROWS` rows: FLAML's rule for its ``eval_method="auto"`` (its SMALL_LARGE_THRES
#: and CV_HOLDOUT_THRESHOLD), which our benchmark on 16 tables bears out (selection on a 20% split of a few
#: hundred rows overfits; k folds cost k fits but score on every row).
AUTO_FOLDS_CELLS_PER_HOUR = 10_000_000
AUTO_FOLDS_MAX_ROWS = 100_000
AUTO_FOLDS = 5


def auto_folds(spec: Spec, table: Table | Profile) -> tuple[int, str]:
    """The folds ``data.folds: auto`` gives ``table`` (or its profile) under ``spec``'s wall time, and a note."""
    assert spec.data is not None and spec.budget.wall_time
    if isinstance(table, Profile):
        every, width, counts = table.rows, len(table.features), list((table.classes or {}).values())
    else:
        every, width, counts = len(table.y), table.X.shape[1], [int(n) for n in table.y.value_counts()]
    rows = int(round(every * (1 - spec.data.test)))
    cells = rows * max(1, width)
    limit = AUTO_FOLDS_CELLS_PER_HOUR * float(spec.budget.wall_time) / 3600
    if rows >= AUTO_FOLDS_MAX_ROWS or cells >= limit:
        return 0, (f"data.folds auto: the validation split ({rows:,} rows x {width} columns is large for a "
                   f"{float(spec.budget.wall_time):g}s wall time)")
    folds = AUTO_FOLDS
    if spec.task == "classification":
        fewest = min(_cv_rows(n, spec.data.validation, spec.data.test) for n in counts)
        folds = min(folds, fewest)
        if folds < 2:
            return 0, "data.folds auto: the validation split (a class has too few rows for 2 folds)"
    return folds, (f"data.folds auto: {folds}-fold cross-validation ({rows:,} rows x {width} columns is "
                   f"small for a {float(spec.budget.wall_time):g}s wall time; set data.folds: 0 for the validation split)")


#: ``data.repeats: auto`` repeats the folds on tables of at most this many rows (left for cross-validation) ...
AUTO_REPEATS_MAX_ROWS = 2_000
#: ... under a wall time of at least this many seconds ...
AUTO_REPEATS_MIN_WALL_TIME = 300.0
#: ... this many times. On such tables a search runs a thousand trials or more (1,232 on vehicle, 846 rows, in
#: 300 s) and keeps the best of them on one set of 5 folds: the best is then partly the folds' luck (two runs of
#: one seed of vehicle ended 4.7 test points apart, german 3.6). Each round shuffles the rows anew, so that part
#: of the noise averages out, for 3x the fits per trial. The thresholds are where the problem was seen, not tuned;
#: at 60 s the search met its goals with one round and is left as it was. Measured at 300 s, 3 seeds, against one
#: round (benchmarks/tabular/RESULTS.md): vehicle +3.0 points, german +0.2, contraceptive -1.9.
AUTO_REPEATS = 3


def auto_repeats(spec: Spec, table: Table | Profile, folds: int) -> tuple[int, str | None]:
    """The rounds of ``folds`` that ``data.repeats: auto`` gives ``table`` (or its profile), and a note (None for 1)."""
    assert spec.data is not None
    every = table.rows if isinstance(table, Profile) else len(table.y)
    rows = int(round(every * (1 - spec.data.test)))
    wall = float(spec.budget.wall_time or 0)
    if rows > AUTO_REPEATS_MAX_ROWS or wall < AUTO_REPEATS_MIN_WALL_TIME:
        return 1, None
    return AUTO_REPEATS, (f"data.repeats auto: {AUTO_REPEATS} rounds of the {folds} folds, each shuffled anew "
                          f"({rows:,} rows under a {wall:g}s wall time: many trials, chosen on repeated folds; "
                          "set data.repeats: 1 for one round)")


def _cv_rows(n: int, valid: float, test: float) -> int:
    """Rows of a class of ``n`` left for cross-validation by :func:`automl.data.split` (its rounding)."""
    n_test, n_valid = int(round(n * test)), int(round(n * valid))
    if n - n_test - n_valid < 1:
        n_test = 0 if n < 3 else 1
    return n - n_test


def _task(spec: Spec) -> Task:
    """The spec's task; a spec without data (a function trainer) counts as classification."""
    return spec.task or "classification"


def user_paths(spec: Spec) -> list[str]:
    return list(dict.fromkeys([str(spec.base_dir().resolve()), str(Path.cwd())]))


def run_spec(run: Run) -> Spec:
    """The spec an existing run was started with: its text from the store, its file (which relative paths in it
    resolve from) and its ``--enqueue`` points from the run's ``run.json``."""
    from automl.run import RUN_FILE
    from automl.spec import parse_spec
    from automl.start_points import with_recorded

    meta = run.dir / RUN_FILE
    recorded = json.loads(meta.read_text()) if meta.is_file() else {}
    return with_recorded(parse_spec(run.info().spec_text, recorded.get("spec")), recorded)


def recorded_repeats(run_dir: str | Path) -> int:
    """The rounds of folds a run in ``run_dir`` chose for ``data.repeats: auto`` (1 for a run from before it)."""
    from automl.run import RUN_FILE

    meta = Path(run_dir) / RUN_FILE
    return int(json.loads(meta.read_text()).get("repeats", 1)) if meta.is_file() else 1


def recorded_folds(run_dir: str | Path) -> int | None:
    """The folds a run in ``run_dir`` chose for ``data.folds: auto`` (a run from before ``auto`` used the
    validation split: 0); None without a ``run.json``."""
    from automl.run import RUN_FILE

    meta = Path(run_dir) / RUN_FILE
    return int(json.loads(meta.read_text()).get("folds", 0)) if meta.is_file() else None


def run_plan(run: Run, pm: PluginManager | None = None) -> Plan:
    """The plan of an existing run: its spec built again with the installed plugins (``pm``, default all), and
    ``data.folds: auto`` as the run chose it."""
    from automl.plugins import get_plugin_manager

    plan = build_plan(run_spec(run), pm or get_plugin_manager())
    folds = recorded_folds(run.dir)
    if folds is not None:
        plan.keep_folds(folds, recorded_repeats(run.dir))
    return plan


def build_space(spec: Spec, entries: Mapping[str, FloatParam | IntParam | ChoiceParam] | None = None) -> SearchSpace:
    """The :class:`SearchSpace` of ``entries`` (default: the spec's ``space:``, which must then be given)."""
    params: list[Param] = []
    if entries is None:
        assert spec.space is not None, "a spec without space: gets the trainer's default space (build_plan)"
        entries = spec.space
    for name, p in entries.items():
        when = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in p.when.items()}
        if isinstance(p, FloatParam):
            params.append(Float(name, when, p.low, p.high, p.log, p.step, tuple(p.grid) if p.grid else None))
        elif isinstance(p, IntParam):
            params.append(Int(name, when, p.low, p.high, p.log, p.step, tuple(p.grid) if p.grid else None))
        elif isinstance(p, ChoiceParam):
            params.append(Choice(name, when, tuple(p.values)))
    try:
        return SearchSpace(params)
    except ValueError as exc:
        bad = str(exc).split(":", 1)[0]
        raise spec.error(str(exc), "space", *([bad] if bad in entries else [])) from exc


_ENTRIES: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, SpaceEntry])


def _default_space(spec: Spec, trainer: TrainerSpec, summary: DataSummary) -> tuple[SearchSpace, DefaultSpace]:
    """The trainer's default space for this data, validated like a spec's ``space:``, and its starting points.

    Raises:
        SpecError: The trainer has no default space (pointing at ``space``), or none for its fixed params.
        PluginError: The trainer's default space or a starting point is invalid (a plugin bug).
    """
    if trainer.default_space is None:
        raise spec.error(
            f"`space:` is missing and trainer {trainer.name!r} has no default space: list the parameters to search "
            "under `space:`", "space",
        )
    try:
        made = trainer.default_space(_task(spec), spec.trainer.params, summary)
    except ValueError as exc:  # the fixed params rule out a default space
        raise spec.error(f"trainer {trainer.name!r} has no default space here: {exc}", "trainer", "params") from exc
    default = made if isinstance(made, DefaultSpace) else DefaultSpace(made)
    try:
        entries = _ENTRIES.validate_python(dict(default.space))
    except ValidationError as exc:
        raise PluginError(f"trainer {trainer.name!r} proposed an invalid default space: {exc}") from exc
    space = build_space(spec, entries)
    for i, config in enumerate(default.start):
        if not space.contains(config):
            raise PluginError(f"trainer {trainer.name!r}: starting point {i} {dict(config)} is not a config of its "
                              "default space")
    return space, default


def _is_compressor_key(name: str, compressors: Sequence[str]) -> bool:
    head, sep, _ = name.partition(COMPRESSOR_SEPARATOR)
    return bool(sep) and head in compressors


def trainer_space(space: SearchSpace, compressors: Sequence[str]) -> SearchSpace:
    """``space`` without the compressors' entries: what the trainer's ``check`` is given.

    A trainer parameter conditioned on a compressor's parameter keeps its values and loses
    that condition (the trainer cannot see the parent).
    """
    kept = [p for name, p in space.items() if not _is_compressor_key(name, compressors)]
    names = {p.name for p in kept}
    return SearchSpace([dataclasses.replace(p, when={k: v for k, v in p.when.items() if k in names}) for p in kept])


def _compressors(spec: Spec, pm: PluginManager, trainer: TrainerSpec,
                 space: SearchSpace) -> list[tuple[CompressorSpec, dict[str, Any]]]:
    """Resolve ``compression`` and check each compressor's fixed and searched values, before any trial."""
    names = [step.name for step in spec.compression]
    out: list[tuple[CompressorSpec, dict[str, Any]]] = []
    for i, step in enumerate(spec.compression):
        try:
            record: CompressorSpec = pm.compressors.get(step.name)
        except PluginError as exc:
            raise spec.error(str(exc), "compression", i, "name") from exc
        if record.trainers is not None and trainer.name not in record.trainers:
            others = [n for n in pm.compressors.names()
                      if pm.compressors.records[n].trainers is None or trainer.name in pm.compressors.records[n].trainers]
            raise spec.error(
                f"compressor {record.name!r} cannot compress models of trainer {trainer.name!r}: it supports "
                f"{', '.join(record.trainers) or '(no trainer)'}. Compressors for {trainer.name!r}: "
                f"{', '.join(others) or '(none installed)'}", "compression", i, "name",
            )
        out.append((record, dict(step.params)))
    registered = set(pm.compressors.names())
    for key in space:
        head, sep, _ = key.partition(COMPRESSOR_SEPARATOR)
        if not sep or head in names or not (names or head in registered):
            continue  # a dotted trainer parameter, in a spec without compression
        raise spec.error(
            f"space entry {key!r} belongs to compressor {head!r}, which is not in `compression:` "
            f"(listed: {', '.join(names) or 'none'}); add `{{name: {head}}}` to `compression:` or rename the entry",
            "space", key,
        )
    if out and spec.data is not None and spec.data.folds not in (None, 0, "auto"):
        raise spec.error(
            "compression is scored on the exported model, which with `data.folds` is refitted on every row: no "
            "held-out rows are left to score the compressed model on; use a validation split (remove `folds`)",
            "data", "folds",
        )
    for i, (record, params) in enumerate(out):
        prefix = record.name + COMPRESSOR_SEPARATOR
        own = [dataclasses.replace(p, name=name.removeprefix(prefix), when={})
               for name, p in space.items() if name.startswith(prefix)]
        twice = sorted({p.name for p in own} & set(params))
        if twice:
            raise spec.error(
                f"compressor {record.name!r}: {twice[0]!r} is both fixed in params and searched as "
                f"{prefix + twice[0]!r} in the space; keep one", "compression", i, "params", twice[0],
            )
        if record.check is None:
            continue
        # Fixed params alone, then each searched entry with them, then all together: the error points
        # at the field that brought the bad value (compression[i].params, or space.NAME.PARAM).
        attempts: list[tuple[list[Param], tuple[Any, ...]]] = [([], ("compression", i, "params"))]
        attempts += [([p], ("space", prefix + p.name)) for p in own]
        attempts.append((own, ("compression", i)))
        for subset, where in attempts:
            try:
                record.check(params, SearchSpace(subset), spec.trainer.params)
            except (ValueError, PluginError) as exc:
                raise spec.error(f"compressor {record.name!r}: {exc}", *where) from exc
    return out


def _trainer_fault(trainer: TrainerSpec, spec: Spec, space: SearchSpace) -> tuple[Any, ...]:
    """Where a failed trainer check points: the space entry without which it passes, else `trainer`."""
    assert trainer.check is not None
    for name in list(space):
        kept = [dataclasses.replace(p, when={k: v for k, v in p.when.items() if k != name})
                for other, p in space.items() if other != name]
        try:
            trainer.check(_task(spec), spec.trainer.params, SearchSpace(kept))
        except ValueError:
            continue
        return ("space", name)
    return ("trainer",)


def _options_check(spec: Spec, kind: str, record: SearcherSpec | SchedulerSpec, options: Mapping[str, Any]) -> None:
    valid = record.option_names()
    unknown = [k for k in options if k not in valid]
    if unknown and isinstance(record, SchedulerSpec) and unknown[0] in SCHEDULER_ENGINE_ARGUMENTS:
        raise spec.error(f"{record.engine_argument_message(unknown[0])}; valid options: {', '.join(valid) or '(none)'}",
                         kind, "options", unknown[0])
    if unknown:
        raise spec.error(
            f"{kind} {record.name!r} has no option {unknown[0]!r}; valid options: {', '.join(valid) or '(none)'}",
            kind, "options", unknown[0],
        )


def _max_budget(plan: Plan) -> int:
    """Budget steps of a full trial, asked of trial 0's trainer built with an empty config and no data (in a
    directory of its own that is removed after: a trainer may write to its trial directory)."""
    try:
        with tempfile.TemporaryDirectory(prefix="automl-probe-") as tmp:
            trial_dir(tmp, 0).mkdir(parents=True)
            return max(1, int(plan.trial_trainer(0, {}, tmp, None).budget_steps))
    except Exception as exc:  # a trainer that cannot say without a config is a plugin bug
        raise plan.error(f"trainer {plan.trainer.name!r} cannot tell its budget steps: {type(exc).__name__}: {exc}",
                         "trainer") from exc


def build_plan(spec: Spec, pm: PluginManager) -> Plan:
    """Resolve ``spec`` against the installed plugins.

    Raises:
        SpecError: For anything the plugins cannot run, pointing at the field.
    """
    # Import paths in a spec (the function trainer, user modules) resolve like `python -m` would:
    # from the spec's directory and the working directory. Trials get the same (Job.sys_path).
    for entry in user_paths(spec):
        if entry not in sys.path:
            sys.path.append(entry)
    trainer, searcher, scheduler = _resolve(spec, pm)
    dataset, options = _data_source(spec, pm, trainer)
    space, default, summary, table = _space(spec, trainer, searcher, scheduler, dataset, options)
    compressors = _compressors(spec, pm, trainer, space)
    _check_space(spec, trainer, searcher, space, compressors)
    metrics = _metrics(spec, trainer, compressors)
    objectives, constraints = _objectives(spec, trainer, metrics)
    chosen = None
    if spec.searcher.name == AUTO:
        searcher, chosen = choose_searcher(spec, pm, space, len(objectives))
    if spec.resources.gpu > 0 and spec.resources.gpu > 1 and spec.resources.gpu != int(spec.resources.gpu):
        raise spec.error("a fractional GPU request must be below 1 (e.g. 0.5), or a whole number", "resources", "gpu")
    plan = Plan(spec, space, objectives, constraints, trainer, searcher, scheduler, 1, dataset, options, metrics,
                compressors=compressors)
    plan.max_budget = _max_budget(plan)
    _check_budget(plan)
    plan.versions = _versions(pm, plan)
    if default is not None:
        plan.space_source = "trainer"
        plan.start = [dict(config) for config in default.start]
        plan.summary = summary
        plan.notes.extend(default.notes)
    if spec.start:  # the spec's start points (and --enqueue's) run first, checked against the space
        from automl.start_points import check_start

        plan.start = check_start(spec, plan.space, spec.seed) + plan.start
    if table is not None:
        plan._table = table
        plan.notes[:0] = table.notes
    elif (profile := plan.profile()) is not None:
        plan.notes[:0] = profile.notes
    if chosen is not None:
        plan.notes.append(chosen)
    if plan._auto_folds_possible():
        plan.folds  # noqa: B018 - resolved here so `automl validate` prints the choice with the other notes
        plan.repeats  # noqa: B018 - likewise
    if scheduler.uses_steps:
        plan.make_scheduler()  # options outside their range fail here, before any trial
    plan.make_searcher()  # likewise for the searcher's option values
    return plan


def _resolve(spec: Spec, pm: PluginManager) -> tuple[TrainerSpec, SearcherSpec, SchedulerSpec]:
    """The spec's trainer, searcher and scheduler records; the searcher's and scheduler's option names checked."""
    try:
        trainer = pm.trainers.get(spec.trainer.name)
    except PluginError as exc:
        raise spec.error(str(exc), "trainer", "name") from exc
    try:
        searcher = pm.searchers.get(requested(spec))
    except PluginError as exc:
        raise spec.error(str(exc), "searcher", "name") from exc
    try:
        scheduler = pm.schedulers.get(spec.scheduler.name)
    except PluginError as exc:
        raise spec.error(str(exc), "scheduler", "name") from exc
    _options_check(spec, "searcher", searcher, spec.searcher.options)
    _options_check(spec, "scheduler", scheduler, spec.scheduler.options)
    return trainer, searcher, scheduler


def _data_source(spec: Spec, pm: PluginManager, trainer: TrainerSpec) -> tuple[DatasetSpec | None, dict[str, Any]]:
    """The data set record and its options (None and {} for a trainer without data), checked before loading."""
    if not trainer.needs_data:
        return None, {}
    if spec.task is None:
        raise spec.error("`task:` is required: classification or regression", "task")
    if spec.data is None:
        raise spec.error(f"trainer {trainer.name!r} needs `data:` (a dataset name or a csv file)", "data")
    if spec.task not in trainer.tasks:
        raise spec.error(f"trainer {trainer.name!r} does not do {spec.task}; it does {', '.join(trainer.tasks)}", "task")
    file_kind = next((k for k in ("csv", "parquet", "images") if getattr(spec.data, k) is not None), None)
    if file_kind is not None:
        dataset = pm.datasets.get(file_kind)
        path = spec.base_dir() / str(getattr(spec.data, file_kind))
        # An image folder's target is its sub-folders' names.
        target = {} if file_kind == "images" else {"target": spec.data.target}
        options = {"path": str(path), **target, **spec.data.options}
        where: tuple[str, ...] = ("data", file_kind)
    else:
        try:
            dataset = pm.datasets.get(str(spec.data.dataset))
        except PluginError as exc:
            raise spec.error(str(exc), "data", "dataset") from exc
        options = dict(spec.data.options)
        where = ("data", "dataset")
    if dataset.task is not None and dataset.task != spec.task:
        raise spec.error(f"data set {dataset.name!r} is for {dataset.task}, the spec says task: {spec.task}", "task")
    if dataset.check is not None:
        try:
            dataset.check(options)
        except (ValueError, DataError) as exc:
            # A check's message may name the field itself (it is also read outside a spec): said once.
            raise spec.error(str(exc).removeprefix(".".join(where) + ": "), *where) from exc
    return dataset, options


def _space(
    spec: Spec, trainer: TrainerSpec, searcher: SearcherSpec, scheduler: SchedulerSpec, dataset: DatasetSpec | None,
    options: dict[str, Any],
) -> tuple[SearchSpace, DefaultSpace | None, DataSummary | None, Table | None]:
    """The spec's space, or the trainer's default space for the data (then also its starting points, the data's
    summary and the table read to make it)."""
    if spec.space is not None:
        return build_space(spec), None, None, None
    table: Table | None = None
    if trainer.needs_data and dataset is not None:
        probe = Plan(spec, SearchSpace([]), [], [], trainer, searcher, scheduler, 1, dataset, options, {})
        # The default space depends on the data: its chunked profile (a CSV file), else the table read once, here.
        profile = probe.profile()
        if profile is not None:
            summary = profile.summary(_task(spec))
            return (*_default_space(spec, trainer, summary), summary, None)
        table = probe.load_table()
    summary = summarize(table, _task(spec)) if table is not None else DataSummary()
    space, default = _default_space(spec, trainer, summary)
    return space, default, summary, table


def _check_space(spec: Spec, trainer: TrainerSpec, searcher: SearcherSpec, space: SearchSpace,
                 compressors: list[tuple[CompressorSpec, dict[str, Any]]]) -> None:
    """The searcher's and the trainer's own checks of the space (the trainer sees it without the compressors')."""
    if searcher.check_space is not None:
        try:
            searcher.check_space(space)
        except ValueError as exc:
            raise spec.error(f"searcher {searcher.name!r} cannot search this space: {exc}", "space") from exc
    if trainer.check is not None:
        tspace = trainer_space(space, [record.name for record, _ in compressors])
        try:
            trainer.check(_task(spec), spec.trainer.params, tspace)
        except ValueError as exc:
            raise spec.error(str(exc), *_trainer_fault(trainer, spec, tspace)) from exc


def _metrics(spec: Spec, trainer: TrainerSpec, compressors: list[tuple[CompressorSpec, dict[str, Any]]]
             ) -> dict[str, Mode]:
    """Every metric a trial reports, with its mode: the trainer's, before and after compression, the engine's."""
    metrics: dict[str, Mode] = dict(trainer.metrics(_task(spec), spec.trainer.params))
    if compressors:
        # The metrics of the model before compression are kept, so the loss it caused shows.
        metrics.update({f"{name}{UNCOMPRESSED}": mode for name, mode in list(metrics.items())})
        for record, _ in compressors:
            for name, mode in record.metrics.items():
                metrics.setdefault(name, mode)
    if trainer.measurable:
        metrics.update(ENGINE_METRICS)
    return metrics


def _objectives(spec: Spec, trainer: TrainerSpec, metrics: Mapping[str, Mode]
                ) -> tuple[list[Objective], list[Constraint]]:
    """The objectives (the trainer's first metric when the spec names none) and constraints, each on a metric
    a trial reports."""
    objectives = []
    if spec.objectives is None:
        # The trainer's first metric (accuracy, r2 for sklearn) when the spec names none.
        first = next(iter(trainer.metrics(_task(spec), spec.trainer.params).items()), None)
        if first is None:
            raise spec.error(f"trainer {trainer.name!r} reports no metric: give `objectives:`", "objectives")
        objectives.append(Objective(*first))
    for i, o in enumerate(spec.objectives or []):
        if o.metric not in metrics:
            raise spec.error(
                f"trainer {trainer.name!r} does not report {o.metric!r}; it reports: {', '.join(sorted(metrics))}",
                "objectives", i, "metric",
            )
        objectives.append(Objective(o.metric, o.mode, o.reference))
    constraints = spec.parsed_constraints()
    for i, c in enumerate(constraints):
        if c.metric not in metrics:
            raise spec.error(
                f"constraint on {c.metric!r}, which trainer {trainer.name!r} does not report; "
                f"it reports: {', '.join(sorted(metrics))}",
                "constraints", i,
            )
    return objectives, constraints


def _check_budget(plan: Plan) -> None:
    """A wall time long enough for one trial; several steps per trial for a scheduler that stops between them."""
    wall = plan.wall_time
    if wall is not None and wall < MIN_WALL_TIME_S:
        raise plan.error(
            f"a wall time of {wall:g}s ends before the first trial could finish: starting Ray alone takes "
            f"about 10s on 2 cores, and the wall time counts from the start of the search; give at least "
            f"{MIN_WALL_TIME_S:g}s", "budget", "wall_time")
    if plan.scheduler.uses_steps and plan.max_budget < 2:
        raise plan.error(
            f"scheduler {plan.scheduler.name!r} stops trials between budget steps, but trainer {plan.trainer.name!r} "
            "reports one step per trial here; use scheduler fifo, or trainer params that give several steps",
            "scheduler", "name",
        )


def _versions(pm: PluginManager, plan: Plan) -> dict[str, str]:
    """The package version of the core and of each plugin the plan uses (stored with the run)."""
    versions = {
        "automl": pm.infos["automl.builtin.searchers"].version if "automl.builtin.searchers" in pm.infos else "?",
        f"trainer:{plan.trainer.name}": pm.version_of("trainer", plan.trainer.name),
        f"searcher:{plan.searcher.name}": pm.version_of("searcher", plan.searcher.name),
        f"scheduler:{plan.scheduler.name}": pm.version_of("scheduler", plan.scheduler.name),
    }
    if plan.dataset is not None:
        versions[f"dataset:{plan.dataset.name}"] = pm.version_of("dataset", plan.dataset.name)
    for record, _ in plan.compressors:
        versions[f"compressor:{record.name}"] = pm.version_of("compressor", record.name)
    return versions
