"""Scheduling figures (issue 5): what early stopping buys, and the engine's own costs.

    .venv/bin/python -m benchmarks.scheduling.run s2 --seeds 5          # regret vs cumulative budget
    .venv/bin/python -m benchmarks.scheduling.run speedup --spec searchspaces/torch-mlp-digits.yaml --target 0.975 --seeds 6 --trials 1000 --wall 6m [--epochs 81] [--arms fifo,asha,asha-promotion]
    .venv/bin/python -m benchmarks.scheduling.run hv --seeds 3          # MO-ASHA vs ASHA, hypervolume per CPU-second
    .venv/bin/python -m benchmarks.scheduling.run hv --spec searchspaces/torch-mlp-digits.yaml --references 0.8 2 20000000 --trials 60
    .venv/bin/python -m benchmarks.scheduling.run cpu --spec searchspaces/quickstart.yaml

All searches go through ``automl.search`` (the whole engine on one local Ray); figures are printed
as Markdown and, with ``--json FILE``, written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from automl_bench.multifidelity import BRANIN_MIN, HARTMANN3_MIN, STEPS

from benchmarks.scheduling.r3_table import GP_BOHB

S2_SPEC = """
name: s2-{problem}
trainer:
  name: function
  params: {{function: "automl_bench.multifidelity:{function}", metrics: {metrics}, steps: {steps}}}
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
    """``fifo``, or ``asha``/``moasha`` with grace 1 and rf 3; ``-promotion`` for the promotion type."""
    if name == "fifo":
        return "{name: fifo}"
    base, _, kind = name.partition("-")
    return f"{{name: {base}, options: {{grace_period: 1, reduction_factor: 3, type: {kind or 'stopping'}}}}}"


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
        for scheduler in ("fifo", "asha", "asha-promotion", "moasha"):
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


def _to_target(run: Any, metric: str) -> dict[str, Any]:
    """When and at what cost a run's first full-budget trial reached ``budget.target`` (None: never)."""
    info = run.info()
    trials = run.trials()
    steps = run.steps()
    first = min((t["started_at"] for t in trials if t["started_at"]), default=None)
    number = (info.get("summary") or {}).get("target_reached_by")
    hit = next((t for t in trials if t["number"] == number), None)
    out: dict[str, Any] = {
        "trials_started": sum(1 for t in trials if t["started_at"]),
        "completed": sum(t["status"] == "completed" for t in trials),
        "stopped": sum(t["status"] == "stopped" for t in trials),
        "epochs_trained": len(steps),
        "cpu_s": sum(t["duration"] or 0 for t in trials),
        "first_trial_after_s": first - info["created_at"] if first else None,
        "span_s": max((t["finished_at"] or 0 for t in trials), default=0) - first if first else None,
        "reached": hit is not None,
        "best": max(((t["metrics"] or {}).get(metric, float("-inf")) for t in trials if t["status"] == "completed"),
                    default=None),
    }
    if hit:
        out.update({
            "trial": number,
            "value": hit["metrics"][metric],
            "s_from_first_trial": hit["finished_at"] - first,
            "s_from_search_start": hit["finished_at"] - info["created_at"],
            "epochs_to_target": sum(1 for s in steps if s["at"] <= hit["finished_at"]),
        })
    return out


#: The arms of ``speedup``: full-budget random search, and ASHA of each type over the same configurations.
ARMS: dict[str, dict[str, Any]] = {
    "fifo": {"name": "fifo"},
    "asha": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3, "type": "stopping"}},
    "asha-promotion": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3, "type": "promotion"}},
    "hyperband": {"name": "hyperband", "options": {"grace_period": 1, "reduction_factor": 3}},
    # Population Based Training (issue 20) on the spec's float parameters (lr, momentum, weight decay, dropout).
    "pbt": {"name": "pbt", "options": {"interval": 3, "quantile": 0.25}},
    # BOHB-style (automl-optuna's bohb: TPE on the highest rung with enough points) proposals under ASHA.
    "bohb-asha": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3}, "searcher": "bohb"},
    # Model-based proposals under stopping-type ASHA: the engine's counterpart of Optuna's TPESampler +
    # SuccessiveHalvingPruner (benchmarks/scheduling/peer.py).
    "tpe-asha": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3, "type": "stopping"},
                 "searcher": "tpe"},
    # Model-based proposals under promotion-type ASHA: the pair that met R3's goals on the surrogate (issue 20).
    "tpe-asha-promotion": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3, "type": "promotion"},
                           "searcher": "tpe"},
    "bohb-asha-promotion": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3,
                                                        "type": "promotion"}, "searcher": "bohb"},
    # Synchronous HyperBand (Li et al.'s; Ray's HyperBandScheduler) with model-based proposals.
    "tpe-hyperband-synchronous": {"name": "hyperband", "options": {"grace_period": 1, "reduction_factor": 3,
                                                                   "type": "synchronous"}, "searcher": "tpe"},
    "bohb-hyperband-synchronous": {"name": "hyperband", "options": {"grace_period": 1, "reduction_factor": 3,
                                                                    "type": "synchronous"}, "searcher": "bohb"},
    # BOHB with a Gaussian process per budget (Optuna's GPSampler), its settings decided on S2's seeds 0-9 (r3_table's).
    "bohb-gp-asha-promotion": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3,
                                                           "type": "promotion"}, "searcher": "bohb",
                               "searcher_options": GP_BOHB},
}


def speedup(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Time-to-target of full-budget random search (fifo) vs the same random searcher with ASHA.

    Every arm uses the spec's random searcher with the same seed, so they draw the same
    configurations in the same order (``--vary order``, the default: seed i is the searcher's own
    seed on the spec's split and trial seeds, so every seed is the same task and seed 0 is the order
    the spec's own search draws; ``--vary task``: seed i is the spec's seed, another split each); ASHA (grace 1, reduction factor 3; stopping type as Ray's,
    promotion type as Li et al.'s) stops or pauses the weak ones at rungs. Each search ends when a
    full-budget trial reaches ``--target`` (``budget.target``) or after ``--wall``. Time counts from
    the first trial's start (Ray's start-up, the same for all, is reported apart); epochs to target
    (every trial's epochs until the hit) are the machine-independent cost. The order of the arms
    rotates with the seed so drift of a shared machine hits all.
    """
    import yaml

    base = yaml.safe_load(Path(args.spec).read_text())
    metric = base["objectives"][0]["metric"]
    arms = [a.strip() for a in args.arms.split(",")]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or "fifo" not in arms:
        raise SystemExit(f"--arms: fifo and any of {', '.join(ARMS)}; got {args.arms}")
    runs: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    # fifo's runs taken from earlier results files of the same spec and target (--fifo-from): epochs to target are
    # machine-independent, seconds are not (the output says where fifo came from).
    stored = _stored_fifo(args) if args.fifo_from else {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if stored:
            runs["fifo"].append(stored[seed])
        shift = seed % len(arms)
        for scheduler in arms[shift:] + arms[:shift]:
            if scheduler == "fifo" and stored:
                continue
            spec = dict(base, name=f"speedup-{scheduler}")
            searcher = ARMS[scheduler].get("searcher", "random")
            options = {"options": ARMS[scheduler]["searcher_options"]} if "searcher_options" in ARMS[scheduler] else {}
            if args.vary == "order":  # one task (split, trial seeds); the searcher's seed orders the configs
                spec["searcher"] = {"name": searcher, "seed": seed, **options}
            else:  # each seed its own split as well
                spec.update(seed=seed, searcher={"name": searcher, **options})
            spec["scheduler"] = {k: v for k, v in ARMS[scheduler].items() if k not in ("searcher", "searcher_options")}
            spec["budget"] = {"trials": args.trials, "wall_time": args.wall, "target": args.target}
            if args.max_concurrent:  # 1: one trial at a time, as the sequential peer runs (benchmarks/scheduling/peer.py)
                spec["resources"] = {**(spec.get("resources") or {}), "max_concurrent": args.max_concurrent}
            if args.epochs:
                spec["trainer"] = {**spec["trainer"], "params": {**spec["trainer"]["params"], "epochs": args.epochs}}
            if "data" in spec and "csv" in spec["data"]:
                spec["data"]["csv"] = str((Path(args.spec).parent / spec["data"]["csv"]).resolve())
            row = {"seed": seed, **_to_target(_search(yaml.safe_dump(spec), work), metric)}
            runs[scheduler].append(row)
            print(scheduler, json.dumps(row), flush=True)
    out: dict[str, Any] = {"spec": args.spec, "epochs": args.epochs, "target": args.target, "metric": metric,
                           "max_concurrent": args.max_concurrent,
                           "wall": args.wall, "runs": runs,
                           **({"fifo_from": [str(f) for f in args.fifo_from]} if stored else {})}
    for arm in arms[1:]:
        out[arm] = _speedups(runs["fifo"], runs[arm])
    return out


def stored_runs(paths: Sequence[Path], spec: str, target: float, epochs: int | None) -> dict[str, dict[int, dict[str, Any]]]:
    """Arm -> seed -> run, from earlier ``speedup --json`` files, which must match ``spec``, ``target`` and ``epochs``."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in paths:
        doc = json.loads(Path(path).read_text())
        if doc.get("spec") != spec or doc.get("target") != target or doc.get("epochs") != epochs:
            raise SystemExit(f"--fifo-from {path}: spec {doc.get('spec')}, target {doc.get('target')}, epochs "
                             f"{doc.get('epochs')}; this run: {spec}, {target}, {epochs}")
        for arm, rows in doc["runs"].items():
            found.setdefault(arm, {}).update({int(r["seed"]): r for r in rows})
    return found


def _stored_fifo(args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    """Seed -> the fifo run of that seed in the ``--fifo-from`` files, which must match ``--spec`` and ``--target``."""
    found = stored_runs(args.fifo_from, args.spec, args.target, args.epochs).get("fifo", {})
    missing = [s for s in range(args.first_seed, args.first_seed + args.seeds) if s not in found]
    if missing:
        raise SystemExit(f"--fifo-from: no fifo run of seeds {missing}")
    return found


def _speedups(fifo: list[dict[str, Any]], asha: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed and median speedups of one ASHA arm over fifo, plus ERT (all time spent / successes)."""
    ratios: dict[str, list[float]] = {"time": [], "epochs": []}
    bounds: list[dict[str, float]] = []
    for f, a in zip(fifo, asha, strict=True):
        if f["reached"] and a["reached"]:
            ratios["time"].append(f["s_from_first_trial"] / a["s_from_first_trial"])
            ratios["epochs"].append(f["epochs_to_target"] / a["epochs_to_target"])
        elif a["reached"]:  # fifo never got there: its whole search is a lower bound
            bounds.append({"time": f["span_s"] / a["s_from_first_trial"], "epochs": f["epochs_trained"] / a["epochs_to_target"]})

    def ert(rows: list[dict[str, Any]], key: str, spent: str) -> float | None:
        hits = sum(r["reached"] for r in rows)
        return sum(r[key] if r["reached"] else r[spent] for r in rows) / hits if hits else None

    ert_f, ert_a = ert(fifo, "s_from_first_trial", "span_s"), ert(asha, "s_from_first_trial", "span_s")
    return {
        "speedup_time": ratios["time"], "speedup_epochs": ratios["epochs"],
        "median_speedup_time": statistics.median(ratios["time"]) if ratios["time"] else None,
        "median_speedup_epochs": statistics.median(ratios["epochs"]) if ratios["epochs"] else None,
        "ert_ratio_time": ert_f / ert_a if ert_f and ert_a else None,
        "lower_bounds_where_fifo_missed": bounds,
    }


def _hv_spec(args: argparse.Namespace, scheduler: str, seed: int) -> str:
    """ZDT1 with a fidelity (synthetic), or ``--spec`` with fixed ``--references`` for its objectives."""
    import yaml

    if not args.references:
        return S2_SPEC.format(problem="zdt1", scheduler=_scheduler(scheduler), function="mf_zdt1",
                              metrics="{f1: min, f2: min}", steps=STEPS, space=_space(3),
                              objectives="  - {metric: f2, mode: min, reference: 11}\n"
                                         "  - {metric: f1, mode: min, reference: 1.1}",
                              trials=args.trials, seed=seed)
    spec = yaml.safe_load(Path(args.spec).read_text())
    if len(args.references) != len(spec["objectives"]):
        raise SystemExit(f"--references needs one value per objective of {args.spec}: {len(spec['objectives'])}")
    # A fixed reference point: hypervolumes of different runs are comparable only against the same one.
    spec["objectives"] = [dict(o, reference=r) for o, r in zip(spec["objectives"], args.references, strict=True)]
    spec.update(seed=seed, name=f"hv-{scheduler}", searcher={"name": "random"}, budget={"trials": args.trials},
                scheduler={"name": scheduler, "options": {"grace_period": 1, "reduction_factor": 3}})
    return yaml.safe_dump(spec)


def hv(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """MO-ASHA vs ASHA on the primary objective: hypervolume of the final front per CPU-second.

    The same random searcher and seeds for both; CPU-seconds = the trials' wall time x their CPUs
    (what they held). Synthetic ZDT1 by default; ``--spec`` with ``--references`` for a real task.
    """
    import yaml

    figures: dict[str, Any] = {"spec": args.spec if args.references else "zdt1", "references": args.references}
    per_seed: dict[str, list[dict[str, Any]]] = {}
    for seed in range(args.seeds):
        for scheduler in (("asha", "moasha") if seed % 2 == 0 else ("moasha", "asha")):
            text = _hv_spec(args, scheduler, seed)
            cpus = float((yaml.safe_load(text).get("resources") or {}).get("cpu", 1))
            run = _search(text, work)
            trials = run.trials()
            cpu_s = sum(t["duration"] or 0 for t in trials) * cpus
            front = run.front()
            row = {"seed": seed, "hypervolume": front["hypervolume"], "cpu_s": cpu_s,
                   "hv_per_cpu_s": front["hypervolume"] / cpu_s if cpu_s else None, "steps": len(run.steps()),
                   "front_size": len(front["members"]),
                   "completed": sum(t["status"] == "completed" for t in trials)}
            per_seed.setdefault(scheduler, []).append(row)
            print(scheduler, json.dumps(row), flush=True)
    for scheduler, rows in per_seed.items():
        figures[scheduler] = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "seed"}
    figures["runs"] = per_seed
    ratios = [m["hv_per_cpu_s"] / a["hv_per_cpu_s"] for a, m in zip(per_seed["asha"], per_seed["moasha"], strict=True)
              if a["hv_per_cpu_s"] and m["hv_per_cpu_s"]]
    figures["moasha_over_asha_hv_per_cpu_s"] = ratios
    return figures


def _process_tree_cpu(root: int) -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) of ``root`` and every descendant, keyed by (pid, start time).

    Read from /proc by hand: psutil is not a dependency, and two fields of /proc/PID/stat are all
    this needs (Linux only, like the benchmark machines).
    """
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        ppid, utime, stime, started = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[19])
        stats[int(entry.name)] = (ppid, started, (utime + stime) / tick)
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return {(pid, stats[pid][1]): stats[pid][2] for pid in tree if pid in stats}


def cpu(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Share of the machine's cores the search's own processes keep busy while trials run.

    Samples the CPU time of this process and all its descendants (Ray's raylet, workers, ...) every
    0.5 s; busy = CPU seconds they used between the first trial's start and the last trial's end,
    over (cores x that time). Other processes on the machine do not count, in either direction.
    """
    import automl

    samples: list[tuple[float, dict[tuple[int, int], float]]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), _process_tree_cpu(os.getpid())))
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    run = automl.search(args.spec, out=work / "cpu-run")
    stop.set()
    thread.join()
    trials = [t for t in run.trials() if t["started_at"] and t["finished_at"]]
    start = min(t["started_at"] for t in trials)
    end = max(t["finished_at"] for t in trials)
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return {"spec": args.spec, "error": "the trial phase was too short to sample"}
    first = inside[0][1]
    used = 0.0
    seen: dict[tuple[int, int], float] = {}
    for _, snapshot in inside:  # a process that ended mid-way keeps the last CPU time it was seen with
        seen.update(snapshot)
    for key, value in seen.items():
        used += value - first.get(key, 0.0)
    cores = len(os.sched_getaffinity(0))
    elapsed = inside[-1][0] - inside[0][0]
    return {"spec": args.spec, "trials": len(trials), "trial_phase_s": end - start, "sampled_s": elapsed,
            "cores": cores, "cpu_s_used": used, "cpu_busy_fraction": used / (cores * elapsed),
            "load_average": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=["s2", "speedup", "hv", "cpu"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="speedup: override the torch trainer's epochs (the full budget)")
    parser.add_argument("--trials", type=int, default=40, help="trials per search (speedup: the most, it ends at the target)")
    parser.add_argument("--spec", default="searchspaces/torch-mlp-digits.yaml")
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--wall", default="10m", help="wall-time budget per search in `speedup`")
    parser.add_argument("--vary", choices=["order", "task"], default="order",
                        help="speedup: each seed draws another order of configurations on the spec's split "
                        "(order), or another split too (task)")
    parser.add_argument("--max-concurrent", type=int, help="speedup: at most this many trials at once (resources."
                        "max_concurrent; default: as many as the CPUs allow)")
    parser.add_argument("--fifo-from", type=Path, nargs="+", help="speedup: take fifo's runs from these earlier "
                        "--json files (same spec, target and epochs) instead of running it again")
    parser.add_argument("--arms", default="fifo,asha,asha-promotion",
                        help=f"speedup: fifo and the ASHA arms to compare with it ({', '.join(ARMS)})")
    parser.add_argument("--references", type=float, nargs="+",
                        help="hv: a reference value per objective of --spec (a real task instead of ZDT1)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from automl.plugin import start_ray

    start_ray(None)
    with tempfile.TemporaryDirectory() as tmp:
        figures = {"s2": s2, "speedup": speedup, "hv": hv, "cpu": cpu}[args.figure](args, Path(tmp))
    print(json.dumps(figures, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
