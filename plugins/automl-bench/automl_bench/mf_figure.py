"""The multi-fidelity figure of issue 20 on S2: time-to-target and regret against budget, per method.

``python -m automl_bench.mf_figure [--tasks s2-branin s2-hartmann3] [--seeds 5] [--cost 40]`` runs every
method on every task and seed with the same cost (``--cost`` full-trial equivalents of 27 budget steps) and
prints a Markdown table:

* **cost to target** (in budget steps, the cost that is the same on any machine): the cumulative budget
  steps until a *completed* trial (full fidelity) reached the target, median over seeds (``>N`` when some
  seed never reached it within the budget: the median then counts those as the budget). Targets: the value
  that ``5%`` and ``1%`` of uniformly drawn configurations reach at full fidelity (a fixed sample of 100,000);
  the speedup is full-budget random search's (``rungs:random+fifo``) median cost over the method's.
* **regret against budget**: the median log10 simple regret (best completed value minus the known minimum)
  after 5, 10, 20 and ``--cost`` full-trial equivalents.

Methods: the engine's searcher and scheduler objects in-process (:mod:`automl_bench.rung_sim`) and Optuna's
``TPESampler`` + ``HyperbandPruner`` used directly (``optuna:tpe+hyperband``), all sequential. With ``--methods``,
Ray Tune's own pairs used directly through ``tune.Tuner``, one trial at a time (:mod:`automl_bench.ray_mf`):
``raytune:bohb+hyperband`` (``TuneBOHB`` + ``HyperBandForBOHB``; needs ``pip install hpbandster ConfigSpace``),
``raytune:random+hyperband``, ``raytune:random+asha``, ``raytune:random+fifo``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from automl_bench.base import Trace
from automl_bench.engine_methods import make_engine_method
from automl_bench.engine_tasks import S2Task, make_engine_task

__all__ = ["DEFAULT_METHODS", "cost_to_target", "figure", "main", "target_value"]

DEFAULT_METHODS = (
    "rungs:random+fifo", "rungs:random+asha", "rungs:random+hyperband", "rungs:tpe+fifo", "rungs:tpe+asha",
    "rungs:bohb+asha", "rungs:bohb+hyperband", "optuna:tpe+hyperband",
)
FRACTIONS = (0.05, 0.01)


def target_value(task: S2Task, fraction: float, *, samples: int = 100_000) -> float:
    """The full-fidelity value that ``fraction`` of uniformly drawn configurations reach (fixed sample)."""
    rng = np.random.default_rng(20)
    fn = task.function()
    draws = rng.random((samples, len(task.names)))
    values = [fn(dict(zip(task.names, row, strict=True)), task.max_steps)["loss"] for row in draws]
    return float(np.quantile(values, fraction))


def cost_to_target(trace: Trace, target: float) -> int | None:
    """Cumulative budget steps at which the best completed value first reached ``target`` (None: never)."""
    assert trace.curve is not None
    for spent, best in zip(trace.curve["evals"], trace.curve["best"], strict=True):
        if best is not None and best <= target:
            return int(spent)
    return None


def _regret_at(trace: Trace, cost: int, optimum: float) -> float | None:
    assert trace.curve is not None
    best = None
    for spent, value in zip(trace.curve["evals"], trace.curve["best"], strict=True):
        if spent > cost:
            break
        best = value
    return None if best is None else math.log10(max(best - optimum, 1e-12))


def _median_cost(costs: Sequence[int | None], budget: int) -> tuple[float, bool]:
    """The median with never-reached runs counted as the budget; True when some run never reached it."""
    return statistics.median(budget if c is None else c for c in costs), any(c is None for c in costs)


def figure(tasks: Sequence[str | S2Task], methods: Sequence[str | tuple[str, str, Mapping[str, Any]]],
           seeds: Sequence[int], cost: int,
           extra_rows: Callable[[S2Task, dict[float, float], int], dict[str, dict[str, Any]]] | None = None,
           fractions: Sequence[float] = FRACTIONS) -> str:
    """Run everything and return the Markdown table (one block per task).

    ``tasks``: S2 task names, or task objects shaped like :class:`S2Task` (a table of recorded curves: its
    ``target_loss(fraction)`` gives the targets). ``methods``: names, or ``(label, name, options)`` for a method
    with options (a variant of a searcher or scheduler). ``extra_rows(task, targets, budget)``: rows of methods
    run elsewhere (``{"costs": {fraction: [cost or None per seed]}}``), shown after the others. ``fractions``: the
    targets, as the share of uniformly drawn configurations that reach each.
    """
    lines: list[str] = []
    checkpoints = [c for c in (5, 10, 20) if c < cost] + [cost]
    for given in tasks:
        task = make_engine_task(given, {}) if isinstance(given, str) else given
        assert isinstance(task, S2Task) and task.optimum is not None  # S2's functions have known optima
        name, optimum = task.name, task.optimum
        budget = cost * task.max_steps
        targets = {f: task.target_loss(f) if hasattr(task, "target_loss") else target_value(task, f)
                   for f in fractions}
        rows: dict[str, dict[str, Any]] = {}
        for entry in methods:
            method_name, registered, options = (entry, entry, None) if isinstance(entry, str) else entry
            method = make_engine_method(registered, options)
            method.check(task)
            traces = [method.run(task, iterations=cost, batch=1, seed=s) for s in seeds]
            print(f"{name} {method_name}: {sum(t.wall_s for t in traces):.0f} s", file=sys.stderr, flush=True)
            rows[method_name] = {
                "costs": {f: [cost_to_target(t, v) for t in traces] for f, v in targets.items()},
                "regret": {c: [_regret_at(t, c * task.max_steps, optimum) for t in traces] for c in checkpoints},
                "trials": statistics.median(t.suggestions for t in traces),
                "wall": sum(t.wall_s for t in traces),
            }
        if extra_rows is not None:
            rows.update(extra_rows(task, targets, budget))
        fifo = rows.get("rungs:random+fifo")
        head = " | ".join(f"to top {f:.3g}% (speedup)" for f in (100 * f for f in fractions))
        regrets = " | ".join(f"log10 regret @{c}" for c in checkpoints)
        told = ", ".join(f"top {100 * f:.3g}% = {v:.4g}" for f, v in targets.items())
        lines += [f"**{name}** (optimum {task.optimum:g}; targets: {told}; budget {cost} x {task.max_steps} = "
                  f"{budget} {task.cost_unit}; seeds {list(seeds)})", "",
                  f"| method | trials | {head} | {regrets} |", "|" + " --- |" * (2 + len(fractions) + len(checkpoints))]
        for method_name, row in rows.items():
            cells = []
            # Each family against its own full-budget random search (the replay's orderings against theirs).
            base = rows.get(method_name.partition(":")[0] + ":random+fifo", fifo)
            for f in fractions:
                median, missed = _median_cost(row["costs"][f], budget)
                text = f"{'>' if missed else ''}{median:g}"
                if base is not None:
                    ref, ref_missed = _median_cost(base["costs"][f], budget)
                    # Both bounded below by the budget: no ratio can be told.
                    text += " (?)" if ref_missed and missed else \
                        f" ({'>=' if ref_missed else '<=' if missed else ''}{ref / median:.1f}x)"
                cells.append(text)
            for c in checkpoints:
                values = [r for r in row.get("regret", {}).get(c, []) if r is not None]
                cells.append(f"{statistics.median(values):.2f}" if len(values) == len(seeds) else
                             f"{statistics.median(values):.2f} ({len(values)}/{len(seeds)})" if values else "-")
            trials = f"{row['trials']:g}" if "trials" in row else "-"
            lines.append(f"| {method_name} | {trials} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m automl_bench.mf_figure", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["s2-branin", "s2-hartmann3"])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cost", type=int, default=40, help="full-trial equivalents per run")
    args = parser.parse_args(argv)
    t0 = time.time()
    print(figure(args.tasks, args.methods, list(range(args.seeds)), args.cost))
    load = os.getloadavg()
    print(f"({time.time() - t0:.0f} s; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on "
          f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
