"""The loop trainer (``trainer: {name: loop}``): the user's function runs once and reports from inside its loop
(:mod:`automl.loop`). Driven here as the trial worker drives any trainer (run_steps, checkpoints after each step but
the last, a restart from the checkpoint), without Ray; the slow tests run it in real searches."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import automl
from automl.builtin.loop_trainer import LoopTrainer
from automl.errors import TrialError
from automl.interfaces import TrialContext
from automl.loop import read_state, write_state
from automl.trial_job import CHECKPOINT_DIR
from automl.trial_worker import _save_checkpoint


def _trainer(tmp_path: Path, function: str, config: dict[str, Any], steps: int = 6) -> LoopTrainer:
    context = TrialContext("regression", 0, None, tmp_path, 1.0, 0.0)  # type: ignore[arg-type]
    return LoopTrainer(config, {"function": f"tests.fixtures.loops:{function}", "metrics": {"loss": "min"},
                                "steps": steps}, context)


def _drive(trainer: LoopTrainer, directory: Path, stop_after: int | None = None) -> list[int]:
    """What trial_worker._fit does: restore, run the steps, checkpoint each but the last; close on a stop."""
    checkpoint = directory / CHECKPOINT_DIR
    start = trainer.load_checkpoint(checkpoint) + 1 if checkpoint.is_dir() else 1
    seen = []
    steps = trainer.run_steps(start)
    try:
        for step in steps:
            seen.append(step)
            if step < trainer.budget_steps:
                _save_checkpoint(trainer, checkpoint, step)
            if step == stop_after:
                break
    finally:
        steps.close()  # as the worker does when Tune stops the trial inside tune.report
    return seen


def test_the_loop_runs_once_and_each_report_is_a_step(tmp_path: Path) -> None:
    log = tmp_path / "log"
    trainer = _trainer(tmp_path, "descend", {"lr": 0.1, "log": str(log)})
    assert _drive(trainer, tmp_path) == [1, 2, 3, 4, 5, 6]
    assert log.read_text().split() == ["1", "2", "3", "4", "5", "6"]
    w = np.zeros(2)
    for _ in range(6):
        w = w - 0.1 * 2 * (w - 3.0)
    assert trainer.evaluate() == {"loss": pytest.approx(float(np.mean((w - 3.0) ** 2)))}
    assert automl.loop._current is None  # the session ends with the trial


def test_a_stopped_loop_returns_and_a_restart_goes_on_from_its_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "log"
    first = _trainer(tmp_path, "descend", {"lr": 0.1, "log": str(log)})
    assert _drive(first, tmp_path, stop_after=3) == [1, 2, 3]
    assert log.read_text().split() == ["1", "2", "3"]  # should_stop() was True: epoch 4 never ran
    assert not [t for t in threading.enumerate() if t.name == "automl-loop"]
    again = _trainer(tmp_path, "descend", {"lr": 0.1, "log": str(log)})
    assert _drive(again, tmp_path) == [4, 5, 6]
    assert log.read_text().split() == ["1", "2", "3", "4", "5", "6"]  # no epoch twice
    whole = _trainer(tmp_path / "other", "descend", {"lr": 0.1})
    (tmp_path / "other").mkdir()
    _drive(whole, tmp_path / "other")
    assert again.evaluate() == whole.evaluate()  # the restart is exact


def test_a_loop_that_ignores_the_stop_is_ended_by_its_next_report(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "ignores_stop", {}, steps=50)
    assert _drive(trainer, tmp_path, stop_after=2) == [1, 2]
    assert not [t for t in threading.enumerate() if t.name == "automl-loop"]


@pytest.mark.parametrize(("function", "message"), [
    ("raises_at_2", "diverged at epoch 2"),
    ("goes_backwards", "automl.report(step 1) after step 2"),
    ("never_reports", "returned without calling automl.report"),
])
def test_a_broken_loop_fails_its_trial_with_the_reason(tmp_path: Path, function: str, message: str) -> None:
    trainer = _trainer(tmp_path, function, {})
    with pytest.raises((TrialError, RuntimeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        _drive(trainer, tmp_path)


def test_a_step_beyond_params_steps_is_refused(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, "ignores_stop", {}, steps=3)
    with pytest.raises(TrialError, match=r"step 4\) is beyond params.steps \(3\)"):
        _drive(trainer, tmp_path)


def test_a_path_checkpoint_is_copied_and_given_back(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    first = _trainer(tmp_path, "saves_a_file", {"dir": str(work)}, steps=3)
    assert _drive(first, tmp_path, stop_after=2) == [1, 2]
    (work / "epoch.txt").write_text("99")  # the loop's own file changes; the checkpoint's copy does not
    again = _trainer(tmp_path, "saves_a_file", {"dir": str(work)}, steps=3)
    assert _drive(again, tmp_path) == [3]


def test_outside_a_search_every_call_is_a_no_op() -> None:
    assert automl.report(1, {"loss": 0.5}) is None
    assert automl.should_stop() is False
    automl.save_checkpoint({"w": 1})
    assert automl.load_checkpoint() is None


def test_states_are_written_without_pickle_and_read_back(tmp_path: Path) -> None:
    import torch

    state = {"epoch": 3, "w": np.arange(4.0), "nested": {"t": torch.ones(2), "xs": [1, 2.5, "a"]}}
    write_state(state, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "state.pt"]
    back = read_state(tmp_path)
    assert back["epoch"] == 3 and np.array_equal(back["w"], np.arange(4.0))
    assert torch.equal(back["nested"]["t"], torch.ones(2)) and back["nested"]["xs"] == [1, 2.5, "a"]
    plain = tmp_path / "plain"
    plain.mkdir()
    write_state({"epoch": 1, "w": [0.5]}, plain)
    assert json.loads((plain / "state.json").read_text()) == {"epoch": 1, "w": [0.5]}
    with pytest.raises(TypeError, match=r"object at state\['model'\] cannot be saved safely"):
        write_state({"model": object()}, tmp_path / "x")


def test_report_checks_its_arguments(tmp_path: Path) -> None:
    from automl.loop import LoopSession

    session = LoopSession()
    with pytest.raises(TypeError, match="step must be an int"):
        session.report(1.5, {"loss": 1.0})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metric 'loss' must be a number"):
        session.report(1, {"loss": "low"})


def test_should_stop_turns_true_when_another_step_would_end_after_the_deadline() -> None:
    """The wall-time deadline (the worker ends the trial there): the loop is told to return while one more step,
    as long as the longest so far, still ends before it. A fake clock the engine's side moves between steps."""
    from automl.loop import LoopSession
    from tests.fixtures.loops import descend

    now = [0.0]
    session = LoopSession(deadline=100.0, clock=lambda: now[0])
    thread = threading.Thread(target=session.run, args=(descend, {"lr": 0.1}))
    thread.start()
    seen = []
    # Steps end at 10, 20, 50, 75: after 50 the longest step is 30 (50 + 30 < 100: go on); after 75, 75 + 30 >= 100.
    for at in (10.0, 20.0, 50.0, 75.0, 90.0, 95.0):
        item = session.next_report()
        if item is None:
            break
        seen.append(item[0])
        now[0] = at
        session.resume()
    thread.join(10)
    assert seen == [1, 2, 3, 4] and session.finished and session.error is None
    assert session.deadline_near() and not session.stopped  # the loop returned by itself, told by should_stop


def test_a_loop_trainer_sees_the_searchs_deadline_through_its_context(tmp_path: Path, write_spec: Callable[..., Path]
                                                                      ) -> None:
    import time

    job = automl.validate(_loop_spec(write_spec, "{name: fifo}")).job(tmp_path, deadline=1234.5)
    assert job.context(2, None).deadline == 1234.5  # what the worker hands the trainer
    for deadline, steps in ((time.time() + 3600, [1, 2, 3, 4, 5, 6]), (time.time() - 1, [1])):
        (tmp_path / str(steps[-1])).mkdir()
        context = TrialContext("regression", 0, None, tmp_path, 1.0, 0.0, deadline)  # type: ignore[arg-type]
        trainer = LoopTrainer({"lr": 0.1}, {"function": "tests.fixtures.loops:descend", "metrics": {"loss": "min"},
                                            "steps": 6}, context)
        assert _drive(trainer, tmp_path / str(steps[-1])) == steps
        assert trainer.step_ == steps[-1] and trainer.exported()["step"] == steps[-1]  # it completes with what it has


def _loop_spec(write_spec: Callable[..., Path], scheduler: str, extra: str = "") -> Path:
    return write_spec(f"""
name: loop
trainer:
  name: loop
  params: {{function: "tests.fixtures.loops:descend", metrics: {{loss: min}}, steps: 6}}
searcher: {{name: random}}
scheduler: {scheduler}
space:
  lr: {{type: float, low: 0.001, high: 0.4, log: true}}
objectives: [{{metric: loss, mode: min}}]
budget: {{trials: 6}}
seed: 3
{extra}""")


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["{name: fifo}", "{name: asha, options: {grace_period: 1, reduction_factor: 2}}",
                                       "{name: hyperband, options: {type: promotion}}"])
def test_every_scheduler_runs_the_loop(write_spec: Callable[..., Path], tmp_path: Path, ray_session: Any,
                                       scheduler: str) -> None:
    run = automl.search(_loop_spec(write_spec, scheduler), out=tmp_path / "run")
    rows = run.trials()
    assert len(rows) == 6 and all(r.status in ("completed", "stopped") for r in rows), [(r.status, r.error) for r in rows]
    for row in rows:
        steps = [s.step for s in run.steps(row.number)]
        assert steps == list(range(1, len(steps) + 1))  # each step once, in order (a promoted one goes on)
        if row.status == "completed":
            assert row.budget == 6 and row.metrics["loss"] >= 0
    if "fifo" in scheduler:
        assert all(r.status == "completed" for r in rows)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "loop.md"


def _docs_example(tmp_path: Path) -> Path:
    """docs/loop.md's example written out: ``my_loop.py`` and ``loop.yaml`` side by side; returns the spec."""
    text = DOCS.read_text()
    for name in ("my_loop.py", "loop.yaml"):
        block = re.search(rf'```\w+ title="{re.escape(name)}"\n(.*?)```', text, re.S)
        assert block, f"docs/loop.md has no {name} block"
        (tmp_path / name).write_text(block.group(1))
    return tmp_path / "loop.yaml"


def test_the_docs_example_runs_under_plain_python(tmp_path: Path) -> None:
    import subprocess
    import sys

    _docs_example(tmp_path)
    done = subprocess.run([sys.executable, "my_loop.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_the_docs_example_searches_with_asha_and_pbt(tmp_path: Path) -> None:
    spec = _docs_example(tmp_path)
    text = spec.read_text().replace("budget: {trials: 12}", "budget: {trials: 4}")
    for scheduler in ("{name: asha, options: {grace_period: 2, reduction_factor: 3}}",
                      "{name: pbt, options: {interval: 4, mutate: [lr]}}"):
        name = "pbt" if "pbt" in scheduler else "asha"
        spec.write_text(re.sub(r"scheduler: .*", f"scheduler: {scheduler}", text))
        run = automl.search(spec, out=tmp_path / name)
        rows = run.trials()
        assert len(rows) == 4 and all(r.status in ("completed", "stopped") for r in rows), [r.error for r in rows]
        assert any(r.status == "completed" and r.budget == 20 for r in rows)
        assert all(s.metrics["loss"] >= 0 for s in run.steps())


@pytest.mark.slow
def test_kill_9_mid_loop_then_resume_goes_on_from_the_loops_checkpoint(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from automl.run import Run

    root = Path(__file__).resolve().parents[1]
    log, out = tmp_path / "log", tmp_path / "run"
    log.mkdir()
    spec = write_spec(f"""
trainer:
  name: loop
  params: {{function: "tests.fixtures.loops:stalls_in_epoch_3", metrics: {{loss: min}}, steps: 4}}
searcher: {{name: random}}
space:
  log: {{type: choice, values: ["{log}"]}}
objectives: [{{metric: loss, mode: min}}]
budget: {{trials: 1}}
""")
    env = {**os.environ, "PYTHONPATH": str(root), "AUTOML_NUM_CPUS": "2"}
    cli = [sys.executable, "-m", "automl.cli"]
    driver = subprocess.Popen([*cli, "search", str(spec), "--out", str(out)], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and driver.poll() is None and not (log / "stalled").exists():
            time.sleep(0.2)
        assert (log / "stalled").exists(), "the loop never reached epoch 3"
        time.sleep(1.0)  # epoch 2's report is recorded before epoch 3 starts; let the store have it
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    try:
        resumed = subprocess.run([*cli, "resume", str(out)], cwd=root, env=env, capture_output=True, text=True,
                                 timeout=300, start_new_session=True)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert resumed.returncode == 0, resumed.stderr
    run = Run.open(out)
    assert run.trials()[0].status == "completed"
    assert [s.step for s in run.steps(0)] == [1, 2, 3, 4]
    # Epochs 1 and 2 ran once: the restarted loop loaded its checkpoint of epoch 2 and began at 3.
    assert (log / "epochs.txt").read_text().split() == ["1", "2", "3", "3", "4"]
