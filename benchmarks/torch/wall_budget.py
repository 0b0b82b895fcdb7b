"""Best accuracy per wall budget on the 28x28 task (issue 18): fifo, ASHA and HyperBand, same searcher and seed.

    flock /work/notes/bench.lock nice -n 0 .venv/bin/python -m benchmarks.torch.wall_budget run --scheduler fifo --seed 0
    .venv/bin/python -m benchmarks.torch.wall_budget report      # Markdown of every kept result

One ``automl search`` per scheduler (the whole engine, its own local Ray): a CNN on mnist5k (2 conv blocks of 8-48
channels, 32-256 units, learning rate, batch size; the space of the compression fronts), 9 epochs as the full
budget, random search with the same seed (so every arm draws the same configurations in the same order), one
objective (validation accuracy), 2 trials of 1 CPU at a time, ``budget.wall_time`` (default 5 minutes).
ASHA: grace 1 epoch, reduction factor 3 (rungs 1, 3, 9); HyperBand: 3 brackets of that ASHA.

The figure is the incumbent a user could take at each moment: the best validation accuracy among the trials
*completed* by then (trained to the end or stopped by their own early stopping, exported and scored), with its
test accuracy, at fixed fractions of the wall budget from the first trial's start. A trial stopped by ASHA at a
rung is not an exportable model of that accuracy, so it does not count; the number of trials started and
completed is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
RAW = ROOT / "benchmarks" / "results" / "torch-wall-budget"
SCHEDULERS: dict[str, dict[str, Any]] = {
    "fifo": {"name": "fifo"},
    "asha": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3}},
    "hyperband": {"name": "hyperband", "options": {"grace_period": 1, "reduction_factor": 3, "brackets": 3}},
}
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def spec(scheduler: str, seed: int, wall_s: int, epochs: int) -> dict[str, Any]:
    """The search spec of one arm."""
    return {
        "name": f"wall-budget-{scheduler}",
        "task": "classification",
        "data": {"dataset": "mnist5k", "validation": 0.2, "test": 0.2},
        "trainer": {"name": "torch", "params": {"epochs": epochs, "optimizer": "adamw", "schedule": "cosine",
                                                "input_shape": [1, 28, 28], "network": "cnn", "conv_layers": 2}},
        "searcher": {"name": "random"},
        "scheduler": SCHEDULERS[scheduler],
        "space": {
            "lr": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
            "batch_size": {"type": "int", "low": 32, "high": 256, "log": True},
            "channels": {"type": "int", "low": 8, "high": 48, "log": True},
            "units": {"type": "int", "low": 32, "high": 256, "log": True},
        },
        "objectives": [{"metric": "accuracy", "mode": "max"}],
        "budget": {"wall_time": f"{wall_s}s", "trials": 1000},
        "resources": {"cpu": 1},
        "seed": seed,
    }


def incumbents(trials: list[Any], wall_s: float) -> dict[str, Any]:
    """Best completed trial at each fraction of the wall budget (from the first trial's start)."""
    started = [t.started_at for t in trials if t.started_at is not None]
    if not started:
        return {"points": [], "started": 0, "completed": 0}
    origin = min(started)
    done = sorted((t for t in trials if t.status == "completed" and t.finished_at is not None
                   and "accuracy" in t.metrics), key=lambda t: t.finished_at)
    points = []
    for fraction in FRACTIONS:
        limit = origin + fraction * wall_s
        seen = [t for t in done if t.finished_at <= limit]
        best = max(seen, key=lambda t: (t.metrics["accuracy"], -t.number), default=None)
        points.append({"fraction": fraction, "seconds": fraction * wall_s, "completed": len(seen),
                       "best": None if best is None else {
                           "number": best.number, "accuracy": best.metrics["accuracy"],
                           "test_accuracy": best.metrics.get("test_accuracy"), "budget": best.budget,
                           "config": best.config}})
    return {"points": points, "started": len(trials), "completed": len(done),
            "stopped": sum(t.status == "stopped" for t in trials), "failed": sum(t.status == "failed" for t in trials)}


def run(scheduler: str, seed: int, wall_s: int, epochs: int) -> dict[str, Any]:
    from automl.plugin import Run
    from benchmarks.torch.r3 import environment

    RAW.mkdir(parents=True, exist_ok=True)
    out = RAW / f"run-{scheduler}-{seed}"
    if out.exists():
        raise SystemExit(f"{out} exists: remove it to run this arm again")
    path = RAW / f"spec-{scheduler}-{seed}.yaml"
    path.write_text(yaml.safe_dump(spec(scheduler, seed, wall_s, epochs), sort_keys=False))
    load_before = os.getloadavg()
    begin = time.time()
    done = subprocess.run([sys.executable, "-m", "automl.cli", "search", str(path), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - begin
    if done.returncode != 0:
        raise SystemExit(f"search failed ({done.returncode}): {done.stderr[-2000:]}")
    result = {"kind": "wall-budget", "scheduler": scheduler, "seed": seed, "wall_budget_s": wall_s, "epochs": epochs,
              "process_wall_s": wall, **incumbents(Run.open(out).trials(), wall_s),
              "load_before_after": [list(load_before), list(os.getloadavg())], "environment": environment()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"wall-budget-{scheduler}-{seed}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def report() -> str:
    """A Markdown table of every kept result: best validation (test) accuracy at each fraction of the budget."""
    docs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("wall-budget-*.json"))]
    if not docs:
        return "no results"
    head = "| scheduler | seed | " + " | ".join(f"{int(f * docs[0]['wall_budget_s'])} s" for f in FRACTIONS) + \
        " | trials started / completed / stopped | load before, after | commit |"
    lines = [head, "|" + "---|" * (len(FRACTIONS) + 5)]
    for d in sorted(docs, key=lambda d: (d["seed"], list(SCHEDULERS).index(d["scheduler"]))):
        cells = []
        for p in d["points"]:
            b = p["best"]
            cells.append("-" if b is None else f"{b['accuracy']:.3f} ({b['test_accuracy']:.3f}), #{b['number']}")
        load = d["load_before_after"]
        lines.append(f"| {d['scheduler']} | {d['seed']} | " + " | ".join(cells) +
                     f" | {d['started']} / {d['completed']} / {d.get('stopped', 0)} | {load[0][0]:.1f}, {load[1][0]:.1f} "
                     f"| {d['environment']['commit']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="one arm: a search under the wall budget, then its incumbents")
    r.add_argument("--scheduler", choices=list(SCHEDULERS), required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--wall", type=int, default=300, help="wall budget in seconds")
    r.add_argument("--epochs", type=int, default=9, help="the full budget of a trial")
    sub.add_parser("report", help="print the table of every kept result")
    args = parser.parse_args(argv)
    if args.command == "run":
        result = run(args.scheduler, args.seed, args.wall, args.epochs)
        print(json.dumps({k: result[k] for k in ("scheduler", "started", "completed", "stopped")}))
    print(report())


if __name__ == "__main__":
    main()
