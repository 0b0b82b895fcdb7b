"""The systems of the tabular comparison, each run in its own process on the same training CSV.

- ``automl``: ``automl search`` (the command, so Ray's start is in the wall time as a user sees it) with
  the sklearn trainer, the default space (``space: auto``) or, with ``--automl-space current``, the space of
  ``searchspaces/tabular-{task}.yaml`` as it is now; searcher and scheduler from the command line;
  objective accuracy (r2); ``budget: {wall_time: B, trials: 100000}``.
- ``previous``: the same command with the spaces of commit 7c38f9c (frozen in ``previous/``): their trainer
  parameters, space and ``data.folds``, searcher ``tpe``, scheduler ``fifo``, objective accuracy (r2), the
  same wall time; their latency objective and constraint dropped, and the engine's later default-on
  features switched off where the spec can (:data:`PREVIOUS_OFF`: the final ensemble selection).
- ``flaml``: ``flaml.AutoML().fit(X, y, task, time_budget=B, seed, n_jobs=2, verbose=0, metric)`` with
  FLAML's defaults otherwise (its own choice of hold-out or cross-validation).
- ``autogluon`` (optional): ``TabularPredictor(...).fit(train, time_limit=B, presets="medium_quality")``;
  reported as "not installed" where ``autogluon.tabular`` is missing.

Test rows are scored here, by one function, from each system's predictions (automl's and the previous
behaviour's: ``automl.load(RUN).model()``, the best trial, which may be the engine's final ensemble);
``flaml`` and ``autogluon`` run in ``python -m benchmarks.tabular.peers SYSTEM JOB.json RESULT.json`` (a fresh process each).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.tabular.datasets import TARGET

__all__ = ["ENSEMBLES", "SYSTEMS", "Job", "engine_spec", "run_system", "score", "space_auto_supported"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SYSTEMS = ("automl", "flaml", "previous", "autogluon")
METRIC = {"classification": "accuracy", "regression": "r2"}
#: Model names of the sklearn trainer's ensembles (the best model "is an ensemble" when it is one of them).
ENSEMBLES = ("voting", "stacking", "bagging", "ensemble")
CPUS = 2


@dataclass
class Job:
    """One (table, seed, system, budget) run: where its rows are and what it may spend."""

    table: str
    task: str
    seed: int
    budget: float
    train_csv: str
    test_csv: str
    work: str
    searcher: str = "tpe"
    scheduler: str = "fifo"
    automl_space: str = "auto"  # "auto", or "current": the space of searchspaces/tabular-{task}.yaml now


def _plain(values: Any) -> pd.Series:
    """Labels as comparable strings: integral numbers without a decimal part (1.0 -> "1")."""
    def one(v: Any) -> str:
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    return pd.Series([one(v) for v in np.asarray(values).ravel()])


def score(task: str, y_true: Any, y_pred: Any) -> float:
    """Test accuracy (classification) or R2 (regression) of predictions."""
    from sklearn.metrics import r2_score

    if len(np.asarray(y_pred).ravel()) != len(np.asarray(y_true)):
        raise ValueError(f"{len(np.asarray(y_pred).ravel())} predictions for {len(np.asarray(y_true))} test rows")
    if task == "regression":
        return float(r2_score(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float).ravel()))
    return float((_plain(y_true).to_numpy() == _plain(y_pred).to_numpy()).mean())


def _read(path: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(path)
    return frame.drop(columns=[TARGET]), frame[TARGET]


def _session_members(sid: int) -> list[int]:
    """Process ids of session ``sid`` (read from /proc; Ray's workers leave their parent's process group
    but not its session)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process of the session ``proc`` leads (it was started with ``start_new_session``).

    The leader itself only while it is not yet reaped; Linux does not give a session's id to a new
    process while the session has members, so the members found are the run's own.
    """
    leader = [proc.pid] if proc.poll() is None else []
    for pid in leader + _session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def _run_process(cmd: list[str], work: Path, timeout: float, env: dict[str, str] | None = None) -> tuple[int, float, str]:
    """Run ``cmd`` in its own process group; (exit code, wall seconds, tail of its stderr). Killed at ``timeout``."""
    err_path = work / "stderr.txt"
    with (work / "stdout.txt").open("w") as out, err_path.open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(proc)
            code = -9
        except BaseException:
            # Ctrl-C or a kill of this harness: its own session would otherwise keep the search running.
            _kill_session(proc)
            raise
        wall = time.perf_counter() - start
        # Whatever the run left behind (a Ray worker outlives its driver for a while) would take CPU from the next.
        _kill_session(proc)
    tail = err_path.read_text(errors="replace")[-1500:] if code else ""
    if code == -9:
        tail = f"killed after {timeout:.0f} s\n{tail}"
    return code, wall, tail


def _timeout(budget: float) -> float:
    return 2 * budget + 300


# -- automl and the previous engine behaviour ---------------------------------------------------


def space_auto_supported(tasks: tuple[str, ...] = ("classification", "regression")) -> str | None:
    """None when this automl plans ``space: auto`` (the sklearn trainer's default space) for ``tasks``; else why not.

    The plan is built on a small table, as ``automl validate`` does: the spec accepting ``auto`` is not
    enough, the trainer must supply the space.
    """
    import automl
    from automl.plugin import AutoMLError

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="automl-tabular-check-") as tmp:
        for task in tasks:
            frame = pd.DataFrame({"x1": rng.normal(size=60), "x2": rng.normal(size=60)})
            frame[TARGET] = np.tile([0, 1, 2], 20) if task == "classification" else rng.normal(size=60)
            frame.to_csv(Path(tmp) / "rows.csv", index=False)
            job = Job("check", task, 0, 60.0, str(Path(tmp) / "rows.csv"), "", tmp)
            path = Path(tmp) / "spec.yaml"
            path.write_text(yaml.safe_dump(engine_spec(job, "automl"), sort_keys=False))
            try:
                automl.validate(path)
            except AutoMLError as exc:
                return f"{task}: {exc}"
            except Exception as exc:  # a plugin failing to plan: the same answer, with what it raised
                return f"{task}: {type(exc).__name__}: {exc}"
    return None


#: Spec sections that turn off, for ``previous``, engine features that arrived after 7c38f9c switched on by
#: default; each applies only where this automl's spec has the field. Add one here when such a feature lands.
PREVIOUS_OFF: dict[str, Any] = {"ensemble": {"enabled": False}}


def previous_switches() -> dict[str, Any]:
    """The entries of :data:`PREVIOUS_OFF` this automl's spec knows."""
    from automl import Spec

    return {k: v for k, v in PREVIOUS_OFF.items() if k in Spec.model_fields}


def engine_spec(job: Job, system: str) -> dict[str, Any]:
    """The spec ``automl search`` runs for ``system`` (``automl`` or ``previous``) on ``job``."""
    metric = METRIC[job.task]
    data: dict[str, Any] = {"csv": str(Path(job.train_csv).resolve()), "target": TARGET, "test": 0}
    spec: dict[str, Any] = {"name": f"{job.table}-{job.seed}-{system}", "task": job.task}
    if system == "previous":
        old = yaml.safe_load((HERE / "previous" / f"tabular-{job.task}.yaml").read_text())
        # The previous engine's default was the validation split (``data.folds: auto`` came later).
        data["folds"] = old["data"].get("folds") or 0
        spec.update(data=data, trainer=old["trainer"], searcher={"name": "tpe"}, scheduler={"name": "fifo"},
                    space=old["space"], **previous_switches())
    else:
        if job.automl_space == "auto":
            space: Any = "auto"
        elif job.automl_space == "current":
            space = yaml.safe_load((ROOT / "searchspaces" / f"tabular-{job.task}.yaml").read_text())["space"]
        else:
            raise ValueError(f"--automl-space is auto or current, not {job.automl_space!r}")
        spec.update(data=data, trainer={"name": "sklearn"}, searcher={"name": job.searcher},
                    scheduler={"name": job.scheduler}, space=space)
    spec.update(objectives=[{"metric": metric, "mode": "max"}],
                budget={"wall_time": float(job.budget), "trials": 100000}, resources={"cpu": 1}, seed=job.seed)
    return spec


def run_engine(job: Job, system: str) -> dict[str, Any]:
    """``automl search`` in a subprocess, then its best model (``automl.load(DIR).model()``) predicts the test rows."""
    import automl

    work = Path(job.work)
    spec_path = work / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(engine_spec(job, system), sort_keys=False))
    exe = Path(sys.executable).parent / "automl"
    cmd = [str(exe) if exe.exists() else (shutil.which("automl") or "automl"), "search", str(spec_path),
           "--out", str(work / "run")]
    # Ray starts its workers at niceness 15 (its `worker_niceness`) so a driver stays responsive; the peers fit in
    # their own process at the harness's niceness. 0 puts both on the same footing when anything else runs.
    env = {**os.environ, "AUTOML_NUM_CPUS": str(CPUS), "RAY_worker_niceness": "0"}
    code, wall, tail = _run_process(cmd, work, _timeout(job.budget), env)
    row: dict[str, Any] = {"wall_s": wall, "fit_s": wall, "exit_code": code}
    if not (work / "run" / "run.json").is_file():
        return {**row, "status": "failed", "error": tail or f"exit {code}, no run directory"}
    result = automl.load(work / "run")
    trials = result.run.trials()
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    row.update(trials=len(trials), trial_status=counts, front_size=len(result.front))
    best = result.best
    if best is not None:
        # The engine's ensemble selection records its ensemble as a trial of config {"ensemble": "3x2 7x1"}.
        model = "ensemble" if "ensemble" in best.config else str(best.config.get("model", "?"))
        row.update(best_model=model, best_is_ensemble=model in ENSEMBLES, best_config=best.config,
                   valid_score=best.metrics.get(METRIC[job.task]))
    try:
        X, y = _read(job.test_csv)
        row.update(status="ok", score=score(job.task, y, result.model().predict(X)))
    except Exception as exc:  # any failure to load or predict is this system's failure on this run
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:1500] + (f"\n{tail}" if tail else ""))
    return row


# -- FLAML and AutoGluon: a worker process each -----------------------------------------------


def run_peer(job: Job, system: str) -> dict[str, Any]:
    """``python -m benchmarks.tabular.peers SYSTEM JOB RESULT`` and the score of its predictions."""
    work = Path(job.work)
    (work / "job.json").write_text(json.dumps(asdict(job)))
    result = work / "result.json"
    cmd = [peer_python(system), "-m", "benchmarks.tabular.peers", system, str(work / "job.json"), str(result)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    code, wall, tail = _run_process(cmd, work, _timeout(job.budget), env)
    if not result.is_file():
        return {"status": "failed", "wall_s": wall, "exit_code": code, "error": tail or f"exit {code}, no result"}
    doc = json.loads(result.read_text())
    predictions = doc.pop("predictions", None)
    row = {"wall_s": wall, "exit_code": code, **doc}
    if row.get("status") == "ok":
        _, y = _read(job.test_csv)
        row["score"] = score(job.task, y, predictions)
    return row


def _flaml(job: Job) -> dict[str, Any]:
    from flaml import AutoML

    X, y = _read(job.train_csv)
    X_test, _ = _read(job.test_csv)
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(X, y, task=job.task, time_budget=job.budget, seed=job.seed, n_jobs=CPUS, verbose=0,
               metric=METRIC[job.task])
    fit_s = time.perf_counter() - start
    best_loss = automl.best_loss
    return {"status": "ok", "fit_s": fit_s, "trials": len(automl.config_history),
            "best_model": str(automl.best_estimator), "best_is_ensemble": False,
            "valid_score": None if best_loss is None else 1.0 - float(best_loss),
            "predictions": np.asarray(automl.predict(X_test)).ravel().tolist()}


def _autogluon(job: Job) -> dict[str, Any]:
    try:
        from autogluon.tabular import TabularPredictor, __version__
    except ImportError:
        return {"status": "not installed", "error": "autogluon.tabular is not installed (pip install autogluon.tabular)"}
    train = pd.read_csv(job.train_csv)
    X_test, _ = _read(job.test_csv)
    start = time.perf_counter()
    # The task is given, not inferred: AutoGluon reads a regression target of few distinct integers as classes.
    problem = "regression" if job.task == "regression" else None
    predictor = TabularPredictor(label=TARGET, problem_type=problem, eval_metric=METRIC[job.task],
                                 path=str(Path(job.work) / "ag"), verbosity=0).fit(train, time_limit=job.budget, presets="medium_quality",
                                                  num_cpus=CPUS)
    fit_s = time.perf_counter() - start
    board = predictor.leaderboard(silent=True)
    return {"status": "ok", "fit_s": fit_s, "trials": len(board), "best_model": str(predictor.model_best),
            "peer_version": f"autogluon.tabular {__version__}",
            "best_is_ensemble": "Ensemble" in str(predictor.model_best),
            "predictions": np.asarray(predictor.predict(X_test)).ravel().tolist()}


#: The interpreter a peer runs in, per system: AutoGluon pins its own numpy/pandas/scikit-learn ranges, so it
#: may live in a virtual environment of its own (``AUTOML_BENCH_AUTOGLUON_PYTHON=/path/to/venv/bin/python``).
PEER_PYTHON_ENV = {"flaml": "AUTOML_BENCH_FLAML_PYTHON", "autogluon": "AUTOML_BENCH_AUTOGLUON_PYTHON"}


def peer_python(system: str) -> str:
    """The Python interpreter that runs ``system``'s peer process (this one unless its variable names another)."""
    return os.environ.get(PEER_PYTHON_ENV.get(system, ""), "") or sys.executable


def autogluon_installed() -> bool:
    """Whether ``autogluon.tabular`` imports in the interpreter the AutoGluon peer runs in."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('autogluon.tabular') is None)"
    try:
        return subprocess.run([peer_python("autogluon"), "-c", probe], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_system(job: Job, system: str) -> dict[str, Any]:
    """Run ``system`` on ``job``; a row of results (``status`` ok, failed or not installed)."""
    Path(job.work).mkdir(parents=True, exist_ok=True)
    if system in ("automl", "previous"):
        return run_engine(job, system)
    if system == "autogluon" and not autogluon_installed():
        return {"status": "not installed", "error": "autogluon.tabular is not installed"}
    if system in ("flaml", "autogluon"):
        return run_peer(job, system)
    raise ValueError(f"unknown system {system!r}; systems: {', '.join(SYSTEMS)}")


def _worker(argv: list[str]) -> int:
    system, job_path, result_path = argv
    job = Job(**json.loads(Path(job_path).read_text()))
    doc = {"flaml": _flaml, "autogluon": _autogluon}[system](job)
    Path(result_path).write_text(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
