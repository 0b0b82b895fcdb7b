"""Scheduling figures (issue 5): what early stopping buys, and the engine's own costs.

    .venv/bin/python -m benchmarks.scheduling.run s2 --seeds 5          # regret vs cumulative budget
    .venv/bin/python -m benchmarks.scheduling.run speedup --spec searchspaces/torch-mlp-digits.yaml --target 0.97
    .venv/bin/python -m benchmarks.scheduling.run hv --seeds 3          # MO-ASHA vs ASHA, hypervolume per CPU-second
    .venv/bin/python -m benchmarks.scheduling.run cpu --spec searchspaces/quickstart.yaml

All searches go through ``automl.search`` (the whole engine on one local Ray); figures are printed
as Markdown and, with ``--json FILE``, written as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scheduling.problems import BRANIN_MIN, HARTMANN3_MIN, STEPS

S2_SPEC = """
name: s2-{problem}
trainer:
  name: function
  params: {{function: "benchmarks.scheduling.problems:{function}", metrics: {metrics}, steps: {steps}}}
space:
{space}
objectives:
{objectives}
scheduler: {scheduler}
budget: {{trials: {trials}}}
seed: {seed}
"""

PROBLEMS = {
    "branin": ("augmented_branin", 2, BRANIN_MIN),
    "hartmann3": ("mf_hartmann3", 3, HARTMANN3_MIN),
}


def _scheduler(name: str) -> str:
    if name == "fifo":
        return "{name: fifo}"
    return f"{{name: {name}, options: {{grace_period: 1, reduction_factor: 3}}}}"


def _space(n: int) -> str:
    return "\n".join(f"  x{i}: {{type: float, low: 0, high: 1}}" for i in range(1, n + 1))


def _search(text: str, work: Path) -> Any:
    import automl

    path = work / f"spec-{time.time_ns()}.yaml"
    path.write_text(text)
    return automl.search(path, out=work / f"run-{time.time_ns()}")


def regret_curve(run: Any, optimum: float, budgets: Sequence[int]) -> list[float]:
    """Simple regret (best full-budget loss - optimum) after each cumulative number of budget steps."""
    steps = sorted(run.steps(), key=lambda r: r["at"])
    best = float("inf")
    out, i = [], 0
    for spent, row in enumerate(steps, start=1):
        if row["step"] == STEPS:
            best = min(best, float(row["metrics"]["loss"]))
        while i < len(budgets) and spent >= budgets[i]:
            out.append(best - optimum)
            i += 1
    while len(out) < len(budgets):
        out.append(best - optimum)
    return out


def s2(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    budgets = [STEPS * k for k in (5, 10, 20)]
    figures: dict[str, Any] = {"budgets_steps": budgets}
    for problem, (function, dims, optimum) in PROBLEMS.items():
        for scheduler in ("fifo", "asha", "moasha"):
            # fifo needs STEPS steps per trial: give every scheduler enough trials to spend the largest budget.
            trials = budgets[-1] // STEPS if scheduler == "fifo" else budgets[-1] // 3
            curves = []
            for seed in range(args.seeds):
                text = S2_SPEC.format(problem=problem, scheduler=_scheduler(scheduler), function=function, metrics="{loss: min}",
                                      steps=STEPS, space=_space(dims), objectives="  - {metric: loss, mode: min}",
                                      trials=trials, seed=seed)
                curves.append(regret_curve(_search(text, work), optimum, budgets))
            arr = np.log10(np.maximum(np.asarray(curves), 1e-12))
            figures[f"{problem}/{scheduler}"] = {
                "median_log10_regret": np.median(arr, axis=0).round(3).tolist(),
                "iqr": (np.percentile(arr, 75, axis=0) - np.percentile(arr, 25, axis=0)).round(3).tolist(),
            }
            print(problem, scheduler, figures[f"{problem}/{scheduler}"], flush=True)
    return figures


def _time_to_target(run: Any, target: float, metric: str) -> float | None:
    info = run.info()
    hits = [t["finished_at"] for t in run.trials()
            if t["status"] == "completed" and (t["metrics"] or {}).get(metric, -1) >= target]
    return (min(hits) - info["created_at"]) if hits else None


def speedup(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Time-to-target of full-budget random search vs the same searcher with ASHA, per seed."""
    import yaml

    base = yaml.safe_load(Path(args.spec).read_text())
    metric = base["objectives"][0]["metric"]
    results: dict[str, list[float | None]] = {"fifo": [], "asha": []}
    for seed in range(args.seeds):
        for scheduler in ("fifo", "asha"):
            spec = dict(base, seed=seed, name=f"speedup-{scheduler}")
            spec["scheduler"] = {"name": scheduler} if scheduler == "fifo" else {
                "name": "asha", "options": {"grace_period": 1, "reduction_factor": 3}}
            spec["budget"] = {"trials": args.trials, "wall_time": args.wall}
            if "data" in spec and "csv" in spec["data"]:
                spec["data"]["csv"] = str((Path(args.spec).parent / spec["data"]["csv"]).resolve())
            run = _search(yaml.safe_dump(spec), work)
            results[scheduler].append(_time_to_target(run, args.target, metric))
            print(seed, scheduler, results[scheduler][-1], flush=True)
    ratios = [f / a for f, a in zip(results["fifo"], results["asha"], strict=True) if f and a]
    return {"target": args.target, "metric": metric, "time_to_target_s": results, "speedup": ratios,
            "median_speedup": statistics.median(ratios) if ratios else None}


def hv(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """MO-ASHA vs ASHA on the primary objective: hypervolume of the final front per CPU-second."""
    figures: dict[str, Any] = {}
    for scheduler in ("asha", "moasha"):
        rows = []
        for seed in range(args.seeds):
            text = S2_SPEC.format(problem="zdt1", scheduler=_scheduler(scheduler), function="mf_zdt1",
                                  metrics="{f1: min, f2: min}", steps=STEPS, space=_space(3),
                                  objectives="  - {metric: f2, mode: min, reference: 11}\n"
                                             "  - {metric: f1, mode: min, reference: 1.1}",
                                  trials=args.trials, seed=seed)
            run = _search(text, work)
            trials = run.trials()
            cpu_s = sum(t["duration"] or 0 for t in trials)
            rows.append({"hypervolume": run.front()["hypervolume"], "cpu_s": cpu_s,
                         "hv_per_cpu_s": run.front()["hypervolume"] / cpu_s if cpu_s else None,
                         "steps": len(run.steps())})
        figures[scheduler] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(scheduler, figures[scheduler], flush=True)
    return figures


def cpu(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Share of both cores busy while a real search runs its trials (from /proc/stat)."""
    import automl

    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
            samples.append((time.time(), sum(fields) - fields[3] - fields[4], sum(fields)))
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    run = automl.search(args.spec, out=work / "cpu-run")
    stop.set()
    thread.join()
    trials = run.trials()
    start = min(t["started_at"] for t in trials)
    end = max(t["finished_at"] for t in trials)
    inside = [s for s in samples if start <= s[0] <= end]
    busy = (inside[-1][1] - inside[0][1]) / (inside[-1][2] - inside[0][2]) if len(inside) > 1 else None
    return {"spec": args.spec, "trial_phase_s": end - start, "cpu_busy_fraction": busy,
            "note": "whole machine, all cores; other processes count too"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=["s2", "speedup", "hv", "cpu"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--spec", default="searchspaces/torch-mlp-digits.yaml")
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--wall", default="10m", help="wall-time budget per search in `speedup`")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from automl.engine import _start_ray

    _start_ray(None)
    with tempfile.TemporaryDirectory() as tmp:
        figures = {"s2": s2, "speedup": speedup, "hv": hv, "cpu": cpu}[args.figure](args, Path(tmp))
    print(json.dumps(figures, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
