"""Tabular replay: what ASHA buys over full-budget random search, over many orderings of real trials.

A real time-to-target run gives one number per seed, decided mostly by where in the random order
the first configuration good enough appears. Here learning curves are recorded once, from a real
search in which every trial ran its full budget (fifo), and then replayed: each ordering of the
recorded configurations is run through a simulated cluster of ``--workers`` slots by fifo, by ASHA
of the stopping type and by ASHA of the promotion type. The decisions are taken by the engine's own
:class:`automl.schedulers.RungScheduler` (not a re-implementation), and the clock advances by each
trial's recorded seconds per budget step (its first step holds the trial's start, its last the
export and measurement a completed trial pays) plus, for every promotion, the recorded start cost
again (a restart from the checkpoint). This is Syne Tune's simulator-backend method, on our data.

    .venv/bin/python -m benchmarks.scheduling.replay record RUN_DIR --out benchmarks/scheduling/curves/NAME.json
    .venv/bin/python -m benchmarks.scheduling.replay simulate benchmarks/scheduling/curves/NAME.json \\
        --targets 0.97 0.975 0.98 --orderings 1000 [--reduction-factor 3] [--grace-period 1]

``simulate --identity`` replays the recorded order alone: that is the order a real search with the
same spec and seed draws, so it can be checked against the real runs of ``run speedup``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Curves", "markdown", "record", "replay", "simulate"]


@dataclass(frozen=True)
class Curves:
    """Recorded full-budget learning curves: per trial, the metric and the seconds of each budget step."""

    metric: str
    mode: str
    max_budget: int
    workers: int
    values: list[list[float]]
    seconds: list[list[float]]
    #: Seconds a trial's start costs beyond its first step's training (median over trials).
    start_s: float

    @classmethod
    def load(cls, path: Path) -> Curves:
        doc = json.loads(path.read_text())
        return cls(doc["metric"], doc["mode"], doc["max_budget"], doc["workers"], doc["values"], doc["seconds"],
                   doc["start_s"])


def record(run_dir: Path, workers: int) -> dict[str, Any]:
    """The curves of every completed full-budget trial of a finished fifo run."""
    from automl.plugin import Run

    run = Run.open(run_dir)
    objective = run.objectives()[0]
    values: list[list[float]] = []
    seconds: list[list[float]] = []
    starts: list[float] = []
    max_budget = 0
    for trial in run.trials():
        steps = sorted(run.steps(trial["number"]), key=lambda s: s["step"])
        if trial["status"] != "completed" or not steps or not trial["started_at"]:
            continue
        if [s["step"] for s in steps] != list(range(1, len(steps) + 1)):
            continue  # restarted: its times are not one clean run
        max_budget = max(max_budget, len(steps))
        times = [trial["started_at"], *(s["at"] for s in steps)]
        per_step = [b - a for a, b in zip(times, times[1:], strict=False)]
        values.append([float(s["metrics"][objective.metric]) for s in steps])
        seconds.append(per_step)
        if len(per_step) > 2:
            starts.append(per_step[0] - statistics.median(per_step[1:-1]))
    if not values:
        raise SystemExit(f"{run_dir} has no completed trial with a clean run of budget steps")
    full = [i for i, v in enumerate(values) if len(v) == max_budget]
    return {
        "source": str(run_dir), "spec": run.info()["spec_text"], "metric": objective.metric, "mode": objective.mode,
        "max_budget": max_budget, "workers": workers, "start_s": max(0.0, statistics.median(starts)) if starts else 0.0,
        "values": [values[i] for i in full], "seconds": [seconds[i] for i in full],
    }


@dataclass
class Outcome:
    """One simulated search: when (and after how many budget steps) the target was first reached."""

    reached: bool
    seconds: float
    steps: int
    configs: int
    #: Curves (indices) that ran their full budget, in the order they did.
    completed: list[int]


def simulate(curves: Curves, order: Sequence[int], target: float, scheduler: str, *,
             reduction_factor: float = 3, grace_period: int = 1) -> Outcome:
    """Run ``order`` (indices into the curves) through ``curves.workers`` slots until a full-budget
    trial reaches ``target``; ``scheduler`` is ``fifo``, ``stopping`` or ``promotion``."""
    from ray.tune.schedulers import TrialScheduler

    from automl.plugin import Objective, RungScheduler

    objective = Objective(curves.metric, curves.mode)  # type: ignore[arg-type]
    rungs = None if scheduler == "fifo" else RungScheduler(
        [objective], max_budget=curves.max_budget, grace_period=grace_period, reduction_factor=reduction_factor,
        type=scheduler)  # type: ignore[arg-type]
    fresh: Iterator[int] = iter(range(len(order)))
    budget: dict[int, int] = {}
    events: list[tuple[float, int, int]] = []  # (time the step ends, tie-breaker, trial slot in the order)
    counter = 0
    steps = 0
    configs = 0
    completed: list[int] = []

    def start(now: float) -> bool:
        nonlocal counter, configs
        slot = rungs.next_promotion() if rungs is not None and rungs.promotes else None
        extra = curves.start_s if slot is not None else 0.0
        if slot is None:
            slot = next(fresh, None)
            if slot is None:
                return False
            configs += 1
        step = budget.get(slot, 0) + 1
        counter += 1
        heapq.heappush(events, (now + extra + curves.seconds[order[slot]][step - 1], counter, slot))
        return True

    for _ in range(curves.workers):
        start(0.0)
    now = 0.0
    while events:
        now, _, slot = heapq.heappop(events)
        trial = order[slot]
        step = budget[slot] = budget.get(slot, 0) + 1
        steps += 1
        value = curves.values[trial][step - 1]
        if step == curves.max_budget:
            completed.append(trial)
            if objective.to_min(value) <= objective.to_min(target):
                return Outcome(True, now, steps, configs, completed)
            start(now)
            continue
        decision = TrialScheduler.CONTINUE if rungs is None else rungs.decide(slot, step, {curves.metric: value})
        if decision == TrialScheduler.CONTINUE:
            counter += 1
            heapq.heappush(events, (now + curves.seconds[trial][step], counter, slot))
        else:
            start(now)
    return Outcome(False, now, steps, configs, completed)


def replay(curves: Curves, targets: Sequence[float], orderings: int, seed: int, *, identity: bool = False,
           reduction_factor: float = 3, grace_period: int = 1) -> dict[str, Any]:
    """Speedups of both ASHA types over fifo, paired on the same orderings, for each target."""
    rng = np.random.default_rng(seed)
    n = len(curves.values)
    orders = [list(range(n))] if identity else [list(rng.permutation(n)) for _ in range(orderings)]
    out: dict[str, Any] = {"trials": n, "max_budget": curves.max_budget, "workers": curves.workers,
                           "start_s": curves.start_s, "orderings": len(orders), "reduction_factor": reduction_factor,
                           "grace_period": grace_period, "targets": {}}
    objective_max = curves.mode == "max"
    finals = np.asarray([v[-1] for v in curves.values])
    for target in targets:
        share = float(np.mean(finals >= target if objective_max else finals <= target))
        runs = {arm: [simulate(curves, o, target, arm, reduction_factor=reduction_factor, grace_period=grace_period)
                      for o in orders] for arm in ("fifo", "stopping", "promotion")}
        row: dict[str, Any] = {"share_of_configs_reaching_it": share}
        for arm in ("stopping", "promotion"):
            both = [(f, a) for f, a in zip(runs["fifo"], runs[arm], strict=True) if f.reached and a.reached]
            time = [f.seconds / a.seconds for f, a in both]
            steps = [f.steps / a.steps for f, a in both]
            row[arm] = {
                "median_speedup_time": statistics.median(time) if time else None,
                "quartiles_time": np.percentile(time, [25, 75]).round(2).tolist() if time else None,
                "median_speedup_steps": statistics.median(steps) if steps else None,
                "ert_ratio_time": _ratio(_ert(runs["fifo"]), _ert(runs[arm])),
                "share_of_orderings_at_least_5x": float(np.mean([t >= 5 for t in time])) if time else None,
                "misses": sum(not a.reached for a in runs[arm]),
            }
        row["fifo_misses"] = sum(not f.reached for f in runs["fifo"])
        if identity:
            row["identity"] = {arm: vars(r[0]) for arm, r in runs.items()}
        out["targets"][str(target)] = row
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _ert(outcomes: Sequence[Outcome]) -> float | None:
    """Expected running time (COCO): all time spent, misses included, over the number of hits."""
    hits = sum(o.reached for o in outcomes)
    return sum(o.seconds for o in outcomes) / hits if hits else None


def markdown(figures: dict[str, Any]) -> str:
    """The replay's figures as a Markdown table, one row per target and ASHA type."""
    lines = [f"{figures['trials']} recorded trials of {figures['max_budget']} steps, {figures['workers']} at a time, "
             f"{figures['orderings']} orderings; reduction factor {figures['reduction_factor']:g}, grace "
             f"{figures['grace_period']}; speedup = fifo's time-to-target / ASHA's on the same ordering", "",
             "| target | configs reaching it | ASHA type | time speedup, median [IQR] | epochs speedup, median | "
             "ERT ratio | orderings >= 5x |", "|---|---|---|---|---|---|---|"]
    for target, row in figures["targets"].items():
        for arm in ("stopping", "promotion"):
            r = row[arm]
            if r["median_speedup_time"] is None:
                continue
            q = r["quartiles_time"]
            lines.append(f"| {target} | {row['share_of_configs_reaching_it']:.1%} | {arm} | "
                         f"{r['median_speedup_time']:.2f} [{q[0]:.2f}-{q[1]:.2f}] | {r['median_speedup_steps']:.2f} | "
                         f"{r['ert_ratio_time']:.2f} | {r['share_of_orderings_at_least_5x']:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="curves from a finished fifo run")
    rec.add_argument("run_dir", type=Path)
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--workers", type=int, default=2, help="trials the run ran at once")
    sim = sub.add_parser("simulate", help="replay orderings of recorded curves")
    sim.add_argument("curves", type=Path)
    sim.add_argument("--targets", type=float, nargs="+", required=True)
    sim.add_argument("--orderings", type=int, default=1000)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--identity", action="store_true", help="only the recorded order (a real search's)")
    sim.add_argument("--reduction-factor", type=float, default=3)
    sim.add_argument("--grace-period", type=int, default=1)
    sim.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        doc = record(args.run_dir, args.workers)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc))
        print(f"{len(doc['values'])} curves of {doc['max_budget']} steps, start {doc['start_s']:.3f}s -> {args.out}")
        return 0
    figures = replay(Curves.load(args.curves), args.targets, args.orderings, args.seed, identity=args.identity,
                     reduction_factor=args.reduction_factor, grace_period=args.grace_period)
    print(json.dumps(figures, indent=2) if args.identity else markdown(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
