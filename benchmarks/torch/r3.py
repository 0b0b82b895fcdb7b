"""R3, the real PyTorch task: digits with the torch trainer (see shared/design/benchmarks.md, R3).

    nice -n 10 .venv/bin/python -m benchmarks.torch.r3 ddp                         # DDP 2 workers vs 1
    nice -n 10 .venv/bin/python -m benchmarks.torch.r3 budget --scheduler fifo --seed 0
    nice -n 10 .venv/bin/python -m benchmarks.torch.r3 budget --scheduler asha --seed 0
    .venv/bin/python -m benchmarks.torch.r3 report                                 # only rewrite RESULTS.md

``ddp``: one trial's training on the same data and network (MLP 64-512-512-512-10, global
batch 128, AdamW, the trial's seed), run as 1 process in the trial (no Ray Train), as Ray
Train with 1 worker of 1 thread, 1 worker of 2 threads, and 2 DDP workers of 1 thread each
(gloo). Reported: training throughput (rows of all workers per second of the slowest
worker's epoch, median over epochs 2..E, which leaves out warm-up), final validation
accuracy, and the wall time of the whole run including Ray Train's start-up. Repeats are
interleaved (repeat outer, configuration inner) so machine drift hits every configuration, and
each measurement runs in a fresh process.

``budget``: ``automl.search`` on ``searchspaces/torch-mlp-digits.yaml`` (LCBench-like MLP
space, 27 epochs as fidelity) for a fixed wall-clock budget, with every trial run to the end
(fifo) or with ASHA (grace 1 epoch, reduction factor 3: rungs at 1, 3, 9 epochs), 2
concurrent trials of 1 CPU. Reported: best validation accuracy of a completed (exported)
trial when the budget ends, trials and epochs done, and the time to reach target accuracies;
ASHA speedup = time-to-target(fifo) / time-to-target(asha), median over seeds.

Each result is kept as JSON under ``benchmarks/results/torch/`` (not versioned), so parts
can run in separate calls (each under ~10 minutes); ``RESULTS.md`` is rebuilt from every
result found there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.environment import environment as shared_environment

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "benchmarks" / "results" / "torch"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
MLP_SPEC = ROOT / "searchspaces" / "torch-mlp-digits.yaml"

#: name -> (distributed settings or None, the trial's own CPUs)
DDP_CONFIGS: dict[str, tuple[dict[str, Any] | None, float]] = {
    "process-1t": (None, 1.0),
    "train-1w-1t": ({"workers": 1, "cpus_per_worker": 1.0}, 0.0),
    "train-1w-2t": ({"workers": 1, "cpus_per_worker": 2.0}, 0.0),
    "train-2w-1t": ({"workers": 2, "cpus_per_worker": 1.0}, 0.0),
}
NETWORK = {"network": "mlp", "layers": 3, "units": 512, "batch_size": 128, "lr": 0.001, "optimizer": "adamw"}


def environment() -> dict[str, Any]:
    return shared_environment("torch", "ray")


def _save(name: str, result: dict[str, Any]) -> Path:
    RAW.mkdir(parents=True, exist_ok=True)
    path = RAW / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


# -- ddp --------------------------------------------------------------------------------


def run_ddp(repeats: int, epochs: int, configs: list[str]) -> None:
    """Each configuration ``repeats`` times, interleaved, each in a fresh process.

    A fresh process per measurement: a driver that has run Ray Train before trains more
    slowly in-process afterwards on this machine, which would bias the 1-process row.
    """
    import sys

    for repeat in range(repeats):
        for name in configs:
            subprocess.run([sys.executable, "-m", "benchmarks.torch.r3", "ddp-one", "--config", name,
                            "--repeat", str(repeat), "--epochs", str(epochs)], cwd=ROOT, check=True)


def run_ddp_one(name: str, repeat: int, epochs: int) -> None:
    """Train the network once under configuration ``name`` and keep the result."""
    import ray
    from automl_sklearn.datasets import load
    from automl_torch import NeuralNetTrainer

    from automl.plugin import TrialContext, split

    distributed, cpus = DDP_CONFIGS[name]
    if distributed:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")  # type: ignore[arg-type]  # ray annotates int, takes a level name too
    data = split(load("digits", {}), "classification", valid=0.2, test=0.2, seed=0)
    params: dict[str, Any] = {**NETWORK, "epochs": epochs}
    if distributed:
        params["distributed"] = distributed
    try:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = NeuralNetTrainer({}, params, TrialContext("classification", repeat, data, Path(tmp), cpus, 0.0))
            start = time.perf_counter()
            first = None
            for _ in trainer.run_steps(1):
                first = first or time.perf_counter() - start
            wall = time.perf_counter() - start
            valid, test = trainer.evaluate("valid"), trainer.evaluate("test")
    finally:
        if distributed:
            ray.shutdown()
    result = {
        "kind": "ddp", "config": name, "repeat": repeat, "epochs": epochs, "network": NETWORK,
        "samples_per_s": statistics.median(h["samples_per_s"] for h in trainer.history_[1:]),
        "epoch_s": statistics.median(h["seconds"] for h in trainer.history_[1:]),
        "workers": trainer.history_[-1]["workers"], "first_epoch_s": first, "wall_s": wall,
        "valid_accuracy": valid["accuracy"], "test_accuracy": test["accuracy"], "environment": environment(),
    }
    print(f"{name} #{repeat}: {result['samples_per_s']:.0f} rows/s, accuracy {valid['accuracy']:.4f}, "
          f"wall {wall:.1f}s (first epoch after {first:.1f}s)", flush=True)
    _save(f"ddp-{name}-{repeat}", result)


# -- budget -----------------------------------------------------------------------------


def run_budget(scheduler: str, seed: int, wall: float, spec_path: Path) -> None:
    """One search of ``spec_path`` for ``wall`` seconds with ``scheduler``."""
    import automl

    doc = yaml.safe_load(spec_path.read_text())
    doc["name"] = f"r3-{scheduler}-{seed}"
    doc["seed"] = seed
    doc["budget"] = {"trials": 1000, "wall_time": wall}
    doc["scheduler"] = {"name": scheduler}
    if scheduler == "asha":
        doc["scheduler"]["options"] = {"grace_period": 1, "reduction_factor": 3}
    doc["latency"] = {"repeats": 50, "final_repeats": 100}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(yaml.safe_dump(doc))
        start = time.time()
        run = automl.search(spec, out=Path(tmp) / "run")
        trials = run.trials()
        steps = run.store.steps(run.run_id)
    completed = sorted(
        ((t["finished_at"] - start, t["metrics"]["accuracy"]) for t in trials
         if t["status"] == "completed" and "accuracy" in (t["metrics"] or {})),
    )
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    result = {
        "kind": "budget", "scheduler": scheduler, "seed": seed, "wall_budget_s": wall, "spec": spec_path.name,
        "completed": completed, "trials": counts, "epochs_trained": int(sum(t["budget"] or 0 for t in trials)),
        "steps_recorded": len(steps), "best_accuracy": max((a for _, a in completed), default=None),
        "environment": environment(),
    }
    print(f"{scheduler} seed {seed}: best {result['best_accuracy']}, trials {counts}, "
          f"epochs {result['epochs_trained']}", flush=True)
    _save(f"budget-{scheduler}-{seed}", result)


def time_to_target(completed: list[list[float]], target: float) -> float | None:
    for seconds, accuracy in completed:
        if accuracy >= target:
            return seconds
    return None


# -- report -----------------------------------------------------------------------------


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def report(targets: list[float]) -> str:
    results = [json.loads(p.read_text()) for p in sorted(RAW.glob("*.json"))]
    ddp = [r for r in results if r["kind"] == "ddp"]
    budget = [r for r in results if r["kind"] == "budget"]
    lines = [
        "# R3: PyTorch on digits (automl-torch)",
        "",
        "Written by `python -m benchmarks.torch.r3 report` from `benchmarks/results/torch/*.json`; the protocol is",
        "in the module docstring. Medians with (min-max) over repeats or seeds. This machine has 2 cores shared",
        "with other work (load average in the environment lines): compare rows of one table, not absolute numbers",
        "across days.",
        "",
    ]
    if ddp:
        lines += [
            "## DDP: 2 workers vs 1",
            "",
            f"Network {ddp[0]['network']}, {ddp[0]['epochs']} epochs, digits (1,077 training rows), "
            f"{len({r['repeat'] for r in ddp})} repeats.",
            "",
            "| configuration | workers x threads | rows/s (training) | epoch s | validation accuracy | test accuracy "
            "| wall s (incl. start-up) | first epoch after s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        shape = {"process-1t": "1 process x 1 (no Ray Train)", "train-1w-1t": "1 x 1", "train-1w-2t": "1 x 2",
                 "train-2w-1t": "2 x 1 (DDP, gloo)"}
        by: dict[str, list[dict[str, Any]]] = {}
        for r in ddp:
            by.setdefault(r["config"], []).append(r)
        for name in DDP_CONFIGS:
            rows = by.get(name)
            if not rows:
                continue
            lines.append(
                f"| {name} | {shape[name]} | {_spread([r['samples_per_s'] for r in rows], '.0f')} "
                f"| {_spread([r['epoch_s'] for r in rows], '.3f')} "
                f"| {_spread([r['valid_accuracy'] for r in rows], '.4f')} "
                f"| {_spread([r['test_accuracy'] for r in rows], '.4f')} | {_spread([r['wall_s'] for r in rows], '.1f')} "
                f"| {_spread([r['first_epoch_s'] for r in rows], '.1f')} |"
            )
        if "train-2w-1t" in by and "train-1w-1t" in by:
            pairs = {r["repeat"]: r["samples_per_s"] for r in by["train-1w-1t"]}
            ratios = [r["samples_per_s"] / pairs[r["repeat"]] for r in by["train-2w-1t"] if r["repeat"] in pairs]
            lines += ["", f"Throughput of 2 workers / 1 worker (1 thread each), per repeat: {_spread(ratios, '.2f')}."]
        if "train-2w-1t" in by and "process-1t" in by:
            single = {r["repeat"]: r["valid_accuracy"] for r in by["process-1t"]}
            gaps = [abs(r["valid_accuracy"] - single[r["repeat"]]) for r in by["train-2w-1t"] if r["repeat"] in single]
            lines += [f"Validation accuracy, |2 workers - 1 process| per repeat (same seed): largest {max(gaps):.4f}."]
        env = ddp[-1]["environment"]
        lines += ["", f"Environment: {env['date']}, commit {env['commit']}, {env['cpus']} CPUs, torch {env['torch']}, "
                      f"ray {env['ray']}, load average at the end {tuple(round(x, 1) for x in env['load_average'])}.",
                  ""]
    if budget:
        wall = budget[0]["wall_budget_s"]
        lines += [
            "## Fixed wall budget, with and without ASHA",
            "",
            f"`{budget[0]['spec']}` (MLP, LCBench-like space, 27 epochs), {wall:.0f} s per search, 2 concurrent "
            "trials of 1 CPU, the same seeds for both schedulers (so the same configurations are drawn). Times count "
            "from the start of `automl.search` (Ray start-up included) to the end of the first completed trial at "
            "or above the target. Stopped trials: by ASHA at a rung, or (fifo too) by the end of the wall budget.",
            "",
            "Superseded for the speedup figure by `python -m benchmarks.scheduling.run speedup` (searches end at the "
            "target, times from the first trial, 6 seeds, a quiet machine: benchmarks/README.md, Scheduling).",
            "",
            "| scheduler | seeds | best validation accuracy | completed trials | stopped trials | epochs trained "
            + "".join(f"| time to {t:g} s " for t in targets) + "|",
            "|---|---|---|---|---|---|" + "---|" * len(targets),
        ]
        ttt: dict[float, dict[str, dict[int, float | None]]] = {t: {} for t in targets}
        for scheduler in ("fifo", "asha"):
            rows = [r for r in budget if r["scheduler"] == scheduler]
            if not rows:
                continue
            cells = []
            for t in targets:
                ttt[t][scheduler] = {r["seed"]: time_to_target(r["completed"], t) for r in rows}
                reached = [v for v in ttt[t][scheduler].values() if v is not None]
                cells.append(f"{_spread(reached, '.0f')} ({len(reached)}/{len(rows)} reached)")
            lines.append(
                f"| {scheduler} | {len(rows)} | {_spread([r['best_accuracy'] for r in rows if r['best_accuracy']], '.4f')} "
                f"| {_spread([r['trials'].get('completed', 0) for r in rows], '.0f')} "
                f"| {_spread([r['trials'].get('stopped', 0) for r in rows], '.0f')} "
                f"| {_spread([r['epochs_trained'] for r in rows], '.0f')} | " + " | ".join(cells) + " |"
            )
        lines.append("")
        for t in targets:
            if {"fifo", "asha"} <= set(ttt[t]):
                fifo, asha = ttt[t]["fifo"], ttt[t]["asha"]
                speedups = [f / a for s, f in fifo.items() if (a := asha.get(s)) and f]
                lines.append(f"- ASHA speedup to {t:g}, time-to-target(fifo) / time-to-target(asha), per seed reaching "
                             f"it with both: {_spread(speedups, '.2f')} over {len(speedups)} seed(s).")
        loads = [r["environment"]["load_average"][0] for r in budget]
        env = budget[-1]["environment"]
        lines += ["", f"Environment: {env['date']}, commit {env['commit']}, {env['cpus']} CPUs, torch {env['torch']}, "
                      f"ray {env['ray']}, 1-minute load average at the end of the runs {min(loads):.0f}-{max(loads):.0f}.",
                  ""]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ddp", help="DDP 2 workers vs 1: throughput and accuracy")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--configs", nargs="+", default=list(DDP_CONFIGS), choices=list(DDP_CONFIGS))
    p = sub.add_parser("ddp-one", help="one measurement of the ddp part (run by ddp in a fresh process)")
    p.add_argument("--config", choices=list(DDP_CONFIGS), required=True)
    p.add_argument("--repeat", type=int, default=0)
    p.add_argument("--epochs", type=int, default=8)
    p = sub.add_parser("budget", help="best accuracy within a wall budget, fifo or asha")
    p.add_argument("--scheduler", choices=["fifo", "asha"], required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wall", type=float, default=240.0, help="seconds of search")
    p.add_argument("--spec", type=Path, default=MLP_SPEC)
    p = sub.add_parser("report", help="rewrite RESULTS.md from the results kept")
    for q in sub.choices.values():
        q.add_argument("--target", type=float, nargs="+", default=[0.92, 0.95],
                       help="accuracies of the time-to-target figures")
    args = parser.parse_args()
    if args.command == "ddp":
        run_ddp(args.repeats, args.epochs, args.configs)
    elif args.command == "ddp-one":
        run_ddp_one(args.config, args.repeat, args.epochs)
        return
    elif args.command == "budget":
        run_budget(args.scheduler, args.seed, args.wall, args.spec)
    print(report(args.target))


if __name__ == "__main__":
    main()
