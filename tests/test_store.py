from __future__ import annotations

import math
from pathlib import Path

import pytest

from automl.errors import StoreError
from automl.store import Store


def new_run(store: Store) -> int:
    return store.create_run(name="r", directory="/tmp/r", spec_text="task: x", spec_hash="h", seed=1,
                            objectives=[{"metric": "loss", "mode": "min"}], versions={"automl": "0"})


def test_trials_and_steps_round_trip(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    run = new_run(store)
    store.save_trial(run, 0, status="running", config={"x": 0.5, "model": "knn"}, started_at=1.0)
    store.add_step(run, 0, 1, {"loss": 0.4})
    store.add_step(run, 0, 2, {"loss": 0.3})
    store.save_trial(run, 0, status="completed", metrics={"loss": 0.3, "latency_ms": 1.5}, budget=2)
    [trial] = store.trials(run)
    assert trial["status"] == "completed" and trial["config"] == {"x": 0.5, "model": "knn"}
    assert trial["metrics"]["latency_ms"] == 1.5
    assert [s["metrics"]["loss"] for s in store.steps(run, 0)] == [0.4, 0.3]
    store.finish_run(run, "completed", {"trials": {"completed": 1}})
    assert store.get_run()["summary"] == {"trials": {"completed": 1}}


def test_non_finite_values_become_null(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    run = new_run(store)
    store.save_trial(run, 3, status="failed", config={}, metrics={"loss": math.nan, "x": math.inf}, error="nan")
    assert store.trial(run, 3)["metrics"] == {"loss": None, "x": None}


def test_a_second_reader_sees_committed_rows_while_the_writer_goes_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    writer, reader = Store(url), Store(url)
    run = new_run(writer)
    for n in range(5):
        writer.save_trial(run, n, status="completed", config={"n": n}, metrics={"loss": n})
        assert len(reader.trials(run)) == n + 1


def test_unknown_trial_fields_and_bad_urls_are_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ValueError, match="unknown trial fields"):
        store.save_trial(new_run(store), 0, colour="red")
    with pytest.raises(StoreError, match="cannot open"):
        Store("nosuchdialect://x")
    with pytest.raises(StoreError, match="cannot open"):
        Store(f"sqlite:///{tmp_path}/missing/dir/a.db")


def test_opening_a_store_waits_for_a_writer_in_the_middle_of_making_the_file(tmp_path: Path) -> None:
    """Two searches opening one fresh store: the first holds the file's write lock while it makes it, and SQLite
    runs no busy handler for the second's switch to WAL ("database is locked" at once, seen in CI). The second
    waits, and the file ends in WAL. The lock is released whatever happened, so nothing here depends on timing."""
    import sqlite3
    import threading
    import time

    path = tmp_path / "shared.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE made_by_the_first(x)")  # a rollback-journal writer, mid-transaction
    outcome: dict[str, str] = {}

    def open_store() -> None:
        try:
            store = Store(f"sqlite:///{path}")
            with store.engine.connect() as conn:
                outcome["mode"] = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
            store.close()
        except StoreError as exc:
            outcome["error"] = str(exc)

    opener = threading.Thread(target=open_store)
    opener.start()
    time.sleep(0.5)  # gives the opener the chance to meet the lock; the assertions hold either way
    holder.execute("COMMIT")
    holder.close()
    opener.join(timeout=120)
    assert not opener.is_alive()
    assert outcome == {"mode": "wal"}
