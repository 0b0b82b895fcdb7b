"""Two drivers writing one store at once, SQLite file and PostgreSQL: no lost row, no "database is locked", distinct
run ids; a reader meanwhile sees only whole trials.

Real :class:`~automl.store.Store` objects in separate processes (spawned: each opens its own engine), started
together on a fresh database (so the schema is made by two at once too). Each writes what a driver writes for a
trial (numbered, started, two budget steps, one of them reported twice as after a restart, completed) and the
assertions are on the final contents only: nothing depends on which process writes first.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl.store import Store
from automl.testing.stores import postgres_url

ROOT = Path(__file__).resolve().parents[1]
TRIALS = 40


def _writer(url: str, name: str, start: Any, out: Any) -> None:
    """One driver's writes: a run, TRIALS trials with two steps each (step 2 twice), the run finished."""
    start.wait(timeout=120)  # both open the fresh store (and make its schema) at once
    store = None
    try:
        store = Store(url)
        run = store.create_run(name=name, directory=f"/runs/{name}", spec_text="x", spec_hash="0" * 64, seed=1,
                               objectives={}, versions={})
        for number in range(TRIALS):
            store.save_trial(run, number)
            store.save_trial(run, number, status="running", config={"n": number, "by": name}, started_at=1.0)
            store.add_step(run, number, 1, {"loss": 1.0})
            store.add_step(run, number, 2, {"loss": 0.5})
            store.add_step(run, number, 2, {"loss": 0.5})  # reported again after a restart: stored once
            store.save_trial(run, number, status="completed", metrics={"loss": 0.5}, finished_at=2.0)
        store.finish_run(run, "completed", {"completed": TRIALS})
        out.put((name, run, ""))
    except Exception as exc:  # reported to the test, which names it
        out.put((name, None, f"{type(exc).__name__}: {exc}"))
    finally:
        if store is not None:
            store.close()


def _reader(url: str, start: Any, out: Any) -> None:
    """``automl show`` meanwhile: whatever it reads is whole (a trial's steps never past its status)."""
    start.wait(timeout=120)
    problems = []
    store = None
    try:
        for _ in range(200):
            try:
                store = store or Store(url)
                runs = [store.get_run(i) for i in (1, 2)]
            except Exception as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
                break
            for record in filter(None, runs):
                completed = [t.number for t in store.trials(record.id) if t.status == "completed"]
                stepped = [(s.number, s.step) for s in store.steps(record.id)]  # read after: holds theirs
                missing = [n for n in completed if (n, 1) not in stepped or (n, 2) not in stepped]
                if missing:
                    problems.append(f"run {record.id}: trials {missing} completed without their steps")
            if all(r is not None and r.status == "completed" for r in runs):
                break
            time.sleep(0.05)
    finally:
        if store is not None:
            store.close()
    out.put(("reader", None, "; ".join(problems[:3])))


def _two_writers(url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, name, start, out)) for name in ("a", "b")]
    procs.append(ctx.Process(target=_reader, args=(url, start, out)))
    for proc in procs:
        proc.start()
    reports = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    errors = [f"{who}: {err}" for who, _, err in reports if err]
    assert not errors, errors
    ids = {who: run for who, run, _ in reports if who != "reader"}
    assert len(set(ids.values())) == 2, f"two drivers got one run id: {ids}"
    store = Store(url)
    try:
        for name, run in ids.items():
            record = store.get_run(run)
            assert record is not None and (record.name, record.status) == (name, "completed"), record
            trials = store.trials(run)
            assert [t.number for t in trials] == list(range(TRIALS)), f"run {name}: trials lost or doubled"
            assert all(t.status == "completed" and t.config["by"] == name for t in trials)
            steps = store.steps(run)
            assert [(s.number, s.step) for s in steps] == [(n, s) for n in range(TRIALS) for s in (1, 2)], (
                f"run {name}: {len(steps)} step rows for {TRIALS} trials of 2 steps")
    finally:
        store.close()


def test_two_writers_on_one_sqlite_file(tmp_path: Path) -> None:
    _two_writers(f"sqlite:///{tmp_path / 'shared.db'}")


def test_two_writers_on_one_postgres_database() -> None:
    _two_writers(postgres_url())


SPEC = """
name: {name}
store: "{store}"
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:fidelity", metrics: {{loss: min, cost: min}}, steps: 3}}
searcher: {{name: random}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
objectives:
  - {{metric: loss, mode: min}}
budget: {{trials: {trials}}}
seed: {seed}
"""


def two_searches(specs: list[Path], outs: list[Path], logs: Path) -> list[str]:
    """Two ``automl search`` drivers writing one store at once, both on one Ray (a ``ray.cluster_utils.Cluster``
    joined with ``--address``, as two searches share a cluster); their stderr (each must exit 0).

    One Ray for both: two local Rays starting on this machine under a load of 15-20 failed with Ray's "The current
    node timed out during startup" (Ray's start-up, not the store, and not what this checks; see start_cluster).
    """
    from tests.test_cluster import start_cluster

    cluster = start_cluster(num_cpus=2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    drivers: list[subprocess.Popen[bytes]] = []
    errs = [logs / f"driver{i}.err" for i in range(len(specs))]
    try:
        for spec, out, err in zip(specs, outs, errs):
            with open(err, "w") as handle:
                drivers.append(subprocess.Popen([sys.executable, "-m", "automl.cli", "search", str(spec), "--out",
                                                 str(out), "--address", cluster.address], cwd=ROOT, env=env,
                                                stdout=subprocess.DEVNULL, stderr=handle))
        for driver in drivers:
            driver.wait(timeout=540)
    finally:
        for driver in drivers:
            if driver.poll() is None:
                driver.kill()
        cluster.shutdown()
    texts = [err.read_text() for err in errs]
    for driver, text in zip(drivers, texts):
        assert driver.returncode == 0, text[-3000:]
        assert "database is locked" not in text
    return texts


@pytest.mark.slow
def test_two_searches_write_one_sqlite_store_at_once(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    outs = [tmp_path / "a", tmp_path / "b"]
    specs = [write_spec(SPEC.format(name=f"lite{i}", store=url, trials=5, seed=i), name=f"s{i}.yaml") for i in (0, 1)]
    two_searches(specs, outs, tmp_path)
    store = Store(url)
    try:
        runs = [store.get_run(i) for i in (1, 2)]
        assert all(r is not None and r.status == "completed" for r in runs), runs
        assert {r.name for r in runs if r} == {"lite0", "lite1"}
        for record in filter(None, runs):
            trials = store.trials(record.id)
            assert [t.number for t in trials] == list(range(5)) and all(t.status == "completed" for t in trials)
            assert [(s.number, s.step) for s in store.steps(record.id)] == [(n, s) for n in range(5) for s in (1, 2, 3)]
    finally:
        store.close()
