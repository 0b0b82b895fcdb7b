"""``kill -9`` a search's driver at random moments, resume each time, then count trials lost or steps repeated.

    python -m benchmarks.reliability.kill_loop OUT_DIR [--kills 15] [--seed 0] [--trials 16] [--driver-only]

A ``function`` search of ``--trials`` trials x 3 budget steps of one second each runs under ``automl search``;
after the first step recorded in each start and a random 0-8 s more, its process group (or, with
``--driver-only``, the driver alone: what its Ray leaves is the next start's to clean up) gets SIGKILL, and
``automl resume`` starts it again, until ``--kills`` kills; the last start runs to the end. Every call of the
objective is logged (``calls.txt``), so the figures count what ran, not only what the store says:
completed trials lost or changed, duplicate step rows, recorded steps that ran again, steps that ran but were
never recorded. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
name: kills
trainer:
  name: function
  params: {{function: "benchmarks.reliability.objectives:logged_steps", metrics: {{loss: min, cost: min}}, steps: 3}}
searcher: {{name: random}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
  log: {{type: choice, values: ["{log}"]}}
  sleep: {{type: choice, values: [1.0]}}
objectives:
  - {{metric: loss, mode: min}}
budget: {{trials: {trials}}}
seed: {seed}
"""


def _rows(run: Path) -> tuple[dict[int, tuple[str, Any, Any]], list[tuple[int, int]]]:
    """(trials by number: status, finished_at, metrics; steps as (number, step)) read from the run's store."""
    try:
        with sqlite3.connect(run / "automl.db") as db:
            trials = {n: (s, f, m) for n, s, f, m in db.execute("select number, status, finished_at, metrics from trials")}
            steps = [(int(n), int(s)) for n, s in db.execute("select number, step from steps")]
        return trials, steps
    except sqlite3.Error:
        return {}, []  # not made yet


def run(out: Path, kills: int, seed: int, trials: int, driver_only: bool) -> dict[str, Any]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    log, spec, run_dir = out / "calls.txt", out / "spec.yaml", out / "run"
    spec.write_text(SPEC.format(log=log, trials=trials, seed=seed))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    snapshots: list[tuple[int, set[tuple[int, int]]]] = []  # (log lines at the kill, steps recorded at the kill)
    completed_at_kill: dict[int, tuple[Any, Any]] = {}
    events: list[dict[str, Any]] = []
    for k in range(kills + 1):
        args = ["search", str(spec), "--out", str(run_dir)] if k == 0 else ["resume", str(run_dir)]
        start = time.time()
        with (out / f"stderr-{k}.txt").open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "automl.cli", *args], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        if k == kills:
            proc.wait(timeout=900)
            events.append({"start": k, "exit": proc.returncode, "s": round(time.time() - start, 1)})
            break
        base = len(_rows(run_dir)[1])
        while proc.poll() is None and len(_rows(run_dir)[1]) <= base and time.time() - start < 300:
            time.sleep(0.2)  # the first step recorded in this start
        time.sleep(rng.uniform(0.0, 8.0))
        if proc.poll() is not None:
            events.append({"start": k, "exit": proc.returncode, "finished_before_kill": True})
            break
        if driver_only:
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rows, steps = _rows(run_dir)
        snapshots.append((len(log.read_text().splitlines()) if log.exists() else 0, set(steps)))
        for n, (status, finished, metrics) in rows.items():
            if status == "completed":
                completed_at_kill.setdefault(n, (finished, metrics))
        events.append({"start": k, "killed_after_s": round(time.time() - start, 1),
                       "completed": sum(v[0] == "completed" for v in rows.values()), "steps": len(steps)})
    return _figures(out, run_dir, events, snapshots, completed_at_kill, driver_only)


def _figures(out: Path, run_dir: Path, events: list[dict[str, Any]], snapshots: list[tuple[int, set[tuple[int, int]]]],
             completed_at_kill: dict[int, tuple[Any, Any]], driver_only: bool) -> dict[str, Any]:
    rows, steps = _rows(run_dir)
    lost = [n for n, (finished, metrics) in completed_at_kill.items()
            if n not in rows or rows[n][1] != finished or rows[n][2] != metrics]
    with sqlite3.connect(run_dir / "automl.db") as db:
        by_x = {f"{json.loads(c)['x']:.12f}": int(n) for n, c in db.execute("select number, config from trials")}
    calls: list[tuple[int | None, int]] = []
    for line in (out / "calls.txt").read_text().splitlines():
        if line.strip():
            x, budget = line.split()
            calls.append((by_x.get(x), int(budget)))
    counts = collections.Counter(calls)
    again = sorted({key for offset, recorded in snapshots for key in calls[offset:] if key in recorded})
    return {"mode": "driver only" if driver_only else "process group",
            "kills": sum("killed_after_s" in e for e in events), "events": events,
            "final_statuses": collections.Counter(v[0] for v in rows.values()), "trials": len(rows),
            "completed_before_a_kill": len(completed_at_kill), "completed_lost_or_changed": lost,
            "duplicate_step_rows": sum(c - 1 for c in collections.Counter(steps).values() if c > 1),
            "recorded_steps_run_again": again,
            "unrecorded_steps_run_again": sum(c - 1 for c in counts.values() if c > 1) - len(again),
            "steps_run_never_recorded": sorted(set(calls) - set(steps), key=str)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kills", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--driver-only", action="store_true", help="SIGKILL the driver alone, not its process group")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.out, args.kills, args.seed, args.trials, args.driver_only), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
