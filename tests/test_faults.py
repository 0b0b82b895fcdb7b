"""Faults are data: each way a trial ends badly gets one precise line, without Ray (fast).

The worker's trial function runs in-process with Tune's ``report`` replaced (as in ``test_checkpoint_step``), or
in a child process for the deaths that end a process (``os._exit``, SIGSEGV). The driver's reading of Ray's
texts (:func:`automl.recorder.death_reason`) is checked on the texts Ray 2.60 writes. Also: the run-directory
lock, the idempotent step record, the final stage's skip of a broken model, the CLI's no-usable-trial line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest

from automl import trial_job, trial_worker
from automl.cli import no_usable_trial
from automl.errors import TrialError
from automl.plugin import Trainer
from automl.recorder import death_reason
from automl.runlock import LOCK_FILE, RunLock, RunLocked
from automl.store import Store

ROOT = Path(__file__).resolve().parents[1]


class Steps(Trainer):
    """Three budget steps; reports ``metric`` (``acc`` unless told), checkpoints after each but the last."""

    metric = "loss"

    @property
    def budget_steps(self) -> int:
        return 3

    def fit_step(self, step: int) -> None:
        self.step_ = step
        how = self.params.get("die")
        if how and step == int(self.params.get("at", 1)):
            _die(str(how))

    def evaluate(self, split: Literal["valid", "test"] = "valid") -> dict[str, float]:
        return {} if self.params.get("empty") else {str(self.params.get("metric", "loss")): 1.0 / self.step_}

    def export(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.json").write_text("{}")
        return directory / "model.json"

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        return lambda batch: batch

    def save_checkpoint(self, directory: Path, step: int | None = None) -> bool:
        (directory / "state.json").write_text(json.dumps({"step": step}))
        return True

    def load_checkpoint(self, directory: Path) -> int:
        self.step_ = int(json.loads((directory / "state.json").read_text())["step"])
        return self.step_


def _die(how: str) -> None:
    import ctypes
    import os

    if how == "os_exit":
        os._exit(7)
    if how == "segv":
        ctypes.string_at(0)
    if how == "sys_exit":
        sys.exit(4)
    if how == "sys_exit_0":
        sys.exit(0)
    if how == "kbint":
        raise KeyboardInterrupt
    if how == "empty":
        raise KeyError()


def job(run_dir: Path, report_failures: bool = False, **params: Any) -> trial_job.Job:
    return trial_job.Job(trainer=Steps, params=params, task="regression", seed=0, run_dir=str(run_dir),  # type: ignore[arg-type]
                         measured=False, batch_size=1, warmup=0, repeats=1, cpus=1.0, gpus=0.0, required=("loss",),
                         report_failures=report_failures)


def run(run_dir: Path, monkeypatch: pytest.MonkeyPatch, report_failures: bool = False,
        **params: Any) -> list[dict[str, Any]]:
    """The trial's reports. A failure raises :class:`TrialError` unless ``report_failures``."""
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(trial_worker.tune, "report", lambda metrics: reports.append(dict(metrics)))
    trial_worker.run_trial({trial_job.NUMBER: 0}, None, job(run_dir, report_failures, **params))
    return reports


def failure(run_dir: Path) -> str:
    return (trial_job.trial_dir(run_dir, 0) / trial_job.FAILURE_FILE).read_text()


# -- the worker ------------------------------------------------------------------------------------------


def test_a_trial_that_never_reports_its_objective_fails_with_that_reason(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TrialError, match="objective loss missing"):
        run(tmp_path, monkeypatch, metric="accuracy")
    assert failure(tmp_path) == "objective loss missing: the trainer reported accuracy after budget step 3"
    with pytest.raises(TrialError, match="objective loss missing: the trainer reported nothing"):
        run(tmp_path / "empty", monkeypatch, empty=True)  # evaluate() returned {}
    assert run(tmp_path / "ok", monkeypatch)[-1][trial_job.FINAL] is True


def test_a_worker_whose_stderr_has_no_file_descriptor_runs_its_trials(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import faulthandler
    import io

    faulthandler.enable(file=sys.__stderr__)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # as in a Ray worker: sys.stderr is Ray's own object
    assert run(tmp_path, monkeypatch)[-1][trial_job.FINAL] is True
    assert faulthandler.is_enabled() and not (trial_job.trial_dir(tmp_path, 0) / trial_job.FAULT_FILE).exists()


def test_the_checkpoint_outlives_the_final_report_and_a_reissue_runs_only_the_last_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(tmp_path, monkeypatch)
    assert [r[trial_job.BUDGET] for r in first] == [1, 2, 3]
    checkpoint = trial_job.trial_dir(tmp_path, 0) / trial_job.CHECKPOINT_DIR
    # The driver removes it once it has recorded the end; a driver killed before that re-issues the trial.
    assert json.loads((checkpoint / "state.json").read_text()) == {"step": 2}
    again = run(tmp_path, monkeypatch)
    # Step 2 reported again from the checkpoint (the store keeps one row per step), step 3 run.
    assert [r[trial_job.BUDGET] for r in again] == [2, 3] and again[-1][trial_job.FINAL] is True
    assert again[0]["loss"] == first[1]["loss"]


@pytest.mark.parametrize(("how", "reason"), [
    ("sys_exit", r"the trial's code called sys.exit\(4\) at test_faults.py:\d+ in _die"),
    ("kbint", r"KeyboardInterrupt in the trial's worker \(SIGINT, or raised by the trial's code\) at test_faults.py:\d+ in _die"),
    ("empty", r"KeyError \(no message\) at test_faults.py:\d+ in _die"),
])
def test_python_level_deaths_have_one_precise_line(how: str, reason: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TrialError):
        run(tmp_path, monkeypatch, die=how, at=2)
    assert re.fullmatch(reason, failure(tmp_path)), failure(tmp_path)
    assert (trial_job.trial_dir(tmp_path, 0) / trial_job.TRACEBACK_FILE).read_text().startswith("Traceback")


def test_a_failure_with_no_retry_to_make_is_the_last_report_and_the_worker_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the engine asks when there is no retry to make: the reason is reported, run_trial returns, Tune keeps
    # the worker.
    reports = run(tmp_path, monkeypatch, report_failures=True, die="empty", at=2)
    assert [r[trial_job.BUDGET] for r in reports[:-1]] == [1]
    assert reports[-1] == {trial_job.ERROR: failure(tmp_path)}
    assert re.fullmatch(r"KeyError \(no message\) at test_faults.py:\d+ in _die", failure(tmp_path))
    assert (trial_job.trial_dir(tmp_path, 0) / trial_job.TRACEBACK_FILE).read_text().startswith("Traceback")
    assert run(tmp_path / "missing", monkeypatch, report_failures=True, metric="accuracy")[-1] == {
        trial_job.ERROR: "objective loss missing: the trainer reported accuracy after budget step 3"}
    # An exit asked for by the trial's code still ends the worker, as does what may leave it unusable.
    for how in ("sys_exit", "kbint"):
        with pytest.raises(TrialError):
            run(tmp_path / how, monkeypatch, report_failures=True, die=how, at=1)
    for error in (MemoryError("out of memory"), RuntimeError("CUDA error: device-side assert triggered")):
        def fail(self: Steps, step: int, error: Exception = error) -> None:
            raise error

        monkeypatch.setattr(Steps, "fit_step", fail)
        with pytest.raises(TrialError, match=type(error).__name__):
            run(tmp_path / type(error).__name__, monkeypatch, report_failures=True)


def test_only_schedulers_that_read_a_reported_failure_get_one() -> None:
    from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule

    from automl.engine import _reads_failure_reports
    from automl.interfaces import Objective
    from automl.schedulers import RungScheduler, SynchronousHyperBand

    loss = [Objective("loss", "min")]
    assert _reads_failure_reports(FIFOScheduler()) and _reads_failure_reports(RungScheduler(loss, max_budget=9))
    assert _reads_failure_reports(SynchronousHyperBand(loss, max_budget=9))
    # Ray's median rule keeps every result it is given and reads its budget later: its trials' failures are errors.
    assert not _reads_failure_reports(MedianStoppingRule(time_attr="budget", metric="loss", mode="min"))
    # automl.schedulers keeps its own copies of the reserved result keys (it does not import the trial's job).
    from automl import schedulers

    assert (schedulers.NUMBER, schedulers.FINAL, schedulers.ERROR) == (trial_job.NUMBER, trial_job.FINAL, trial_job.ERROR)


def test_a_long_message_is_cut_with_where_the_whole_one_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def long_error(self: Steps, step: int) -> None:
        raise ValueError("x" * 5000)

    monkeypatch.setattr(Steps, "fit_step", long_error)
    with pytest.raises(TrialError):
        run(tmp_path, monkeypatch)
    reason = failure(tmp_path)
    assert len(reason) <= trial_worker.MAX_REASON and reason.startswith("ValueError: xxx")
    assert reason.endswith("... (in full: trials/00000/traceback.txt)")
    assert "x" * 5000 in (trial_job.trial_dir(tmp_path, 0) / trial_job.TRACEBACK_FILE).read_text()


def test_tunes_own_stop_passes_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as info:  # sys.exit(0) inside tune.report is how Tune stops a trial
        run(tmp_path, monkeypatch, die="sys_exit_0", at=2)
    assert info.value.code == 0 and not (trial_job.trial_dir(tmp_path, 0) / trial_job.FAILURE_FILE).exists()


def _in_child(run_dir: Path, how: str) -> int:
    """The trial in a child process that dies as ``how`` says; its exit status."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from automl import trial_job, trial_worker
        from tests.test_faults import job
        trial_worker.tune.report = lambda metrics: None
        trial_worker.run_trial({{trial_job.NUMBER: 0}}, None, job(Path({str(run_dir)!r}),
                               die={how!r}, at=2))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode


def test_os_exit_and_a_segfault_leave_their_reason_for_the_driver(tmp_path: Path) -> None:
    assert _in_child(tmp_path / "exit", "os_exit") == 7
    assert re.fullmatch(
        r"the trial's code called os._exit\(7\) at test_faults.py:\d+ in _die: its worker exited with code 7",
        failure(tmp_path / "exit"))
    assert _in_child(tmp_path / "segv", "segv") == -signal.SIGSEGV
    fault = (trial_job.trial_dir(tmp_path / "segv", 0) / trial_job.FAULT_FILE).read_text()
    assert fault.startswith("Fatal Python error: Segmentation fault")
    # What the driver makes of it (Ray's own text says the same for every death).
    assert death_reason(RAY_EOF, fault).startswith("killed by SIGSEGV (Segmentation fault) in ")


# -- the driver's reading of Ray's texts -----------------------------------------------------------------

RAY_EOF = (
    "Failure # 1 (occurred at 2026-12-05_11-33-57)\nThe actor died unexpectedly before finishing this task.\n"
    "\tclass_name: ImplicitFunc\n\tactor_id: 6c25\n\tpid: 16872\n\tnamespace: ed4e\n\tip: 192.0.2.2\nThe actor is "
    "dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit detail: Worker "
    "unexpectedly exits with a connection error code 2. End of file. Some common causes include: (1) the process "
    "was killed by the OOM killer due to high memory usage, (2) ray stop --force was called, or (3) the worker "
    "crashed unexpectedly due to SIGSEGV or another unexpected error.\n")
RAY_EXIT = RAY_EOF.replace("Worker unexpectedly exits with a connection error code 2. End of file. Some common causes "
                           "include: (1) the process was killed by the OOM killer due to high memory usage, (2) ray "
                           "stop --force was called, or (3) the worker crashed unexpectedly due to SIGSEGV or another "
                           "unexpected error.", "Worker exits unexpectedly. Worker exits with an exit code 3.")


@pytest.mark.parametrize(("text", "fault", "reason"), [
    (RAY_EOF, "", "its worker (pid 16872) died without a word: killed by SIGKILL (the kernel's OOM killer, or kill "
                  "-9) or exited from native code"),
    (RAY_EXIT, "", "its worker (pid 16872) exited with code 3"),
    (RAY_EXIT.replace("code 3.", "code 1. The process receives a SIGTERM."), "",
     "killed by SIGTERM (its worker (pid 16872) exited with code 1)"),
    (RAY_EOF, 'Fatal Python error: Bus error\n\nCurrent thread 0x1 (most recent call first):\n  File "/x/model.py", '
              "line 12 in predict\n", "killed by SIGBUS (Bus error) in model.py:12 (predict)"),
    ("Failure # 1\nray.exceptions.TaskCancelledError: Task: TaskID(ab) was cancelled.\n", "",
     "cancelled by Ray (TaskCancelledError)"),
])
def test_each_death_reads_as_one_precise_line(text: str, fault: str, reason: str) -> None:
    assert death_reason(text, fault) == reason
    assert len(reason) < 200 < len(RAY_EOF)


# -- the run, the store, the CLI ------------------------------------------------------------------------


def test_no_usable_trial_is_one_line_with_the_reasons_counted() -> None:
    rows = [SimpleNamespace(status="failed", error="objective accuracy missing")] * 3 + [
        SimpleNamespace(status="failed", error="killed by SIGSEGV"), SimpleNamespace(status="failed", error=None),
        SimpleNamespace(status="stopped", error="stopped when the wall-time budget ran out")]
    assert no_usable_trial(rows) == (
        "no usable trial: 5 failed (3 x 'objective accuracy missing', 1 x 'killed by SIGSEGV', 1 x 'no reason "
        "recorded'); 1 stopped (1 x 'stopped when the wall-time budget ran out')")
    assert no_usable_trial([]) == "no usable trial: no trial ran"


def test_a_step_is_recorded_once_per_trial(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    run_id = store.create_run(name="r", directory=str(tmp_path), spec_text="", spec_hash="h", seed=0, objectives={},
                              versions={})
    store.save_trial(run_id, 0, config={"x": 1})
    for step, loss in ((1, 0.5), (2, 0.4), (1, 0.45), (2, 0.41), (3, 0.3)):  # steps 1-2 run again after a crash
        store.add_step(run_id, 0, step, {"loss": loss}, status="completed" if step == 3 else "running")
    assert [(s.step, s.metrics["loss"]) for s in store.steps(run_id, 0)] == [(1, 0.5), (2, 0.4), (3, 0.3)]
    row = store.trial(run_id, 0)
    assert row is not None and (row.status, row.budget, row.metrics) == ("completed", 3, {"loss": 0.3})
    store.close()


def test_one_run_directory_one_live_driver(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run", "search"), pytest.raises(
        RunLocked, match=r"in use by a running automl driver \(pid \d+ on .*automl search since"
    ):
        RunLock(tmp_path / "run", "resume").acquire()
    RunLock(tmp_path / "run").acquire().release()  # released: the next driver gets it
    # A driver killed with SIGKILL holds nothing: the OS drops its lock with the process.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from automl.runlock import RunLock
        lock = RunLock({str(tmp_path / "run")!r}).acquire()  # held while the object lives
        print("locked", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=f"pid {holder.pid} "):
            RunLock(tmp_path / "run").acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(tmp_path / "run", "resume").acquire()
    assert lock.held and f"pid {os.getpid()} " in (tmp_path / "run" / LOCK_FILE).read_text()
    lock.release()


def test_the_final_stage_skips_a_broken_model_and_never_measures_twice(tmp_path: Path) -> None:
    from automl.engine import FINAL_PROTOCOL, _measure_again

    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    run_id = store.create_run(name="r", directory=str(tmp_path), spec_text="", spec_hash="h", seed=0, objectives={},
                              versions={})
    for n in (0, 1):
        store.save_trial(run_id, n, status="completed", config={"n": n}, artifact=str(tmp_path / f"m{n}.json"),
                         metrics={"latency_ms": 5.0}, measured_as={"latency_ms": "in the trial"})
    loaded: list[int] = []

    class Model:
        def __init__(self, n: int) -> None:
            self.n = n

        def load_predictor(self, path: Path) -> Callable[[Any], Any]:
            loaded.append(self.n)
            if self.n == 1:
                raise ValueError("truncated file")
            return lambda batch: batch

        def sample_input(self, batch: int) -> list[int]:
            return [0] * batch

    plan = SimpleNamespace(final_latency=lambda: (1, 0, 3), trial_trainer=lambda n, config, d, data: Model(n))
    run = SimpleNamespace(store=store, run_id=run_id, dir=tmp_path)
    by_number = {t.number: t for t in store.trials(run_id)}
    drift = _measure_again(plan, run, None, by_number, [0, 1])  # type: ignore[arg-type]
    assert drift["skipped"] == {"1": "ValueError: truncated file"}
    first, broken = store.trial(run_id, 0), store.trial(run_id, 1)
    assert first is not None and broken is not None
    assert first.measured_as["latency_ms"].endswith(FINAL_PROTOCOL) and first.metrics["latency_ms_trial"] == 5.0
    assert broken.metrics == {"latency_ms": 5.0}  # its trial's figure kept, the reason beside it
    assert broken.measured_as["latency_ms"] == "measured in the trial only: measuring it again failed: ValueError: truncated file"
    # A resumed final stage (the first killed after trial 0) leaves trial 0's stored figure alone.
    loaded.clear()
    _measure_again(plan, run, None, {t.number: t for t in store.trials(run_id)}, [0, 1])  # type: ignore[arg-type]
    assert loaded == [1] and store.trial(run_id, 0) == first
    store.close()


def test_the_next_driver_stops_only_what_a_killed_driver_of_the_run_left(tmp_path: Path) -> None:
    from automl.ray_session import SESSION_FILE, clean_orphans, record_session

    session = tmp_path / "ray" / "session_2026-12-05_11-38-40_440938_21381"
    (session / "logs").mkdir(parents=True)
    sleep = [sys.executable, "-c", "import sys, time; time.sleep(600)"]
    # A Ray process of that start (named in its command line), one holding a log file there, and a stranger.
    named = subprocess.Popen([*sleep, f"--session-dir={session}"])
    holding = subprocess.Popen(sleep, stdout=open(session / "logs" / "worker.out", "w"))  # noqa: SIM115
    stranger = subprocess.Popen([*sleep, f"--session-dir={session}-other"])
    try:
        record_session(tmp_path, str(session))
        assert clean_orphans(tmp_path) == 0  # its driver (this process) lives: nothing is an orphan
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        (tmp_path / SESSION_FILE).write_text(json.dumps({"driver_pid": dead.pid, "driver_started": "1",
                                                         "session_dir": str(session)}))
        assert clean_orphans(tmp_path, grace=5.0) == 2
        assert named.wait(timeout=10) == -signal.SIGTERM and holding.wait(timeout=10) == -signal.SIGTERM
        assert stranger.poll() is None and not (tmp_path / SESSION_FILE).exists()
        assert clean_orphans(tmp_path) == 0  # nothing recorded any more
    finally:
        for proc in (named, holding, stranger):
            proc.kill()
            proc.wait()


def test_only_the_trainers_own_objective_metrics_are_required_of_it() -> None:
    from automl.engine import _trainer_objectives
    from automl.interfaces import Objective

    plan = SimpleNamespace(
        objectives=[Objective("accuracy", "max"), Objective("latency_ms", "min"), Objective("sparsity", "max"),
                    Objective("accuracy_uncompressed", "max")],
        compressors=[(SimpleNamespace(metrics={"sparsity": "max"}), {})])
    assert _trainer_objectives(plan) == ("accuracy",)  # type: ignore[arg-type]


@pytest.mark.parametrize("debug", [False, True])
def test_tunes_log_goes_to_the_run_directory_and_to_the_console_only_with_debug(tmp_path: Path, debug: bool) -> None:
    import logging

    from automl.engine import SEARCH_LOG, _tune_log

    tune_log = logging.getLogger("ray.tune")
    with _tune_log(tmp_path, debug):
        logging.getLogger("ray.tune.execution.tune_controller").error("Trial task failed for trial run_trial_1")
        assert tune_log.propagate is debug  # on to Ray's console handler (the "ray" logger) only with --debug
    assert "Trial task failed for trial run_trial_1" in (tmp_path / SEARCH_LOG).read_text()
    assert tune_log.propagate and not tune_log.handlers  # as it was


def test_ray_that_cannot_start_is_one_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a loaded machine Ray gives up on its node after 30 s with a bare Exception.
    import ray

    from automl import engine
    from automl.errors import AutoMLError

    def timed_out(**kwargs: Any) -> None:
        raise Exception("The current node timed out during startup. This could happen because some of the raylet "
                        "failed to startup or the GCS has become overloaded.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", timed_out)
    shut: list[bool] = []
    monkeypatch.setattr(ray, "shutdown", lambda: shut.append(True))
    with pytest.raises(AutoMLError, match="cannot start Ray: The current node timed out during startup"):
        engine._start_ray(None)
    assert shut == [True]  # what the failed start left is stopped
