"""Exact resume, end to end (slow: Ray in subprocesses): a driver killed with ``kill -9`` while a trial runs its last
budget step; a second driver on the same run directory meanwhile is refused; the resume runs only the last step.
A search killed twice, then resumed with ``automl resume``, loses and repeats no trial.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl.cli import run as cli
from automl.ray_session import SESSION_FILE, session_processes
from automl.run import Run
from automl.runlock import LOCK_FILE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name: exact
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:stalls_at_last_step", metrics: {{loss: min, cost: min}}, steps: 3}}
searcher: {{name: random}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
  log: {{type: choice, values: ["{log}"]}}
  last: {{type: choice, values: [3]}}
objectives:
  - {{metric: loss, mode: min}}
budget: {{trials: 1}}
seed: 4
"""


#: Sixteen trials of 0.3 s each, one budget step.
SLEEPY = """
trainer:
  name: function
  params: {function: "tests.fixtures.objectives:sleepy", metrics: {loss: min, cost: min}, steps: 1}
space:
  x: {type: float, low: 0, high: 1}
  sleep: {type: choice, values: [0.3]}
objectives:
  - {metric: loss, mode: min}
budget: {trials: 16}
seed: 1
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "automl.cli", *args]


def _completed(out: Path) -> dict[int, Any]:
    try:
        return {t["number"]: t for t in Run.open(out).trials() if t["status"] == "completed"}
    except Exception:  # the store is not there yet
        return {}


def _steps(out: Path) -> list[int]:
    try:
        return [s["step"] for s in Run.open(out).steps(0)]
    except Exception:  # the store is not there yet
        return []


def test_kill_9_in_the_last_step_then_resume_runs_only_that_step_and_one_driver_per_run(
    write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, out = tmp_path / "log", tmp_path / "run"
    log.mkdir()
    spec = write_spec(SPEC.format(log=log))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOML_NUM_CPUS": "2"}
    driver = subprocess.Popen(_cli("search", str(spec), "--out", str(out)), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and driver.poll() is None and not (
                (log / "stalled").exists() and _steps(out) == [1, 2]):
            time.sleep(0.2)
        assert (log / "stalled").exists() and _steps(out) == [1, 2], "the trial never reached its last step"
        # One run directory, one live driver: a second search or a resume exits 2 with one line, touching nothing
        # (called in this process: the lock is refused before anything else, Ray included, starts).
        for args in (("search", str(spec), "--out", str(out)), ("resume", str(out))):
            capsys.readouterr()
            code = cli(list(args))
            err = capsys.readouterr().err
            assert code == 2, err
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and "in use by a running automl driver" in lines[0], err
            assert f"pid {driver.pid} " in err
    finally:
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone, mid-step: the Ray it started is left behind
        driver.wait()
    row = Run.open(out).trials()[0]
    assert row["status"] == "running" and (out / "trials" / "00000" / "checkpoint").is_dir()
    assert (out / LOCK_FILE).is_file()  # the file stays; the dead driver's lock went with it
    session = json.loads((out / SESSION_FILE).read_text())["session_dir"]
    try:
        resumed = subprocess.run(_cli("resume", str(out)), cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=300, start_new_session=True)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # whatever of the first driver's group is left, whatever happened
    assert resumed.returncode == 0, resumed.stderr
    run = Run.open(out)
    row = run.trials()[0]
    assert (row["status"], row["budget"], row["attempts"]) == ("completed", 3, 2)
    assert [s["step"] for s in run.steps(0)] == [1, 2, 3]  # no step recorded twice
    # Steps 1 and 2 ran once: the re-issued trial went on from its checkpoint; only the killed step ran again.
    assert (log / "calls.txt").read_text().split() == ["1", "2", "3", "3"]
    assert not (out / "trials" / "00000" / "checkpoint").exists()  # removed once the end was recorded
    # Nothing of the killed driver's Ray is left: its next driver stopped what was still running.
    assert session_processes(session) == []


def test_kill_9_twice_then_resume_loses_and_repeats_nothing(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path, out = write_spec(SLEEPY), tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kept: dict[int, Any] = {}
    for cycle in range(2):
        args = ["search", str(path), "--out", str(out)] + (["--resume"] if cycle else [])
        proc = subprocess.Popen(_cli(*args), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        target = 3 + 5 * cycle
        deadline = time.time() + 120
        while len(_completed(out)) < target and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done = _completed(out)
        assert len(done) >= target
        for n, t in kept.items():  # nothing completed before a kill is lost or changed
            assert done[n]["finished_at"] == t["finished_at"] and done[n]["config"] == t["config"]
        kept = done
    resumed = subprocess.run(_cli("resume", str(out)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = Run.open(out)
    trials = {t["number"]: t for t in run.trials()}
    assert sorted(trials) == list(range(16))
    assert {t["status"] for t in trials.values()} == {"completed"}
    for n, t in kept.items():
        assert trials[n]["finished_at"] == t["finished_at"]
    assert run.info()["status"] == "completed"
