"""What the dashboard shows: the runs it was given, read from their stores without ever writing them.

A :class:`Catalog` holds the sources named on the command line: run directories (``run.json`` names
the store and the run, with the guards of :meth:`automl.run.Run.open`) and whole stores (``--store
URL``: every run in it). Each store is opened as a :class:`ReadOnlyStore`: SQLite through a
``mode=ro`` URI (a missing database is refused, never created; WAL lets it read while the search
writes), PostgreSQL with read-only transactions, any other SQLAlchemy URL with SELECTs only.
Nothing read is imported, unpickled or evaluated: rows are JSON, shown as text by the page.

The page polls; :meth:`ReadOnlyStore.stamp` is a cheap fingerprint of a run's rows, so a run's
figures are rebuilt (by :mod:`automl.figures`, the report's code) only after its rows changed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, func, select
from sqlalchemy.exc import SQLAlchemyError

from automl.errors import AutoMLError, StoreError
from automl.figures import ReportData, comparison_figures, failure_groups, run_figures
from automl.records import RunRecord
from automl.run import RUN_FILE, Run
from automl.store import Store, runs, steps, trials

__all__ = ["Catalog", "ReadOnlyStore", "RunGone", "RunRef", "read_only_engine"]


class RunGone(AutoMLError):
    """A run shown by the dashboard is no longer there (its directory, database or row was deleted)."""


def _sqlite_read_only(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=10000")  # wait for the writing driver's transaction instead of failing
    cur.execute("PRAGMA query_only=ON")  # a second lock besides mode=ro: this connection can never write
    cur.close()


def read_only_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine over ``url`` that cannot write the store.

    Raises:
        StoreError: A SQLite file that does not exist, or a malformed URL.
    """
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StoreError(f"{url!r} is not a store URL ({exc}); e.g. sqlite:///runs/x/automl.db") from exc
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database or ""
        if not name or name == ":memory:":
            raise StoreError(f"{url!r} names no database file: the dashboard reads an existing store")
        path = Path(name).absolute()
        if not path.is_file():
            raise StoreError(f"there is no database at {str(path)!r} ({url}); the dashboard never creates one")
        engine = sa.create_engine(f"sqlite:///file:{path.as_posix()}?mode=ro&uri=true")
        event.listen(engine, "connect", _sqlite_read_only)
        return engine
    # PostgreSQL: every transaction read-only on the server's side, so a bug here could not write either.
    options = {"options": "-c default_transaction_read_only=on"} if parsed.get_backend_name() == "postgresql" else {}
    try:
        return sa.create_engine(parsed, connect_args=options)
    except ImportError as exc:
        raise StoreError(f"cannot open the store {url!r}: its database driver is not installed ({exc}); "
                         f"pip install {exc.name or 'the driver'}, or name an installed one in the URL "
                         "(postgresql+psycopg2://...)") from exc
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreError(f"cannot open the store {url!r}: {exc}") from exc


def _read_only() -> StoreError:
    return StoreError("the dashboard reads stores only; it never writes them")


class ReadOnlyStore(Store):
    """The core's :class:`~automl.store.Store` queries over a :func:`read_only_engine`; writing raises.

    Raises:
        StoreError: When the store cannot be reached or holds no automl tables.
    """

    def __init__(self, url: str) -> None:  # no create_all: a reader never makes tables
        self.url = url
        self.engine = read_only_engine(url)
        try:
            with self.engine.connect() as conn:
                conn.execute(select(func.count()).select_from(runs)).scalar_one()
        except SQLAlchemyError as exc:
            self.engine.dispose()
            orig = getattr(exc, "orig", None)  # the driver's own message, without SQLAlchemy's SQL echo
            reason = str(orig if orig is not None else exc).splitlines()[0]
            raise StoreError(f"cannot read an automl store at {url!r}: {reason}") from exc

    # The writing half of the store protocol, refused: the dashboard never writes.
    def create_run(self, **_fields: Any) -> int:  # type: ignore[override]
        raise _read_only()

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any] | None = None) -> None:
        raise _read_only()

    def set_run_status(self, run_id: int, status: str) -> None:
        raise _read_only()

    def save_trial(self, run_id: int, number: int, **fields: Any) -> None:
        raise _read_only()

    def add_step(self, run_id: int, number: int, step: int, metrics: Mapping[str, Any], *,
                 status: str = "running") -> None:
        raise _read_only()

    def all_runs(self) -> list[RunRecord]:
        """Every run in the store, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(runs.select().order_by(runs.c.id.desc())).mappings()
            return [RunRecord.from_row(dict(r)) for r in rows]

    def counts(self, run_id: int) -> dict[str, int]:
        """Trials of the run by status."""
        query = select(trials.c.status, func.count()).where(trials.c.run_id == run_id).group_by(trials.c.status)
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}

    def stamp(self, run_id: int) -> str:
        """A fingerprint of the run's rows that changes whenever the driver writes one of them."""
        t = select(func.count(), func.sum(func.coalesce(trials.c.budget, 0)), func.max(trials.c.started_at),
                   func.max(trials.c.finished_at)).where(trials.c.run_id == run_id)
        s = select(func.count(), func.max(steps.c.at)).where(steps.c.run_id == run_id)
        r = select(runs.c.status, runs.c.finished_at).where(runs.c.id == run_id)
        with self.engine.connect() as conn:
            run = conn.execute(r).first()
            if run is None:
                raise RunGone(f"run {run_id} is no longer in the store {self.url}")
            parts = [*run, *conn.execute(t).one(), *conn.execute(s).one(), sorted(self.counts(run_id).items())]
        return json.dumps(parts, default=str)


@dataclass(frozen=True)
class RunRef:
    """One run the dashboard shows.

    Attributes:
        key: Its name in the dashboard's URLs (``0``, ``1``, ... for run directories, ``s0-7`` for run 7
            of the first ``--store``).
        store: Its store, read-only.
        run_id: Its id in that store.
        directory: The run directory given on the command line, or None for a run found in a ``--store``.
    """

    key: str
    store: ReadOnlyStore
    run_id: int
    directory: Path | None = None

    def run(self) -> Run:
        """The run, ready for :class:`~automl.figures.ReportData` (its ``front.json`` is read from its directory).

        Raises:
            RunGone: When its directory, database or row was deleted.
        """
        if self.directory is not None and not (self.directory / RUN_FILE).is_file():
            raise RunGone(f"the run directory {str(self.directory)!r} is gone (no {RUN_FILE} any more)")
        db = _sqlite_path(self.store.url)
        if db is not None and not db.is_file():
            raise RunGone(f"the run's database {str(db)!r} was deleted")
        info = self.store.get_run(self.run_id)
        if info is None:
            raise RunGone(f"run {self.run_id} is no longer in the store {self.store.url}")
        return Run(self.directory or Path(info.directory), self.store, self.run_id)


def _sqlite_path(url: str) -> Path | None:
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).absolute()


def _run_dir_store(directory: Path) -> tuple[str, int]:
    """The store URL and run id ``RUN_DIR/run.json`` names, with :meth:`Run.open`'s guards on the URL."""
    from automl.run import _recorded_store  # the same refusals as `automl show` (a store outside, unsigned)

    meta = directory / RUN_FILE
    if not meta.is_file():
        raise AutoMLError(f"{str(directory)!r} holds no automl run (no {RUN_FILE}); pass the --out directory "
                          "of a search, or --store URL")
    try:
        info = json.loads(meta.read_text())
        url, run_id = str(info["store"]), int(info["run_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AutoMLError(f"{str(meta)!r} is not an automl run file ({type(exc).__name__}: {exc})") from exc
    return _recorded_store(directory, url), run_id


@dataclass
class Catalog:
    """The runs a dashboard serves: run directories and every run of some stores.

    Args:
        run_dirs: Run directories (each must hold a run, unless ``pending``).
        store_urls: Stores whose every run is shown (runs added later appear too).
        pending: Run directories that may not hold a run yet (``automl search --dashboard`` starts the
            server before the search writes ``run.json``): shown once they do.

    Raises:
        AutoMLError: A directory that holds no run, a store that cannot be read (one line each).
    """

    run_dirs: Sequence[str | Path] = ()
    store_urls: Sequence[str] = ()
    pending: Sequence[str | Path] = ()
    _stores: dict[str, ReadOnlyStore] = field(default_factory=dict, repr=False)
    _dirs: dict[str, RunRef] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for url in self.store_urls:
            self._store(url)
        for i, d in enumerate(self.run_dirs):
            self._open_dir(str(i), Path(d))
        if not self.run_dirs and not self.store_urls and not self.pending:
            raise AutoMLError("nothing to show: pass run directories or --store URL")

    def _store(self, url: str) -> ReadOnlyStore:
        if url not in self._stores:
            self._stores[url] = ReadOnlyStore(url)
        return self._stores[url]

    def _open_dir(self, key: str, directory: Path) -> RunRef:
        url, run_id = _run_dir_store(directory)
        ref = RunRef(key, self._store(url), run_id, directory.absolute())
        if ref.store.get_run(run_id) is None:
            raise AutoMLError(f"{str(directory / RUN_FILE)!r} names run {run_id}, which its store {url} does not hold")
        self._dirs[key] = ref
        return ref

    def refs(self) -> list[RunRef]:
        """Every run shown now: the directories in order, then each store's runs, newest first."""
        with self._lock:
            for i, d in enumerate(self.pending):
                key = f"p{i}"
                if key not in self._dirs and (Path(d) / RUN_FILE).is_file():
                    try:
                        self._open_dir(key, Path(d))
                    except AutoMLError:
                        continue  # run.json written, the store not yet: the next poll opens it
            out = [self._dirs[k] for k in sorted(self._dirs, key=_order)]
            for i, url in enumerate(self.store_urls):
                out += [RunRef(f"s{i}-{r.id}", self._stores[url], r.id) for r in self._stores[url].all_runs()]
        return out

    def get(self, key: str) -> RunRef | None:
        """The run shown under ``key``, or None."""
        return next((r for r in self.refs() if r.key == key), None)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()


def _order(key: str) -> tuple[int, int]:
    return (0, int(key)) if key.isdigit() else (1, int(key[1:]))


# -- what the pages are sent ------------------------------------------------------------------


def _planned(data: ReportData) -> int | None:
    """The trials the spec asks for, when it gives a number (a time-bounded search has none)."""
    budget = getattr(data.spec, "budget", None)
    value = getattr(budget, "trials", None)
    return int(value) if isinstance(value, int) else None


def _best(data: ReportData) -> dict[str, Any] | None:
    primary = data.objectives[0]
    done = [t for t in data.trials if t.status == "completed" and isinstance(t.metrics.get(primary.metric), (int, float))]
    if not done:
        return None
    best = min(done, key=lambda t: primary.to_min(float(t.metrics[primary.metric])))
    return {"number": best.number, "metric": primary.metric, "mode": primary.mode,
            "value": best.metrics[primary.metric], "config": best.config}


def run_summary(ref: RunRef, data: ReportData) -> dict[str, Any]:
    """One line of the runs list: name, status, progress, best value."""
    counts: dict[str, int] = {}
    for t in data.trials:
        counts[str(t.status)] = counts.get(str(t.status), 0) + 1
    finished = sum(n for s, n in counts.items() if s in ("completed", "stopped", "failed"))
    info = data.info
    return {
        "key": ref.key, "name": info.name, "status": str(info.status),
        "directory": str(ref.directory) if ref.directory is not None else info.directory,
        "store": ref.store.url, "run_id": ref.run_id, "created_at": info.created_at, "finished_at": info.finished_at,
        "counts": counts, "finished": finished, "planned": _planned(data), "best": _best(data),
        "objectives": [{"metric": o.metric, "mode": o.mode} for o in data.objectives],
        "front_size": len(data.front.members),
    }


def _trial_row(t: Any, members: set[int]) -> dict[str, Any]:
    return {"number": t.number, "status": str(t.status), "front": t.number in members, "budget": t.budget,
            "max_budget": t.max_budget, "metrics": t.metrics, "config": t.config, "duration": t.duration,
            "error": t.error, "attempts": t.attempts}


def run_detail(ref: RunRef, data: ReportData, figure_json: Callable[[Any], Any]) -> dict[str, Any]:
    """Everything one run's page shows but parameter importance (see :func:`run_importance`).

    ``figure_json`` turns a plotly figure into what the page is sent (its JSON form)."""
    drawn = run_figures(data, importance=False)
    members = data.members
    front = [{"number": m.number, "config": m.config, "metrics": m.metrics or {}, "model": m.model}
             for m in data.front.members]
    spec = data.spec
    return {
        "summary": run_summary(ref, data),
        "setup": None if spec is None else {"trainer": spec.trainer.name, "searcher": spec.searcher.name,
                                            "scheduler": spec.scheduler.name},
        "constraints": data.constraints, "notes": data.notes, "params": data.params,
        "provisional": data.front.provisional, "hypervolume": data.front.hypervolume,
        "front": front, "failures": failure_groups(data), "rung_note": drawn.rung_note, "max_budget": drawn.max_budget,
        "trials": [_trial_row(t, members) for t in data.trials],
        "figures": {"history": figure_json(drawn.history) if drawn.history is not None else None,
                    "pareto": [figure_json(f) for f in drawn.pareto],
                    "parallel": figure_json(drawn.parallel) if drawn.parallel is not None else None,
                    "rungs": figure_json(drawn.rungs) if drawn.rungs is not None else None},
    }


def run_importance(data: ReportData, figure_json: Callable[[Any], Any]) -> dict[str, Any]:
    """Parameter importance (a surrogate fit: seconds over thousands of trials, so asked for on its own)."""
    from automl.figures import importance_figure, parameter_importance

    ranked = parameter_importance(data)
    if isinstance(ranked, str):
        return {"figure": None, "note": ranked}
    return {"figure": figure_json(importance_figure(ranked, data.objectives[0].metric)), "note": ""}


def comparison(runs_: Sequence[tuple[RunRef, ReportData]], figure_json: Callable[[Any], Any]) -> dict[str, Any]:
    """Two or more runs side by side: each one's summary, and the comparison figures."""
    labelled = [(f"{ref.key}: {data.info.name}", data) for ref, data in runs_]
    return {"runs": [run_summary(ref, data) for ref, data in runs_],
            "figures": [figure_json(f) for f in comparison_figures(labelled)]}

