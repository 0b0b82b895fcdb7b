"""Running a suite: every (task, seed, method) once, each result appended to the store as it ends."""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from automl_bench.base import Trace
from automl_bench.local_ray import ensure_ray
from automl_bench.methods import RayTunePeer
from automl_bench.scoring import log10_regret, run_figures
from automl_bench.store import HpoStore, environment_record, git_commit, today
from automl_bench.suite import MethodEntry, Suite, TaskEntry

__all__ = ["RunSummary", "run_suite"]

log = logging.getLogger("automl_bench")


@dataclass
class RunSummary:
    """What :func:`run_suite` did."""

    stored: int = 0
    skipped: int = 0
    crashed: int = 0
    wall_s: float = 0.0


def _describe(row: dict[str, Any]) -> str:
    if row["regret"] is not None:
        figure = f"log10 regret {log10_regret(row['regret']):6.2f}"
    elif row["hv_regret"] is not None:
        figure = f"hv regret {row['hv_regret']:.4f}"
    else:
        figure = f"best {row['final_value']:.4f}" if row["final_value"] is not None else "no result"
    overhead = f"{row['overhead_s'] * 1000:8.2f} ms/suggestion" if row["overhead_s"] is not None else ""
    crash = f"  CRASHED: {row['error'][:120]}" if row["error"] else ""
    return f"{figure}  {overhead}  {row['wall_s']:6.1f} s{crash}"


def run_one(task: TaskEntry, method: MethodEntry, seed: int, suite: Suite) -> tuple[Trace, str | None]:
    """Run one method on one task; a library error ends the run, and is returned with what it reached."""
    trace = Trace()
    error = None
    t0 = time.perf_counter()
    try:
        method.method.run(task.problem, iterations=suite.iterations, batch=suite.batch, seed=seed, trace=trace)
    except Exception as exc:  # a library's crash is a result to record, not the end of the suite
        error = f"{type(exc).__name__}: {exc}"[:2000]
        trace.wall_s = time.perf_counter() - t0
        # nevergrad's recast optimizers run a thread that stops only when the optimizer is
        # collected; dropping the traceback's frames lets it go (else the process never exits).
        del exc
        gc.collect()
    return trace, error


def run_suite(
    suite: Suite,
    store: HpoStore,
    *,
    command: str = "",
    echo: Callable[[str], None] = print,
    rerun: bool = False,
) -> RunSummary:
    """Run every (task, seed, method) of ``suite`` not yet stored today.

    Rows are appended as runs end, so an interrupted suite keeps what it did and a second
    invocation continues where it stopped. With ``rerun``, runs stored today at another
    commit run again (a new row beside the old one).
    """
    summary = RunSummary()
    t_start = time.perf_counter()
    env_id: int | None = None
    date = today()
    ray_started = False
    try:
        for task, method, seed in suite.runs():
            # HEAD may move while a long suite runs (others commit): each row takes the commit it ran at.
            commit, _ = git_commit()
            key = {"date": date, "commit": commit, "suite": suite.name, "suite_version": suite.version,
                   "task": task.label, "seed": seed, "method": method.label, "budget": suite.evaluations}
            if store.has_result(key, ignore=() if rerun else ("commit",)):
                summary.skipped += 1
                continue
            if env_id is None:
                env_id = store.add_environment(environment_record(command or " ".join(sys.argv)))
            if (isinstance(method.method, RayTunePeer) or getattr(method.method, "needs_ray", False)) and not ray_started:
                ray_started = ensure_ray()
            trace, error = run_one(task, method, seed, suite)
            row = {
                **key,
                "created_at": time.time(),
                "batch": suite.batch,
                "env_id": env_id,
                "method_name": method.name,
                "method_options": method.options,
                "method_version": method.method.version(),
                "peer_of": method.peer_of,
                "task_info": {"name": task.name, "options": task.options, **task.problem.describe()},
                "n_objectives": task.problem.n_objectives,
                "evaluations": len(trace.losses),
                # An engine task's evaluations are the trials that completed within the cost budget: fewer
                # is what early stopping does, not a failure.
                "failures": trace.failures + (0 if getattr(task.problem, "engine", False)
                                              else max(0, suite.evaluations - len(trace.losses))),
                **run_figures(task.problem, trace, suite.batch),
                "overhead_s": trace.overhead_s,
                "wall_s": trace.wall_s,
                "eval_s": trace.eval_s,
                "error": error,
                "eval_errors": trace.errors or None,
                "extra": trace.extra,
            }
            store.add_result(row)
            summary.stored += 1
            summary.crashed += error is not None
            echo(f"{task.label:28s} seed {seed:2d}  {method.label:26s} {_describe(row)}")
    finally:
        if ray_started:
            import ray

            ray.shutdown()
        summary.wall_s = time.perf_counter() - t_start
    return summary
