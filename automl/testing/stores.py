"""The results store conformance kit: reusable pytest checks every store plugin should pass.

A store is opened as ``Run.open`` opens one (through the ``automl_open_store`` hook, from its
URL) and used as the driver and the commands use it, against the documented
:class:`~automl.plugin.ResultsStore` protocol. The core runs the kit on SQLite, and on PostgreSQL:
the server ``AUTOML_TEST_POSTGRES_URL`` names, else a throwaway one started with ``pgserver`` (a package shipping
PostgreSQL's binaries, in the ``dev`` extra); skipped, with the reason, only where neither is there.

What is checked (each a ``test_*`` method of :class:`StoreConformance`):

* the opened object implements the protocol and keeps its URL;
* a created run reads back as a :class:`~automl.plugin.RunRecord` with what was given, status
  ``running``; ids are unique; ``get_run()`` is the newest; an unknown id is None;
* a run's status and ``finish_run``'s status, end time and summary are kept;
* ``save_trial`` inserts a ``pending`` trial with an empty config (also with no fields at
  all), updates only the fields given, never duplicates a number, refuses unknown fields with ``ValueError``; ``trials`` come
  by number as :class:`~automl.plugin.TrialRecord`;
* ``add_step`` records each budget step (by trial, then step) and makes the trial's metrics,
  budget and status the step's; a step added twice is stored once (the first report kept);
* values at the edges of their types: seeds up to ``2**32 - 1``, a long run name, an empty summary;
* trials and steps of two runs stay apart;
* values come back JSON-safe: numpy scalars as Python numbers, non-finite metrics as None;
* resume: a store opened again on the same URL holds every run, trial and step as written and
  takes new trials; a second store open on the URL sees the writer's committed writes at once.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from automl.plugin import ResultsStore, RunRecord, StepRecord, TrialRecord

__all__ = ["POSTGRES_ENV", "StoreConformance", "postgres_data_dir", "postgres_server", "postgres_url"]

#: The environment variable naming a PostgreSQL server for the store checks (``postgresql://user@host/db``).
POSTGRES_ENV = "AUTOML_TEST_POSTGRES_URL"


@functools.cache
def _server() -> tuple[str, str, str]:
    """The PostgreSQL server of this process's tests: (its URL, "", its data directory when pgserver started it),
    or ("", why there is none, "")."""
    url = os.environ.get(POSTGRES_ENV, "")
    how = f"set {POSTGRES_ENV}=postgresql://USER@HOST/DB or pip install pgserver psycopg2-binary"
    data = ""
    if not url:
        try:
            import pgserver  # type: ignore[import-untyped]  # ships PostgreSQL's binaries: no system install needed
        except ImportError:
            return "", f"no PostgreSQL server to test: {how}", ""
        try:
            data = tempfile.mkdtemp(prefix="automl-pg-")
            server = pgserver.get_server(data, cleanup_mode="delete")
        except Exception as exc:  # initdb or pg_ctl refused here (a sandbox, a user it cannot switch to)
            return "", f"pgserver could not start a PostgreSQL server: {type(exc).__name__}: {exc}"[:300], ""
        atexit.register(server.cleanup)  # pgserver stops it at exit too; this also runs before Python's own
        url = server.get_uri()
    from automl.store import Store, shown_url

    try:
        Store(url).close()
    except Exception as exc:  # a missing driver or an unreachable server: nothing to test here
        return "", f"PostgreSQL at {shown_url(url)} cannot be used: {exc}"[:300], ""
    return url, "", data


def postgres_server() -> str:
    """The URL of a PostgreSQL server for tests: :data:`POSTGRES_ENV`'s, else a throwaway ``pgserver`` one started
    once per process (stopped and deleted at exit); a pytest skip saying why where there is neither."""
    url, why, _ = _server()
    if not url:
        pytest.skip(why)
    return url


def postgres_data_dir() -> Path | None:
    """The data directory of the server :func:`postgres_server` started with pgserver (its ``pg_hba.conf`` a test
    may change), or None for the server :data:`POSTGRES_ENV` names."""
    url, why, data = _server()
    if not url:
        pytest.skip(why)
    return Path(data) if data else None


_databases = itertools.count()


def postgres_url() -> str:
    """A new, empty database on :func:`postgres_server` (a pytest skip saying why where there is no server)."""
    import sqlalchemy as sa

    from automl.store import _engine_url

    server = postgres_server()
    name = f"automl_{os.getpid()}_{next(_databases)}"
    engine = sa.create_engine(_engine_url(server), isolation_level="AUTOCOMMIT")  # CREATE DATABASE: no transaction
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return sa.make_url(server).set(database=name).render_as_string(hide_password=False)


_RUN = {
    "name": "kit", "directory": "/runs/kit", "spec_text": "task: classification\n", "spec_hash": "0" * 64,
    "seed": 7, "objectives": {"objectives": [{"metric": "loss", "mode": "min", "reference": None}], "constraints": []},
    "versions": {"searcher:random": "automl==0.2.0"},
}


class StoreConformance:
    """Checks any results store must pass; subclass it in a ``Test*`` class and override :meth:`url`.

    Attributes:
        concurrent_readers: A second store open on the same URL sees committed writes (every
            store the commands read while a search runs must).
    """

    concurrent_readers: ClassVar[bool] = True

    # -- helpers subclasses may override ------------------------------------------------

    def url(self, tmp_path: Path) -> str:
        """A URL of a store holding nothing of this check's, under ``tmp_path`` when it is a file."""
        return f"sqlite:///{tmp_path / 'automl.db'}"

    def open(self, url: str) -> ResultsStore:
        """The store at ``url``, opened as ``Run.open`` opens it (the ``automl_open_store`` hook)."""
        from automl.plugin import get_plugin_manager

        store: ResultsStore = get_plugin_manager().open_store(url)
        return store

    def _store(self, tmp_path: Path) -> ResultsStore:
        return self.open(self.url(tmp_path))

    def _run(self, store: ResultsStore, **changes: Any) -> int:
        return store.create_run(**{**_RUN, **changes})

    # -- the checks -----------------------------------------------------------------------

    def test_implements_the_protocol(self, tmp_path: Path) -> None:
        url = self.url(tmp_path)
        store = self.open(url)
        try:
            assert isinstance(store, ResultsStore), f"{type(store).__name__} lacks methods of the ResultsStore protocol"
            assert store.url == url, f"store.url is {store.url!r}, opened with {url!r} (Run.open reopens it from there)"
        finally:
            store.close()

    def test_create_and_read_runs(self, tmp_path: Path) -> None:
        store = self._store(tmp_path)
        try:
            before = time.time()
            first = self._run(store)
            second = self._run(store, name="kit-2", seed=8)
            assert isinstance(first, int) and isinstance(second, int) and first != second, (first, second)
            record = store.get_run(first)
            assert isinstance(record, RunRecord), f"get_run returned a {type(record).__name__}"
            for key, value in _RUN.items():
                assert getattr(record, key) == value, f"run {key}: {getattr(record, key)!r}, written {value!r}"
            assert record.id == first and record.status == "running"
            assert before - 5 <= record.created_at <= time.time() + 5, f"created_at {record.created_at} is not now"
            assert record.finished_at is None
            newest = store.get_run()
            assert newest is not None and newest.id == second, "get_run() is not the newest run"
            assert store.get_run(max(first, second) + 1000) is None, "an unknown run id must give None"
        finally:
            store.close()

    def test_run_status_and_finish(self, tmp_path: Path) -> None:
        store = self._store(tmp_path)
        try:
            run = self._run(store)
            store.set_run_status(run, "interrupted")
            record = store.get_run(run)
            assert record is not None and record.status == "interrupted" and record.finished_at is None
            store.set_run_status(run, "running")
            summary = {"completed": 3, "front": [1, 2], "wall_s": 1.5}
            store.finish_run(run, "completed", summary)
            record = store.get_run(run)
            assert record is not None and record.status == "completed"
            assert record.finished_at is not None and record.finished_at >= record.created_at
            assert record.summary == summary, f"summary {record.summary!r}, written {summary!r}"
        finally:
            store.close()

    def test_save_trial_inserts_and_updates(self, tmp_path: Path) -> None:
        store = self._store(tmp_path)
        try:
            run = self._run(store)
            store.save_trial(run, 2, status="pending", config={"x": 0.5, "model": "tree"}, seed=9, max_budget=4)
            store.save_trial(run, 0, seed=1)
            store.save_trial(run, 1, status="running", config={"x": 1.0}, started_at=10.0)
            trials = store.trials(run)
            assert [t.number for t in trials] == [0, 1, 2], f"trials() by number: {[t.number for t in trials]}"
            assert all(isinstance(t, TrialRecord) for t in trials)
            bare = trials[0]
            assert bare.status == "pending" and bare.config == {}, f"a new trial: {bare.status!r} {bare.config!r}"
            store.save_trial(run, 2, status="completed", metrics={"loss": 0.25}, budget=4, finished_at=20.0)
            done = store.trial(run, 2)
            assert done is not None
            assert done.config == {"x": 0.5, "model": "tree"}, f"an update lost the config: {done.config!r}"
            assert (done.status, done.metrics, done.budget, done.seed, done.max_budget) == (
                "completed", {"loss": 0.25}, 4, 9, 4), done
            assert done.finished_at == 20.0
            assert len(store.trials(run)) == 3, "an update of trial 2 added a row"
            assert store.trial(run, 99) is None
            with pytest.raises(ValueError):
                store.save_trial(run, 3, no_such_field=1)
        finally:
            store.close()

    def test_a_trial_saved_with_no_fields_is_pending(self, tmp_path: Path) -> None:
        # The engine numbers a trial before anything else is known of it.
        store = self._store(tmp_path)
        try:
            run = self._run(store)
            store.save_trial(run, 0)
            bare = store.trial(run, 0)
            assert bare is not None and bare.status == "pending" and bare.config == {}, bare
            store.save_trial(run, 0)  # again: nothing to change, nothing added
            assert len(store.trials(run)) == 1
        finally:
            store.close()

    def test_steps_update_the_trial(self, tmp_path: Path) -> None:
        store = self._store(tmp_path)
        try:
            run = self._run(store)
            store.save_trial(run, 1, status="running", config={"x": 1})
            store.save_trial(run, 0, status="running", config={"x": 0})
            store.add_step(run, 1, 1, {"loss": 0.9})
            store.add_step(run, 0, 1, {"loss": 0.8})
            store.add_step(run, 1, 2, {"loss": 0.7, "accuracy": 0.5}, status="paused")
            steps = store.steps(run, 1)
            assert all(isinstance(s, StepRecord) for s in steps)
            assert [(s.step, s.metrics) for s in steps] == [(1, {"loss": 0.9}), (2, {"loss": 0.7, "accuracy": 0.5})]
            assert [(s.number, s.step) for s in store.steps(run)] == [(0, 1), (1, 1), (1, 2)], "steps(): by trial, then step"
            trial = store.trial(run, 1)
            assert trial is not None
            assert (trial.metrics, trial.budget, trial.status) == ({"loss": 0.7, "accuracy": 0.5}, 2, "paused"), trial
            assert trial.config == {"x": 1}
        finally:
            store.close()

    def test_a_step_added_twice_is_stored_once(self, tmp_path: Path) -> None:
        # A trial restarted from its checkpoint reports its last recorded step again (exact resume).
        store = self._store(tmp_path)
        try:
            run = self._run(store)
            store.save_trial(run, 0, status="running", config={"x": 0})
            store.add_step(run, 0, 1, {"loss": 0.9})
            store.add_step(run, 0, 2, {"loss": 0.7})
            store.add_step(run, 0, 2, {"loss": 0.6})  # step 2 again, restored
            steps = store.steps(run, 0)
            assert [(s.step, s.metrics) for s in steps] == [(1, {"loss": 0.9}), (2, {"loss": 0.7})], (
                f"a step added twice: {[(s.step, s.metrics) for s in steps]} (one row per step, the first kept)")
            trial = store.trial(run, 0)
            assert trial is not None and (trial.metrics, trial.budget) == ({"loss": 0.6}, 2), trial
        finally:
            store.close()

    def test_values_at_the_edges_of_their_types(self, tmp_path: Path) -> None:
        store = self._store(tmp_path)
        try:
            top = 2**32 - 1  # the largest seed a spec allows: past a 32-bit signed INTEGER
            name = "n" * 300
            run = self._run(store, seed=top, name=name)
            store.save_trial(run, 0, status="completed", config={"big": 2**40}, seed=top, metrics={"loss": 1e-300},
                             error="line one; " + "x" * 5000)
            store.finish_run(run, "completed", {})
            record, trial = store.get_run(run), store.trial(run, 0)
            assert record is not None and (record.seed, record.name, record.summary) == (top, name, {}), record
            assert trial is not None and trial.seed == top and trial.config == {"big": 2**40}, trial
            assert trial.metrics == {"loss": 1e-300} and trial.error == "line one; " + "x" * 5000
        finally:
            store.close()

    def test_runs_are_separate(self, tmp_path: Path) -> None:
        store = self._store(tmp_path)
        try:
            a, b = self._run(store), self._run(store, name="other")
            store.save_trial(a, 0, status="completed", config={"run": "a"})
            store.save_trial(b, 0, status="failed", config={"run": "b"})
            store.add_step(a, 0, 1, {"loss": 1.0}, status="completed")
            ta, tb = store.trial(a, 0), store.trial(b, 0)
            assert ta is not None and tb is not None
            assert ta.config == {"run": "a"} and tb.config == {"run": "b"} and tb.status == "failed"
            assert store.steps(b) == [], "a step of run a shows in run b"
            assert [t.number for t in store.trials(b)] == [0]
        finally:
            store.close()

    def test_values_are_json_safe(self, tmp_path: Path) -> None:
        store = self._store(tmp_path)
        try:
            run = self._run(store)
            config = {"units": np.int64(3), "lr": np.float32(0.5), "layers": [1, 2], "act": None, "flag": True}
            store.save_trial(run, 0, config=config, metrics={"loss": np.float64(0.5), "bad": math.nan, "big": math.inf})
            store.add_step(run, 1, 1, {"loss": np.float32(0.25), "bad": -math.inf})
            trial, step = store.trial(run, 0), store.steps(run, 1)[0]
            assert trial is not None
            assert trial.config == {"units": 3, "lr": 0.5, "layers": [1, 2], "act": None, "flag": True}, trial.config
            assert type(trial.config["units"]) is int and type(trial.config["lr"]) is float
            assert trial.metrics == {"loss": 0.5, "bad": None, "big": None}, f"non-finite metrics: {trial.metrics}"
            assert step.metrics == {"loss": 0.25, "bad": None}, step.metrics
        finally:
            store.close()

    def test_reopened_store_resumes(self, tmp_path: Path) -> None:
        url = self.url(tmp_path)
        store = self.open(url)
        run = self._run(store)
        for number in range(3):
            store.save_trial(run, number, status="running", config={"n": number}, max_budget=2)
            store.add_step(run, number, 1, {"loss": 1.0 / (number + 1)})
        store.save_trial(run, 0, status="completed", metrics={"loss": 0.1}, budget=2)
        store.set_run_status(run, "interrupted")
        written = (store.get_run(run), store.trials(run), store.steps(run))
        store.close()
        again = self.open(url)
        try:
            assert again.get_run(run) == written[0], "the run reads back otherwise after reopening"
            assert again.trials(run) == written[1], "the trials read back otherwise after reopening"
            assert again.steps(run) == written[2], "the steps read back otherwise after reopening"
            again.set_run_status(run, "running")
            again.save_trial(run, 3, status="pending", config={"n": 3})
            again.add_step(run, 1, 2, {"loss": 0.05}, status="completed")
            assert [t.number for t in again.trials(run)] == [0, 1, 2, 3]
            one = again.trial(run, 1)
            assert one is not None and one.status == "completed" and one.budget == 2 and one.config == {"n": 1}
        finally:
            again.close()

    def test_readers_see_committed_writes(self, tmp_path: Path) -> None:
        if not self.concurrent_readers:
            pytest.skip("the store is not read while a search writes it")
        url = self.url(tmp_path)
        writer = self.open(url)
        run = self._run(writer)
        reader = self.open(url)
        try:
            writer.save_trial(run, 0, status="running", config={"x": 1})
            writer.add_step(run, 0, 1, {"loss": 0.5})
            seen = reader.trial(run, 0)
            assert seen is not None and seen.metrics == {"loss": 0.5}, "a reader does not see the writer's step"
            writer.finish_run(run, "completed", {"completed": 1})
            record = reader.get_run(run)
            assert record is not None and record.status == "completed"
        finally:
            reader.close()
            writer.close()
