"""Typed records of a run's results: what the store holds and what hooks and readers receive.

The store's rows come back as frozen records (the pattern of Optuna's ``FrozenTrial``):
:class:`TrialRecord` per trial, :class:`StepRecord` per budget step, :class:`RunRecord` per run,
and the Pareto front as :class:`Front` with :class:`FrontMember` members, written to
``front.json`` in one JSON form (:meth:`Front.to_dict`).

Read records through their attributes (``trial.status``, ``trial.metrics``). For the 0.2 series
every record also reads like the dict it replaced (``trial["status"]``, ``trial.get("metrics")``,
``dict(trial)``), so code written for 0.1 keeps working; that access will go in 0.3.

>>> trial = TrialRecord(number=3, status=TrialStatus.COMPLETED, config={"x": 0.5}, metrics={"loss": 0.1})
>>> trial.status == "completed", trial.metrics["loss"], trial["number"]
(True, 0.1, 3)
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ESTIMATE_SUFFIX",
    "Front",
    "FrontMember",
    "LineageEntry",
    "RunRecord",
    "RunStatus",
    "StepRecord",
    "TrialRecord",
    "TrialStatus",
    "estimate_key",
    "estimated",
]

#: The ending of an estimated engine metric's name (``latency_ms_estimate``): what MO-ASHA compares at a
#: rung (the trainer's cheap estimate, or a quick export measured), never a measured value of a kept model.
ESTIMATE_SUFFIX = "_estimate"
#: The engine's measured metrics, which a rung may only estimate.
_ENGINE = ("latency_ms", "size_bytes")


def estimate_key(metric: str) -> str:
    """The name a rung estimate of engine metric ``metric`` is stored under (``size_bytes_estimate``)."""
    return f"{metric}{ESTIMATE_SUFFIX}"


def estimated(metrics: Mapping[str, Any]) -> list[str]:
    """The engine metrics ``metrics`` holds only as rung estimates (``["latency_ms"]``): for a stopped trial,
    labelled so wherever it is shown."""
    return [m for m in _ENGINE if m not in metrics and estimate_key(m) in metrics]


class TrialStatus(enum.StrEnum):
    """Where a trial stands. A ``str``: ``TrialStatus.COMPLETED == "completed"``.

    Attributes:
        PENDING: Numbered and handed out, not yet started by a worker.
        RUNNING: Started; its metrics are its latest budget step's.
        PAUSED: Stopped at a rung by a promotion-type scheduler; may be resumed to a larger budget.
        COMPLETED: Ran its full budget (or its trainer's early stopping ended it) and exported its model.
        STOPPED: Ended early (by the scheduler, the wall time or ``budget.target``) with its best step's metrics.
        FAILED: Raised, timed out or reported a non-finite metric; ``error`` says why.
    """

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """True for ``completed``, ``stopped`` and ``failed``: the trial will not change again."""
        return self in (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.FAILED)


class RunStatus(enum.StrEnum):
    """Where a run stands: ``running``, ``completed`` (at least one trial completed), ``failed``
    (none did, or the driver raised) or ``interrupted`` (Ctrl-C)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class _Record(Mapping[str, Any]):
    """Dict-style reading of a record's fields (``record["status"]``), kept for code written for 0.1."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready types (statuses as strings, nested records as dicts)."""
        return {name: _plain(getattr(self, name)) for name in self._names()}

    @classmethod
    def _row_values(cls, row: Mapping[str, Any], mappings: tuple[str, ...], status: type[enum.Enum]) -> dict[str, Any]:
        """``row``'s known fields, its JSON ``mappings`` as dicts and its ``status`` as the enum."""
        names = set(cls._names())
        values = {k: v for k, v in row.items() if k in names}
        for key in mappings:
            values[key] = _dict(values.get(key))
        values["status"] = status(values["status"])
        return values

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (records are frozen)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if value else {}


@dataclass(frozen=True, eq=True)
class TrialRecord(_Record):
    """One trial as the store holds it (a row of the ``trials`` table).

    Attributes:
        number: The trial number, unique in its run (0, 1, ...; an ensemble trial takes the next one).
        status: Its :class:`TrialStatus`.
        config: The config it ran (inactive parameters absent).
        metrics: Its latest metrics: a running trial's last budget step, a finished trial's final ones
            (``test_<metric>`` on the test part, ``latency_ms`` / ``size_bytes`` measured by the engine).
            A multi-objective scheduler's rung values are estimates, kept as ``latency_ms_estimate`` /
            ``size_bytes_estimate`` (:func:`estimate_key`): a stopped trial has those, never a measured
            value (:attr:`estimated` lists them). Empty before the first report.
        budget: Budget steps trained (a trainer's early stopping ends a completed trial below
            ``max_budget``; None before the first report).
        max_budget: Budget steps of a full trial.
        error: Why it failed or stopped (one line), or None.
        attempts: How many times it was started (retries after a worker's death count).
        seed: The trial's seed (the spec's seed plus the trial number).
        artifact: The file (or directory) it exported, as the worker wrote it, or None.
        started_at: Unix time it started, or None.
        finished_at: Unix time it finished, or None.
        duration: Seconds it ran, or None.
        timings: Where its seconds went: ``fit_s``, ``export_s``, ``measure_s``, ``other_s``.
        measured_as: What each engine-measured figure is (``{"latency_ms": "onnx, batch 1, ..."}``).
        tune_id: Ray Tune's id of the trial (internal; may be None).
        node: The id of the Ray node its worker ran on (the last one, if a retry moved it); None before its first
            report.
        lineage: Under PBT (``scheduler: pbt``), each time it copied another trial's checkpoint and went
            on with a perturbed config, oldest first; empty otherwise. ``config`` is the config it has now.
    """

    number: int
    status: TrialStatus
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    budget: int | None = None
    max_budget: int | None = None
    error: str | None = None
    attempts: int | None = None
    seed: int | None = None
    artifact: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    measured_as: dict[str, Any] = field(default_factory=dict)
    tune_id: str | None = None
    node: str | None = None
    lineage: tuple[LineageEntry, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TrialRecord:
        """The record of a store row (or of its :meth:`to_dict` form); unknown keys are ignored."""
        values = cls._row_values(row, ("config", "metrics", "timings", "measured_as"), TrialStatus)
        values["metrics"] = _estimates_apart(values["metrics"], values["status"], values["measured_as"])
        values["lineage"] = tuple(LineageEntry.from_dict(e) for e in values.get("lineage") or ())
        return cls(**values)

    @property
    def estimated(self) -> list[str]:
        """The engine metrics this trial has only as rung estimates (a stopped trial's), e.g. ``["size_bytes"]``."""
        return estimated(self.metrics)


@dataclass(frozen=True)
class LineageEntry(_Record):
    """One PBT exploit of a trial (:attr:`TrialRecord.lineage`): at budget step ``step`` it took trial
    ``donor``'s checkpoint of that step and went on with ``config`` (``donor``'s config perturbed) instead of
    ``previous``; ``at`` is when (Unix time)."""

    donor: int
    step: int
    config: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    at: float | None = None

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> LineageEntry:
        return cls(int(value["donor"]), int(value["step"]), _dict(value.get("config")), _dict(value.get("previous")),
                   value.get("at"))


def _estimates_apart(metrics: dict[str, Any], status: TrialStatus, measured_as: Mapping[str, Any]) -> dict[str, Any]:
    """A store written before estimates had their own names (0.2 before issue 18) kept a stopped trial's rung
    estimates under ``latency_ms`` / ``size_bytes``: read them as the estimates they are (a measured value always
    has its ``measured_as`` note, and only a completed trial has one)."""
    if status == TrialStatus.COMPLETED:
        return metrics
    moved = [m for m in _ENGINE if m in metrics and m not in measured_as and estimate_key(m) not in metrics]
    if not moved:
        return metrics
    out = {k: v for k, v in metrics.items() if k not in moved}
    out.update({estimate_key(m): metrics[m] for m in moved})
    return out


@dataclass(frozen=True, eq=True)
class StepRecord(_Record):
    """One budget step a trial reported (a row of the ``steps`` table).

    Attributes:
        number: The trial number.
        step: The budget step (1, 2, ...).
        metrics: What the trial reported after that step.
        at: Unix time the driver recorded it.
    """

    number: int
    step: int
    metrics: dict[str, Any]
    at: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRecord:
        return cls(int(row["number"]), int(row["step"]), _dict(row.get("metrics")), float(row["at"]))


@dataclass(frozen=True, eq=True)
class RunRecord(_Record):
    """One run as the store holds it (a row of the ``runs`` table).

    Attributes:
        id: The run's id in the store.
        name: The spec's ``name``.
        directory: The run directory (absolute, where the search wrote it).
        spec_text: The spec's YAML text, as the search read it.
        spec_hash: A hash of the spec, to refuse resuming a different one.
        status: Its :class:`RunStatus`.
        seed: The spec's seed.
        objectives: ``{"objectives": [{"metric", "mode", "reference"}...], "constraints": [...]}``.
        versions: ``package==version`` of every plugin the run used, by ``kind:name``
            (``{"searcher:tpe": "automl-optuna==0.2.0", ...}``).
        created_at: Unix time it started.
        finished_at: Unix time it ended, or None.
        summary: The run's summary once it ended (counts, front size, ensemble, wall time...).
    """

    id: int
    name: str
    directory: str
    spec_text: str
    spec_hash: str
    status: RunStatus
    seed: int
    objectives: dict[str, Any]
    versions: dict[str, str]
    created_at: float
    finished_at: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        return cls(**cls._row_values(row, ("objectives", "versions", "summary"), RunStatus))


@dataclass(frozen=True, eq=True)
class FrontMember(_Record):
    """One trial on the Pareto front.

    Attributes:
        number: The trial number.
        config: The config it ran.
        metrics: Its metrics (after the final latency measurement, when the run measures latency).
        model: Its model's copy under the run directory (``models/trial-00003-model.onnx``), or None
            (no exported file, or the front is provisional: the search still runs).
    """

    number: int
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    model: str | None = None

    @classmethod
    def from_json(cls, value: Any) -> FrontMember:
        """A member as ``front.json`` holds it; a bare trial number (older files) gives an empty one."""
        if isinstance(value, Mapping):
            return cls(int(value["number"]), _dict(value.get("config")), _dict(value.get("metrics")), value.get("model"))
        return cls(int(value))


@dataclass(frozen=True, eq=True)
class Front(_Record):
    """A run's Pareto front: ``front.json`` once the search ended, or computed from the store while it runs.

    Attributes:
        members: The non-dominated feasible trials (or the least-violating ones when none is
            feasible), sorted by the objectives in minimisation form.
        reference: The hypervolume's reference point, one value per objective in its own direction
            (None when no trial had every objective).
        hypervolume: The hypervolume the members dominate up to ``reference`` (minimisation form).
        candidates: Trials considered (completed, or stopped too with ``front.include_stopped``,
            with every objective).
        feasible: Candidates within every constraint.
        objectives: The objectives as ``{"metric", "mode", "reference"}``, primary first.
        constraints: The constraints, as written (``"latency_ms <= 2"``).
        trials: Trials by status when the front was written.
        latency_drift: The reference workload's latency before and after the final measurement
            (None when the run measures no latency).
        provisional: True while the search runs (computed from the store, no models copied yet).
    """

    members: tuple[FrontMember, ...] = ()
    reference: list[float] | None = None
    hypervolume: float = 0.0
    candidates: int = 0
    feasible: int = 0
    objectives: list[dict[str, Any]] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    trials: dict[str, int] = field(default_factory=dict)
    latency_drift: dict[str, Any] | None = None
    provisional: bool = False

    @property
    def numbers(self) -> list[int]:
        """The members' trial numbers, in the members' order."""
        return [m.number for m in self.members]

    def member(self, number: int) -> FrontMember | None:
        """The member of trial ``number``, or None when it is not on the front."""
        return next((m for m in self.members if m.number == number), None)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Front:
        """Read ``front.json``: this version's form, or an older one (members as trial numbers,
        keys missing); unknown keys are ignored."""
        return cls(
            members=tuple(FrontMember.from_json(m) for m in doc.get("members") or ()),
            reference=list(doc["reference"]) if doc.get("reference") is not None else None,
            hypervolume=float(doc.get("hypervolume") or 0.0),
            candidates=int(doc.get("candidates") or 0),
            feasible=int(doc.get("feasible") or 0),
            objectives=list(doc.get("objectives") or []),
            constraints=[str(c) for c in doc.get("constraints") or []],
            trials={str(k): int(v) for k, v in (doc.get("trials") or {}).items()},
            latency_drift=doc.get("latency_drift"),
            provisional=bool(doc.get("provisional", False)),
        )

    def with_members(self, members: Sequence[FrontMember]) -> Front:
        """A copy with ``members`` (e.g. the models' copies filled in)."""
        return dataclasses.replace(self, members=tuple(members))
