"""The results store: every run, trial and budget step, written by the driver on arrival.

:class:`ResultsStore` is what the engine and the commands (``show``, ``resume``, ``report``,
``export``) need of a store; a store plugin answers ``automl_open_store`` with one.
:class:`Store` is the core's own: SQLAlchemy Core over any URL it accepts; SQLite (in WAL
mode, so ``automl show`` can read while the search writes) is the default, at
``RUN_DIR/automl.db``; PostgreSQL (``postgresql://`` or ``postgresql+psycopg2://``, the ``postgres`` extra) serves
several searches writing one store at once. Either way two drivers may write the same store: a write is one
transaction (SQLite: ``BEGIN IMMEDIATE`` behind a busy timeout, so writers queue instead of failing with "database is
locked"), the schema is made under a lock, and run ids come from the database.
"""

from __future__ import annotations

import importlib.util
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import sqlalchemy as sa
from sqlalchemy import event, select
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from automl.errors import StoreError
from automl.records import RunRecord, StepRecord, TrialRecord

__all__ = ["ResultsStore", "Store", "TRIAL_FIELDS", "clean", "shown_url"]


@runtime_checkable
class ResultsStore(Protocol):
    """What the engine and the commands need of a results store (the pattern of Optuna's ``BaseStorage``).

    Each run has one driver writing it, one call at a time, but several drivers (searches) may write their own runs
    of one store at once; readers (``automl show`` while a search runs,
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
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("directory", sa.Text, nullable=False),
    sa.Column("spec_text", sa.Text, nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),  # seeds go to 2**32: past PostgreSQL's INTEGER
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
    sa.Column("seed", sa.BigInteger),
    sa.Column("artifact", sa.Text),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("duration", sa.Float),
    #: Where a trial's seconds went: ``fit_s`` (budget steps and their evaluation), ``export_s``,
    #: ``measure_s`` (latency and size), ``other_s`` (the rest: building, checkpoints, test scores).
    sa.Column("timings", sa.JSON),
    #: What each engine-measured figure is: ``{"size_bytes": "onnx: file", "latency_ms": "onnx, batch 1, ..."}``.
    sa.Column("measured_as", sa.JSON),
    #: The Ray node its worker ran on (``ray.get_runtime_context().get_node_id()``), the last one if it moved.
    sa.Column("node", sa.String(64)),
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


#: What a bare ``postgresql://`` needs and the ``postgres`` extra installs (SQLAlchemy 2.1 reads it as psycopg 3).
POSTGRES_INSTALL = "pip install 'automl[postgres]'"
#: How long a SQLite writer waits for another writer's transaction (ms), and how often it then tries again.
_BUSY_MS = 30_000
_WRITE_TRIES = 4
#: The execution option that makes a SQLite transaction ``BEGIN IMMEDIATE`` (see :func:`_sqlite_begin`).
_WRITE = "automl_write"
#: The PostgreSQL advisory lock held while the schema is made (any fixed number; "automl" in ASCII).
_SCHEMA_LOCK = 0x6175746F6D6C

T = TypeVar("T")


def shown_url(url: str) -> str:
    """``url`` as it may be shown in a message or a page: its password masked (``postgresql://me:***@host/db``)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy reads: mask what looks like user:password@ all the same
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _engine_url(url: str) -> URL:
    """The URL the engine connects to: a bare ``postgresql://`` goes to psycopg2 when psycopg 3 is not there."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql" and not _importable("psycopg") and _importable("psycopg2"):
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (blocked) has no spec
        return False


def _open_error(url: str, exc: BaseException) -> StoreError:
    """One line for a store that cannot be opened: the URL without its password, the database's first line, and
    the package to install for a missing driver."""
    shown = shown_url(url)
    if isinstance(exc, (ImportError, NoSuchModuleError)):
        module = getattr(exc, "name", None) or ""
        if module.split(".")[0] in ("psycopg2", "psycopg"):
            how = POSTGRES_INSTALL
        elif module:
            how = f"pip install {module.split('.')[0]}"
        else:  # neither a store plugin nor SQLAlchemy knows the scheme
            how = ("install the store plugin that answers this scheme (automl plugins lists those installed), or use a "
                   "URL of a database SQLAlchemy supports (sqlite:///FILE, postgresql://USER@HOST/DB)")
        return StoreError(f"cannot open the results store '{shown}': its database driver is missing ({exc}); {how}")
    orig = getattr(exc, "orig", None) or exc
    first = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    return StoreError(f"cannot open the results store '{shown}': {first}")


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling off: _sqlite_begin says BEGIN (SQLAlchemy's recipe for SQLite).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    _use_wal(cur)  # readers do not block the writing drivers
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _use_wal(cur: Any) -> None:
    """Switch a SQLite file to WAL, waiting for other connections as a write does.

    ``PRAGMA journal_mode=WAL`` needs the file to itself and SQLite does not run the busy handler for it: two
    searches opening one fresh store at once failed with "database is locked" (CI, under load). WAL is a lasting
    property of the file, so the mode is read first (no lock: after the first opening there is nothing to do),
    and the switch is tried again with backoff for as long as the busy timeout, until it, or another opener, made it.
    An in-memory database answers ``memory`` and stays so.
    """
    deadline = time.monotonic() + _BUSY_MS / 1000
    pause = 0.01
    while True:
        if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cur.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except Exception as exc:  # the DB-API's OperationalError, whichever SQLite driver the URL named
            if not _busy_text(str(exc)) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.5)


def _sqlite_begin(conn: Connection) -> None:
    # A write takes SQLite's write lock at BEGIN, waiting up to the busy timeout for another writer. A deferred
    # transaction that reads first and writes then fails at once with "database is locked" when another driver
    # wrote meanwhile: its snapshot is stale, and the busy timeout does not apply.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _busy(exc: OperationalError) -> bool:
    return _busy_text(str(exc.orig))


def _busy_text(message: str) -> bool:
    return "locked" in message or "busy" in message


def _schema_missing(conn: Connection) -> bool:
    inspector = sa.inspect(conn)
    for table in (runs, trials, steps):
        if not inspector.has_table(table.name):
            return True
        have = {c["name"] for c in inspector.get_columns(table.name)}
        if any(column.name not in have for column in table.columns):
            return True
    return False


def _make_schema(conn: Connection) -> None:
    """The tables, and the columns added since a store was created, made inside a write transaction."""
    if conn.dialect.name == "postgresql":
        # Two searches opening a new database at once: one makes the tables, the other waits and finds them
        # (two CREATE TABLEs of one name at once collide in PostgreSQL's catalog, IF NOT EXISTS or not).
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
    metadata.create_all(conn)
    _add_missing_columns(conn)


def _add_missing_columns(conn: Connection) -> None:
    """Columns added since a store was created (``create_all`` leaves existing tables alone): a run
    directory of an older version stays readable and resumable."""
    inspector = sa.inspect(conn)
    for table in (runs, trials, steps):
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def _text(value: Any) -> Any:
    # PostgreSQL refuses a NUL character in text (a trial's error may quote binary output); SQLite keeps it.
    return value.replace("\x00", "\\0") if isinstance(value, str) else value


class Store:
    """The core's :class:`ResultsStore`, over a SQLAlchemy URL.

    Args:
        url: ``sqlite:///path/automl.db``, ``postgresql://user@host/db`` or any SQLAlchemy URL.

    Raises:
        StoreError: When the URL is malformed, its driver is missing (the message names the package), or the
            database cannot be reached or opened; one line, the password never shown.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            target = _engine_url(url)
            options: dict[str, Any] = {}
            if target.get_backend_name() == "postgresql" and "connect_timeout" not in target.query:
                options["connect_args"] = {"connect_timeout": 10}  # an unreachable host fails in seconds, not minutes
            self.engine: Engine = sa.create_engine(target, **options)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_connect)
                event.listen(self.engine, "begin", _sqlite_begin)
            with self.engine.connect() as conn:
                missing = _schema_missing(conn)
            if missing:
                self._write(_make_schema)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise _open_error(url, exc) from None

    def close(self) -> None:
        self.engine.dispose()

    def _write(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one write transaction, tried again while SQLite's busy timeout runs out under other writers."""
        for attempt in range(_WRITE_TRIES):
            try:
                with self.engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
                    return work(conn)
            except OperationalError as exc:
                if self.engine.dialect.name != "sqlite" or not _busy(exc) or attempt == _WRITE_TRIES - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self, *, name: str, directory: str, spec_text: str, spec_hash: str, seed: int,
        objectives: Mapping[str, Any], versions: Mapping[str, str],
    ) -> int:
        def insert(conn: Connection) -> int:
            result = conn.execute(
                runs.insert().values(
                    name=name, directory=directory, spec_text=spec_text, spec_hash=spec_hash, status="running",
                    seed=seed, objectives=clean(objectives), versions=dict(versions), created_at=time.time(),
                )
            )
            key = result.inserted_primary_key
            if key is None:
                raise StoreError(f"the store {shown_url(self.url)} returned no id for the new run")
            return int(key[0])

        return self._write(insert)

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any] | None = None) -> None:
        update = runs.update().where(runs.c.id == run_id).values(
            status=status, finished_at=time.time(), summary=clean(summary or {}))
        self._write(lambda conn: conn.execute(update))

    def set_run_status(self, run_id: int, status: str) -> None:
        self._write(lambda conn: conn.execute(runs.update().where(runs.c.id == run_id).values(status=status)))

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
        values = {k: clean(v) if k in ("config", "metrics", "timings", "measured_as", "lineage") else _text(v)
                  for k, v in fields.items()}
        where = (trials.c.run_id == run_id) & (trials.c.number == number)

        def upsert(conn: Connection) -> None:
            if values:
                found = conn.execute(trials.update().where(where).values(**values)).rowcount > 0
            else:  # nothing to update (an UPDATE needs a SET): only make sure the row exists
                found = conn.execute(select(trials.c.id).where(where)).first() is not None
            if not found:
                conn.execute(trials.insert().values(run_id=run_id, number=number,
                                                    **{"config": {}, "status": "pending", **values}))

        self._write(upsert)

    def add_step(self, run_id: int, number: int, step: int, metrics: Mapping[str, Any], *, status: str = "running") -> None:
        """Record one budget step's report (once per trial and step) and make it the trial's latest metrics."""
        now, values = time.time(), clean(metrics)
        where = (steps.c.run_id == run_id) & (steps.c.number == number) & (steps.c.step == step)

        def record(conn: Connection) -> None:
            # One driver writes a run (its lock), so check-then-insert cannot race; uq_step backs it in new stores.
            if conn.execute(select(steps.c.id).where(where)).first() is None:
                conn.execute(steps.insert().values(run_id=run_id, number=number, step=step, metrics=values, at=now))
            conn.execute(trials.update().where((trials.c.run_id == run_id) & (trials.c.number == number)).values(
                metrics=values, budget=step, status=status))

        self._write(record)

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
