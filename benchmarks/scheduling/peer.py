"""The peer on real training: Optuna's ``TPESampler`` with its own pruner, used directly, to a target (issue 20).

    flock /work/notes/bench.lock .venv/bin/python -m benchmarks.scheduling.peer \\
        --spec searchspaces/torch-mlp-digits.yaml --target 0.983 --seeds 12 --first-seed 0 --pruner hyperband \\
        --fifo-from benchmarks/scheduling/results/speedup-r3-target0.983-seeds0-7.json \\
        benchmarks/scheduling/results/speedup-r3-target0.983-seeds8-11.json --json FILE

Issue 20 asks for the engine's multi-fidelity arms side by side with Ray Tune's ``HyperBandForBOHB`` + ``TuneBOHB`` or
Optuna's ``TPESampler`` + ``HyperbandPruner`` used directly. Until now the direct baseline ran on R3's table of
recorded curves and its surrogate (:mod:`benchmarks.scheduling.r3_table`), where a configuration always gets the same
curve; through the engine each trial trains with its own seed, and a target a few validation rows above the rest is
a draw (:mod:`benchmarks.scheduling.retrain`). This runs the peer on that same real training: an Optuna study (the
sampler seeded with the seed, ``TPESampler``'s defaults) asks a configuration of the spec's space, the engine's own
trainer trains it epoch by epoch on the spec's split with the engine's seed of that trial number (trial ``n`` of the
study trains as trial ``n`` of an engine search of the spec: :meth:`automl.plan.Plan.job`, as the R3 table does),
each epoch's validation accuracy is reported to the study, and the pruner (``hyperband``: ``HyperbandPruner``;
``sha``: ``SuccessiveHalvingPruner``, Optuna's asynchronous successive halving; min resource 1 epoch, reduction
factor 3, the engine's rungs) stops it or not. Trials run one after the other; the run ends when a trial that trained
every epoch reaches ``--target``, or after ``--max-epochs``. Runs of different seeds go side by side in
``--processes`` processes of one thread each.

Cost is counted in epochs, as in :func:`benchmarks.scheduling.run.speedup` (machine-independent). Seconds are printed
but one trial at a time in a process is not the engine's two concurrent trials: compare epochs. With ``--fifo-from``
(results files of ``benchmarks.scheduling.run speedup`` on the same spec and target) the speedups over those full-budget
random searches are computed as that module computes them, and with ``--compare`` the same files' other arms are
set beside the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from automl.plugin import Choice, Float, Int, Param, TrialError
from benchmarks.scheduling.r3_table import _plan_and_data
from benchmarks.scheduling.run import _speedups, stored_runs

__all__ = ["PRUNERS", "main", "peer_run", "summary"]

#: The pruners this runs, with the engine's rungs (min resource 1, reduction factor 3).
PRUNERS: tuple[str, ...] = ("hyperband", "sha")


def _pruner(name: str, max_resource: int) -> Any:
    import optuna

    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_resource, reduction_factor=3)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {name!r}")


def _suggest(trial: Any, name: str, param: Param) -> Any:
    """One parameter as Optuna's own define-by-run API asks it (log scales kept, values snapped onto the space).

    automl-optuna's searchers do the same, privately; a benchmark uses only what the core declares public, and this
    is the peer's own way of asking, so it is written here."""
    if isinstance(param, Float):
        return param.clip(trial.suggest_float(name, param.low, param.high, log=param.log,
                                              step=None if param.log else param.step))
    if isinstance(param, Int):
        return int(param.clip(trial.suggest_int(name, param.low, param.high, log=param.log,
                                                step=1 if param.log else param.step)))
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.values))
    raise TypeError(f"unknown parameter type {type(param).__name__}")


def peer_run(job: tuple[str, str, int, str, float, int]) -> dict[str, Any]:
    """One seed's study to the target: its cost in epochs and seconds, and the trial that reached it."""
    import optuna
    import torch

    spec_text, source, seed, pruner, target, max_epochs = job
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan, data = _plan_and_data(spec_text, source)
    engine_job = plan.job(Path(os.environ.get("TMPDIR", "/tmp")) / f"peer-{os.getpid()}")
    epochs = int(engine_job.params["epochs"])
    # Named: HyperbandPruner puts a trial in a bracket by a hash of the study's name (an unnamed study gets a random one).
    study = optuna.create_study(study_name=f"peer-{seed}", direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed), pruner=_pruner(pruner, epochs))
    spent = completed = pruned = failed = 0
    start = time.perf_counter()
    hit: dict[str, Any] | None = None
    best = None
    while spent < max_epochs and hit is None:
        trial = study.ask()
        config: dict[str, Any] = {}
        for name, param in plan.space.items():
            if param.is_active(config):
                config[name] = _suggest(trial, name, param)
        trainer = engine_job.trainer(config, engine_job.params, engine_job.context(trial.number, data))
        value, step, stopped = None, 0, False
        try:
            for _ in trainer.run_steps(1):
                step += 1
                spent += 1
                value = float(trainer.evaluate("valid")["accuracy"])
                trial.report(value, step)
                if step < epochs and (trial.should_prune() or spent >= max_epochs):
                    stopped = True
                    break
        except TrialError:  # the trainer's own refusal (a loss that became nan): failed, the search goes on
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            failed += 1
            continue
        if stopped or value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            pruned += 1
            continue
        study.tell(trial, value)
        completed += 1
        best = value if best is None else max(best, value)
        if value >= target:
            hit = {"trial": trial.number, "value": value, "epochs_to_target": spent,
                   "s_from_first_trial": time.perf_counter() - start}
    out: dict[str, Any] = {"seed": seed, "trials_started": len(study.trials), "completed": completed,
                           "stopped": pruned, "failed": failed, "epochs_trained": spent,
                           "span_s": time.perf_counter() - start, "reached": hit is not None, "best": best}
    return {**out, **(hit or {})}


def summary(runs: Sequence[Mapping[str, Any]], stored: Mapping[str, Mapping[int, Mapping[str, Any]]],
            label: str) -> str:
    """Markdown: epochs to target per seed for the peer and the stored arms, then each one's speedup over fifo."""
    seeds = [int(r["seed"]) for r in runs]
    arms = [a for a in stored if all(s in stored[a] for s in seeds)]

    def cell(r: Mapping[str, Any]) -> str:
        if r["reached"]:
            return f"{r['epochs_to_target']} (#{r['trial']})"
        return f"missed: {r['epochs_trained']} epochs"

    lines = [f"| seed | {label} | " + " | ".join(arms) + " |", "|---|---|" + "---|" * len(arms)]
    for r in runs:
        lines.append(f"| {r['seed']} | {cell(r)} | " + " | ".join(cell(stored[a][r['seed']]) for a in arms) + " |")
    if "fifo" in arms:
        fifo = [dict(stored["fifo"][s]) for s in seeds]
        lines += ["", "| arm | speedup over fifo per seed, epochs | median | ERT ratio | seeds >= 5x / >= 10x |",
                  "|---|---|---|---|---|"]
        for name, rows in [(label, [dict(r) for r in runs])] + [(a, [dict(stored[a][s]) for s in seeds])
                                                                  for a in arms if a != "fifo"]:
            for row in rows:  # ERT in epochs: _speedups reads seconds, so give it epochs in their place
                row["s_from_first_trial"] = row.get("epochs_to_target")
                row["span_s"] = row["epochs_trained"]
            base = [{**f, "s_from_first_trial": f.get("epochs_to_target"), "span_s": f["epochs_trained"]} for f in fifo]
            sp = _speedups(base, rows)
            per = sp["speedup_epochs"]
            median = f"{sp['median_speedup_epochs']:.1f}x" if per else "-"
            ert = f"{sp['ert_ratio_time']:.1f}x" if sp["ert_ratio_time"] else "-"
            lines.append(f"| {name} | {', '.join(f'{x:.1f}' for x in per)} | {median} | {ert} | "
                         f"{sum(x >= 5 for x in per)} / {sum(x >= 10 for x in per)} of {len(per)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scheduling.peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--target", type=float, required=True)
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--pruner", choices=PRUNERS, default="hyperband")
    parser.add_argument("--max-epochs", type=int, default=5400, help="a run that has not reached the target stops here")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--fifo-from", type=Path, nargs="*", default=[],
                        help="speedup results files of the same spec and target: fifo and the arms set beside the peer")
    parser.add_argument("--json", type=Path, help="also write every run here")
    args = parser.parse_args(argv)
    spec_text = args.spec.read_text()
    stored = stored_runs(args.fifo_from, str(args.spec), args.target, None)
    jobs = [(spec_text, str(args.spec), seed, args.pruner, args.target, args.max_epochs)
            for seed in range(args.first_seed, args.first_seed + args.seeds)]
    t0 = time.time()
    with ProcessPoolExecutor(args.processes) as pool:
        runs = []
        for row in pool.map(peer_run, jobs):
            print(json.dumps(row), flush=True)
            runs.append(row)
    label = f"optuna tpe + {args.pruner} (direct)"
    if args.json:
        args.json.write_text(json.dumps({"spec": str(args.spec), "target": args.target, "pruner": args.pruner,
                                         "max_epochs": args.max_epochs, "wall_s": time.time() - t0,
                                         "load_average": os.getloadavg(), "runs": runs,
                                         "compared_with": [str(p) for p in args.fifo_from]}, indent=1))
    print(summary(runs, stored, label))
    if runs:
        print(f"\npeer: median epochs to target {statistics.median(r.get('epochs_to_target', r['epochs_trained']) for r in runs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
