"""The results store: every run, trial and budget step, written by the driver on arrival.

:class:`ResultsStore` is what the engine and the commands (``show``, ``resume``, ``report``,
``export``) need of a store; a store plugin answers ``automl_open_store`` with one.
:class:`Store` is the core's own: SQLAlchemy Core over any URL it accepts; SQLite (in WAL
mode, so ``automl show`` can read while the search writes) is the default, at
``RUN_DIR/automl.db``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from automl.errors import StoreError
from automl.records import RunRecord, StepRecord, TrialRecord

__all__ = ["ResultsStore", "Store", "TRIAL_FIELDS", "clean"]


@runtime_checkable
class ResultsStore(Protocol):
    """What the engine and the commands need of a results store (the pattern of Optuna's ``BaseStorage``).

    Only the driver writes, one call at a time; readers (``automl show`` while a search runs,
    ``automl report``, ``automl export``) may open the same URL from other processes and must see
    every committed write. Values are JSON-safe (:func:`clean` them); metrics that are not finite
    are stored as None. :class:`Store` implements it for SQLAlchemy URLs; the conformance checks
    in :mod:`automl.testing` run on any implementation.

    Attributes:
        url: The URL it was opened with (written to ``run.json``, so ``Run.open`` reopens it
            through the ``automl_open_store`` hook).
    """

    url: str

    def create_run(
        self, *, name: str, directory: str, spec_text: str, spec_hash: str, seed: int,
        objectives: Mapping[str, Any], versions: Mapping[str, str],
    ) -> int:
        """Record a new run with status ``running``; return its id (unique in the store)."""
        ...

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any] | None = None) -> None:
        """Set the run's final status, ``finished_at`` (now) and summary."""
        ...

    def set_run_status(self, run_id: int, status: str) -> None:
        """Set the run's status only (``running`` again on resume)."""
        ...

    def get_run(self, run_id: int | None = None) -> RunRecord | None:
        """The run ``run_id`` (or the newest one when None), or None when there is none."""
        ...

    def save_trial(self, run_id: int, number: int, **fields: Any) -> None:
        """Insert trial ``number`` or update the ``fields`` given (names of :data:`TRIAL_FIELDS`;
        others raise ValueError). A new trial without ``status`` is ``pending``, without ``config`` ``{}``."""
        ...

    def add_step(self, run_id: int, number: int, step: int, metrics: Mapping[str, Any], *,
                 status: str = "running") -> None:
        """Record one budget step's report; the trial's ``metrics``, ``budget`` and ``status`` become it.

        Idempotent per (trial, step): a step the trial already has keeps its first row (a step run again
        after a crash is never recorded twice); the trial's fields are updated all the same."""
        ...

    def trials(self, run_id: int) -> list[TrialRecord]:
        """Every trial of the run, by number."""
        ...

    def trial(self, run_id: int, number: int) -> TrialRecord | None:
        """Trial ``number`` of the run, or None."""
        ...

    def steps(self, run_id: int, number: int | None = None) -> list[StepRecord]:
        """The budget steps of trial ``number`` (every trial's when None), by trial then step."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("directory", sa.Text, nullable=False),
    sa.Column("spec_text", sa.Text, nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("objectives", sa.JSON, nullable=False),
    sa.Column("versions", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("summary", sa.JSON),
)

trials = sa.Table(
    "trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("tune_id", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON),
    sa.Column("budget", sa.Integer),
    sa.Column("max_budget", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, default=1),
    sa.Column("seed", sa.Integer),
    sa.Column("artifact", sa.Text),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("duration", sa.Float),
    #: Where a trial's seconds went: ``fit_s`` (budget steps and their evaluation), ``export_s``,
    #: ``measure_s`` (latency and size), ``other_s`` (the rest: building, checkpoints, test scores).
    sa.Column("timings", sa.JSON),
    #: What each engine-measured figure is: ``{"size_bytes": "onnx: file", "latency_ms": "onnx, batch 1, ..."}``.
    sa.Column("measured_as", sa.JSON),
    #: PBT: each exploit of the trial (:class:`automl.records.LineageEntry` as dicts), oldest first.
    sa.Column("lineage", sa.JSON),
    sa.UniqueConstraint("run_id", "number", name="uq_trial_number"),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    # One row per (trial, step): a store created before this constraint relies on add_step's check alone.
    sa.UniqueConstraint("run_id", "number", "step", name="uq_step"),
)

TRIAL_FIELDS = tuple(c.name for c in trials.columns if c.name not in ("id", "run_id"))


def clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writing driver
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a store was created (``create_all`` leaves existing tables alone): a run
    directory of an older version stays readable and resumable."""
    inspector = sa.inspect(engine)
    for table in (runs, trials, steps):
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=engine.dialect)
                with engine.begin() as conn:
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


class Store:
    """The core's :class:`ResultsStore`, over a SQLAlchemy URL.

    Args:
        url: ``sqlite:///path/automl.db``, ``postgresql://...`` or any SQLAlchemy URL.

    Raises:
        StoreError: When the URL is malformed or the database cannot be opened.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = sa.create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            metadata.create_all(self.engine)
            _add_missing_columns(self.engine)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the results store {url!r}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self, *, name: str, directory: str, spec_text: str, spec_hash: str, seed: int,
        objectives: Mapping[str, Any], versions: Mapping[str, str],
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                runs.insert().values(
                    name=name, directory=directory, spec_text=spec_text, spec_hash=spec_hash, status="running",
                    seed=seed, objectives=clean(objectives), versions=dict(versions), created_at=time.time(),
                )
            )
            key = result.inserted_primary_key
            if key is None:
                raise StoreError(f"the store {self.url!r} returned no id for the new run")
            return int(key[0])

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update().where(runs.c.id == run_id).values(
                    status=status, finished_at=time.time(), summary=clean(summary or {})
                )
            )

    def set_run_status(self, run_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(status=status))

    def get_run(self, run_id: int | None = None) -> RunRecord | None:
        """The run ``run_id``, or the newest one."""
        query = runs.select().order_by(runs.c.id.desc()).limit(1) if run_id is None else runs.select().where(runs.c.id == run_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return RunRecord.from_row(dict(row)) if row else None

    # -- trials -------------------------------------------------------------------------

    def save_trial(self, run_id: int, number: int, **fields: Any) -> None:
        """Insert or update trial ``number`` of a run with ``fields`` (see :data:`TRIAL_FIELDS`)."""
        unknown = set(fields) - set(TRIAL_FIELDS)
        if unknown:
            raise ValueError(f"unknown trial fields {sorted(unknown)}")
        json_fields = ("config", "metrics", "timings", "measured_as", "lineage")
        values = {k: clean(v) if k in json_fields else v for k, v in fields.items()}
        where = (trials.c.run_id == run_id) & (trials.c.number == number)
        with self.engine.begin() as conn:
            if values:
                found = conn.execute(trials.update().where(where).values(**values)).rowcount > 0
            else:  # nothing to update (an UPDATE needs a SET): only make sure the row exists
                found = conn.execute(select(trials.c.id).where(where)).first() is not None
            if not found:
                values.setdefault("config", {})
                values.setdefault("status", "pending")
                conn.execute(trials.insert().values(run_id=run_id, number=number, **values))

    def add_step(self, run_id: int, number: int, step: int, metrics: Mapping[str, Any], *, status: str = "running") -> None:
        """Record one budget step's report (once per trial and step) and make it the trial's latest metrics."""
        now = time.time()
        with self.engine.begin() as conn:
            where = (steps.c.run_id == run_id) & (steps.c.number == number) & (steps.c.step == step)
            if conn.execute(select(steps.c.id).where(where)).first() is None:
                conn.execute(steps.insert().values(run_id=run_id, number=number, step=step, metrics=clean(metrics),
                                                   at=now))
            conn.execute(
                trials.update().where((trials.c.run_id == run_id) & (trials.c.number == number)).values(
                    metrics=clean(metrics), budget=step, status=status
                )
            )

    def trials(self, run_id: int) -> list[TrialRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(trials.select().where(trials.c.run_id == run_id).order_by(trials.c.number)).mappings()
            return [TrialRecord.from_row(dict(row)) for row in rows]

    def trial(self, run_id: int, number: int) -> TrialRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                trials.select().where((trials.c.run_id == run_id) & (trials.c.number == number))
            ).mappings().first()
        return TrialRecord.from_row(dict(row)) if row else None

    def steps(self, run_id: int, number: int | None = None) -> list[StepRecord]:
        query = steps.select().where(steps.c.run_id == run_id)
        if number is not None:
            query = query.where(steps.c.number == number)
        with self.engine.connect() as conn:
            return [StepRecord.from_row(dict(r)) for r in conn.execute(query.order_by(steps.c.number, steps.c.step)).mappings()]
