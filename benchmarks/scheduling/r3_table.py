"""R3 (the torch task) as a table of learning curves: record them once, then run every multi-fidelity method on it.

    flock /work/notes/bench.lock .venv/bin/python -m benchmarks.scheduling.r3_table record --configs 300 \\
        --processes 2 --out benchmarks/scheduling/curves/r3-torch-mlp-digits-27.json
    .venv/bin/python -m benchmarks.scheduling.r3_table figure benchmarks/scheduling/curves/r3-torch-mlp-digits-27.json \\
        --seeds 30 --cost 100
    .venv/bin/python -m benchmarks.scheduling.r3_table figure TABLE --surrogate extra-trees --seeds 30 --cost 100 \\
        --fractions 0.05 0.014 0.01 [--variants --first-seed 0 --seeds 10]
    .venv/bin/python -m benchmarks.scheduling.r3_table validate TABLE
    .venv/bin/python -m benchmarks.scheduling.r3_table seconds TABLE [--start-s 0.034]
    .venv/bin/python -m benchmarks.scheduling.r3_table ceiling TABLE --repeats REPEATS [--fraction 0.02]
    .venv/bin/python -m benchmarks.scheduling.r3_table ert TABLE --repeats REPEATS --methods ... [--seeds 30 \\
        --first-seed 10 --cost 100]
    .venv/bin/python -m benchmarks.scheduling.r3_table s2 --seeds 40 --cost 40 [--methods ...] \\
        [--reduction-factor 3 --grace-period 1]

``record`` trains configurations drawn uniformly from ``searchspaces/torch-mlp-digits.yaml`` (or ``--spec``'s, a
space of numeric parameters such as ``searchspaces/torch-cnn-mnist-asha.yaml``'s 28x28 CNN; the random searcher's
draws, seed 0) with the engine's own torch trainer on the spec's split and trial seeds (the trainer a worker builds:
:meth:`automl.plan.Plan.job`), epoch by epoch for its 27 epochs, keeping each epoch's validation accuracy. No Ray, no
export: the table is what the training does, as LCBench / HPOBench / Syne Tune's blackbox repository keep it.

``figure`` runs the methods of :mod:`automl_bench.mf_figure` on the table: the engine's own searcher and scheduler
objects (``rungs:SEARCHER+SCHEDULER``), Optuna's ``TPESampler`` + ``HyperbandPruner`` used directly, and ASHA of the
promotion type through :mod:`benchmarks.scheduling.replay`. A method proposes points of the unit cube (one axis per
parameter, log axes for log parameters); a point is answered with the curve of the nearest recorded configuration
(scikit-learn's 1-nearest-neighbour regressor, the surrogate Syne Tune uses to let model-based searchers run on a
tabulated benchmark). The cost is counted in epochs (the machine-independent cost; a trial stopped at epoch 3
costs 3), one trial at a time. PBT is not among them: it changes a running trial's hyperparameters, which a table of
fixed configurations cannot answer (``benchmarks.scheduling.run speedup --arms fifo,pbt`` runs it through the engine).

With ``--surrogate`` a point is answered instead with the curve that a regressor fitted on the whole table predicts
for it (:class:`SurrogateTask`, :mod:`automl_bench.surrogate`: the HPOBench / YAHPO way, so a model-based searcher's
own proposal gets its own answer), targets taken from the surrogate's predictions for 10,000 uniform draws;
``ceiling`` says how far any method can go on a noisy table (``--repeats``): full-budget random search's exact
expected epochs per hit (ERT) and what random full trainings within the best configurations would pay; ``ert`` runs
methods on it and reports their ERT (a miss counts the whole budget), the statistic of the engine runs, which the
median hides when a searcher sometimes settles in the wrong region.

``validate`` scores the regressors on held-out configurations. ``--variants`` runs :data:`VARIANTS` (settings of
``bohb`` and of the rungs).

``s2`` is the S2 figure of :mod:`automl_bench.mf_figure` with the replay's rows added: ASHA of both types over 3,000
configurations drawn uniformly from each function's unit cube (:class:`UniformTable`), 1,000 orderings.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from automl_bench.engine_tasks import EngineTask, S2Task, unit_space

from automl.plugin import Objective

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "searchspaces" / "torch-mlp-digits.yaml"

__all__ = ["R3_METHODS", "RF6", "NoisyTableTask", "SurrogateTask", "TableTask", "UniformTable", "ceiling", "ert_rows", "main", "record", "replay_rows", "replay_seconds", "validate"]


def _plan(spec_text: str, source: str) -> Any:
    """The spec's plan through the public API (``automl.validate`` of a parsed spec, the data not read yet)."""
    import automl

    return automl.validate(automl.parse_spec(spec_text, source), data=False)


@functools.cache
def _plan_and_data(spec_text: str, source: str) -> tuple[Any, Any]:
    plan = _plan(spec_text, source)
    return plan, plan.load_data()


def _train(args: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    """One configuration's curve: the validation accuracy after each epoch, and each epoch's seconds."""
    import torch

    from automl.plugin import TrialError

    spec_text, source, number, config = args
    torch.set_num_threads(1)
    plan, data = _plan_and_data(spec_text, source)
    with_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"r3-table-{os.getpid()}"
    job = plan.job(with_dir)
    trainer = job.trainer(config, job.params, job.context(number, data))
    values, seconds = [], []
    mark = time.perf_counter()
    try:
        for _ in trainer.run_steps(1):
            values.append(float(trainer.evaluate("valid")["accuracy"]))
            now = time.perf_counter()
            seconds.append(now - mark)
            mark = now
    except TrialError as exc:  # the trainer's own refusal (a loss that became nan): the trial fails there
        return {"number": number, "config": config, "values": values, "seconds": seconds, "failed": str(exc)}
    return {"number": number, "config": config, "values": values, "seconds": seconds}


def record(configs: int, processes: int, out: Path, seed: int = 0, spec: Path = SPEC) -> dict[str, Any]:
    """Train ``configs`` configurations of ``spec`` (the random searcher's draws with ``seed``); the table so far is
    written to ``out`` every 10 configurations (a run cut short keeps what it recorded)."""
    spec_text = spec.read_text()
    plan = _plan(spec_text, str(spec))
    rows: list[dict[str, Any]] = []
    if out.is_file():  # a recording cut short goes on where it stopped (same spec and seed)
        done = json.loads(out.read_text())
        if done["spec"] == spec_text and done["seed"] == seed:
            failed = done.get("failed", {})
            rows = [{"config": c, "values": v, "seconds": t, "failed": failed.get(str(i))}
                    for i, (c, v, t) in enumerate(zip(done["configs"], done["values"], done["seconds"], strict=True))]
            print(f"going on after the {len(rows)} configurations in {out}", flush=True)
    draws = [(spec_text, str(spec), n, plan.space.sample(np.random.default_rng([seed, n])))
             for n in range(len(rows), configs)]
    t0 = time.time()
    load = os.getloadavg()

    def table() -> dict[str, Any]:
        return {"spec": spec_text, "source": str(spec.relative_to(ROOT)) if spec.is_relative_to(ROOT) else str(spec),
                "seed": seed, "metric": "accuracy", "mode": "max", "max_budget": plan.spec.trainer.params["epochs"],
                "load_average_before": load, "load_average": os.getloadavg(), "recorded": time.strftime("%Y-%m-%d %H:%M"),
                "wall_s": time.time() - t0, "configs": [r["config"] for r in rows],
                "values": [r["values"] for r in rows], "seconds": [r["seconds"] for r in rows],
                "failed": {str(i): r["failed"] for i, r in enumerate(rows) if r.get("failed")}}

    def write(doc: dict[str, Any]) -> None:  # whole or not at all: a kill leaves the last table written
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(out)

    out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(processes) as pool:
        for row in pool.map(_train, draws):
            rows.append(row)
            if len(rows) % 5 == 0:
                write(table())
                print(f"{len(rows)}/{configs} configurations, {time.time() - t0:.0f} s", flush=True)
    doc = table()
    write(doc)
    return doc


# -- the table as a task of automl_bench.mf_figure ---------------------------------------------------------------


class TableTask(S2Task):
    """The recorded table shaped as an S2 task, so that the in-process methods of :mod:`automl_bench.mf_figure`
    (``rungs:``, ``optuna:``) run it unchanged: one unit-cube axis per parameter (log axes for log parameters),
    ``loss`` = 1 - the validation accuracy at the budget step of the recorded configuration nearest the point."""

    def __init__(self, table: Mapping[str, Any], name: str = "r3-table") -> None:
        from sklearn.neighbors import KNeighborsRegressor

        EngineTask.__init__(self, name, "r3", (Objective("loss", "min"),), max_steps=int(table["max_budget"]),
                            cost_unit="epochs", options={})
        self.params = _plan(table["spec"], str(ROOT / table.get("source", SPEC))).space
        self.names = list(self.params)
        self.space = unit_space(len(self.names))
        full = [i for i, v in enumerate(table["values"]) if len(v) == self.max_steps]
        self.losses = 1.0 - np.asarray([table["values"][i] for i in full], dtype=float)
        points = np.asarray([self.encode(table["configs"][i]) for i in full])
        # scikit-learn's 1-NN (Syne Tune's surrogate for tabulated benchmarks): a point gets the nearest
        # recorded configuration's curve, so every value a method sees is one a real trial reported.
        self.knn = KNeighborsRegressor(n_neighbors=1).fit(points, np.arange(len(points)))
        self.optimum = float(self.losses[:, -1].min())
        self._nearest: dict[tuple[float, ...], int] = {}

    def encode(self, config: Mapping[str, Any]) -> list[float]:
        out = []
        for name in self.names:
            param = self.params[name]
            low, high, value = float(param.low), float(param.high), float(config[name])
            if getattr(param, "log", False):
                low, high, value = math.log(low), math.log(high), math.log(value)
            out.append((value - low) / (high - low))
        return out

    def nearest(self, point: Mapping[str, Any]) -> int:
        key = tuple(float(point[n]) for n in self.names)
        if key not in self._nearest:
            self._nearest[key] = int(self.knn.predict(np.asarray([key]))[0])
        return self._nearest[key]

    def function(self) -> Callable[..., dict[str, float]]:
        def loss(point: Mapping[str, Any], step: int = 0) -> dict[str, float]:
            return {"loss": float(self.losses[self.nearest(point), (step or self.max_steps) - 1])}

        return loss

    def target_loss(self, fraction: float) -> float:
        """The final loss that ``fraction`` of the recorded (uniformly drawn) configurations reach."""
        return float(np.quantile(self.losses[:, -1], fraction, method="lower"))


class NoisyTableTask(TableTask):
    """The table with several trainings (seeds) per configuration: a point gets the curve of one training, drawn per
    point, of the nearest recorded configuration (the way Syne Tune's blackbox repository serves NAS-Bench-201 or
    FCNet, whose tables hold several seeds per configuration), so a method pays the seed-to-seed draw a real trial
    pays: through the engine each trial trains with its own seed, and R3's top is a few validation rows
    (:mod:`benchmarks.scheduling.retrain`).

    ``repeats`` is what ``retrain --json`` writes: rows of the table trained again with other trial numbers, their
    curves kept. A configuration's trainings are its recorded curve and its retrained full-length ones; which one
    answers a point is drawn from the point itself (a hash of its coordinates), so the same point always gets the
    same curve and a method's proposals, not the order of its calls, decide. ``losses`` holds every training (one row
    each): targets are the share of trainings that reach them, and the replay's random search draws trainings.
    """

    def __init__(self, table: Mapping[str, Any], repeats: Mapping[str, Any], name: str = "r3-noisy-table") -> None:
        super().__init__(table, name=name)
        full = [i for i, v in enumerate(table["values"]) if len(v) == self.max_steps]
        again: dict[int, list[list[float]]] = {}
        for row in repeats["rows"]:
            curves = [c for c, f in zip(row["curves"], row.get("failed") or [None] * len(row["curves"]), strict=True)
                      if len(c) == self.max_steps and not f]
            again.setdefault(int(row["row"]), []).extend(curves)
        #: per nearest-neighbour index (the table's full rows, in order): every training's loss curve.
        self.trainings = [np.vstack([1.0 - np.asarray(table["values"][i], dtype=float)]
                                    + [1.0 - np.asarray(c, dtype=float) for c in again.get(i, [])]) for i in full]
        self.losses = np.vstack(self.trainings)
        self._drawn: dict[tuple[float, ...], int] = {}

    def training(self, point: Mapping[str, Any]) -> np.ndarray:
        """The loss curve that answers ``point``: one training of its nearest configuration, drawn from the point."""
        key = tuple(float(point[n]) for n in self.names)
        runs = self.trainings[self.nearest(point)]
        if key not in self._drawn:
            digest = hashlib.sha256(np.asarray(key, dtype=np.float64).tobytes()).digest()
            self._drawn[key] = int.from_bytes(digest[:8], "little") % len(runs)
        return runs[self._drawn[key]]

    def function(self) -> Callable[..., dict[str, float]]:
        def loss(point: Mapping[str, Any], step: int = 0) -> dict[str, float]:
            return {"loss": float(self.training(point)[(step or self.max_steps) - 1])}

        return loss


class SurrogateTask(TableTask):
    """R3 as a surrogate benchmark (HPOBench / YAHPO style): a point is answered with the learning curve that a
    regressor fitted on the whole table predicts for it (:class:`automl_bench.surrogate.CurveSurrogate`), so a
    model-based searcher's own proposal gets its own answer instead of a recorded neighbour's.

    A point of the unit cube is first mapped onto a configuration of the space (integers rounded, as a trial would
    run it) and encoded back. Targets and the optimum come from the surrogate's own distribution: ``losses`` holds
    the predicted curves of ``samples`` uniformly drawn points (what random search draws; seed ``sample_seed``), so
    :meth:`TableTask.target_loss` and :func:`replay_rows` read them as they read the recorded table.
    """

    def __init__(self, table: Mapping[str, Any], *, model: str = "extra-trees", seed: int = 0, samples: int = 10_000,
                 sample_seed: int = 10, name: str = "r3-surrogate") -> None:
        from automl_bench.surrogate import CurveSurrogate

        super().__init__(table, name=name)
        full = [i for i, v in enumerate(table["values"]) if len(v) == self.max_steps]
        self.recorded = self.losses
        self.surrogate = CurveSurrogate([self.encode(table["configs"][i]) for i in full], self.recorded, model=model,
                                        seed=seed)
        draws = np.random.default_rng(sample_seed).random((samples, len(self.names)))
        self.losses = self.surrogate.predict([self.snap(p) for p in draws])
        self.optimum = float(self.losses[:, -1].min())
        self._curves: dict[tuple[float, ...], np.ndarray] = {}

    def snap(self, point: Sequence[float]) -> list[float]:
        """The encoding of the configuration the unit-cube ``point`` stands for (integers rounded)."""
        return self.encode({n: self.params[n].from_unit(float(u)) for n, u in zip(self.names, point, strict=True)})

    def function(self) -> Callable[..., dict[str, float]]:
        def loss(point: Mapping[str, Any], step: int = 0) -> dict[str, float]:
            key = tuple(float(point[n]) for n in self.names)
            if key not in self._curves:  # one prediction per configuration: its whole curve
                self._curves[key] = self.surrogate.predict([self.snap(key)])[0]
            return {"loss": float(self._curves[key][(step or self.max_steps) - 1])}

        return loss


def validate(table: Mapping[str, Any]) -> str:
    """A Markdown table: each surrogate's held-out scores on the table (:func:`automl_bench.surrogate.held_out`)."""
    from automl_bench.surrogate import MODELS, held_out

    task = TableTask(table)
    full = [i for i, v in enumerate(table["values"]) if len(v) == task.max_steps]
    points = [task.encode(table["configs"][i]) for i in full]
    lines = ["| model | fitted on | Spearman @1 | @3 | @9 | @27 (final) | final, best quarter | best 10% found | "
             "MAE final |", "|---|---|---|---|---|---|---|---|---|"]
    for model in MODELS:
        for log_offset in ((1e-3, None) if model != "nearest" else (None,)):
            h = held_out(points, task.losses, model=model, log_offset=log_offset)
            rho = " | ".join(f"{h.spearman[s]:.3f}" for s in (1, 3, 9, task.max_steps))
            lines.append(f"| {model} | {'log(error + 0.001)' if log_offset else 'error'} | {rho} | "
                         f"{h.spearman_best_quarter:.3f} | {h.top_overlap:.2f} | {h.mae:.4f} |")
    return "\n".join(lines)


def replay_rows(task: Any, targets: Mapping[float, float], budget: int, orderings: int = 1000, *,
                reduction_factor: float = 3, grace_period: int = 1) -> dict[str, Any]:
    """Random search over the recorded configurations (``orderings`` random orderings of them) through
    :func:`benchmarks.scheduling.replay.simulate`, one trial at a time: fifo and ASHA of both types (the engine's
    own ``RungScheduler``, grace 1, reduction factor 3). The cost to each target in epochs, without a cost budget
    (``budget`` is not applied: the orderings run until the target is reached, so their medians are exact)."""
    from benchmarks.scheduling.replay import Curves, simulate

    losses = task.losses.tolist()
    curves = Curves("loss", "min", task.max_steps, 1, losses, [[1.0] * task.max_steps for _ in losses], 0.0)
    rows: dict[str, Any] = {}
    for arm in ("fifo", "stopping", "promotion"):
        costs: dict[float, list[int | None]] = {}
        for fraction, target in targets.items():
            costs[fraction] = []
            for seed in range(orderings):
                order = [int(i) for i in np.random.default_rng([seed, 7]).permutation(len(losses))]
                outcome = simulate(curves, order, target, arm, reduction_factor=reduction_factor,
                                   grace_period=grace_period)
                # No cost budget here: an ordering runs until a configuration reaches the target (each does).
                costs[fraction].append(outcome.steps if outcome.reached else None)
        name = {"fifo": "replay:random+fifo", "stopping": "replay:random+asha", "promotion": "replay:random+asha-promotion"}
        rows[name[arm]] = {"costs": costs}
    return rows


def replay_seconds(table: Mapping[str, Any], fractions: Sequence[float], *, start_s: float = 0.034,
                   orderings: int = 1000) -> str:
    """The replay's time-to-target in the recorded seconds of each epoch rather than in epochs (configurations differ
    in seconds per epoch; a promoted trial's restart costs ``start_s``: 0.034 s is the median a real engine run
    measured, ``curves/torch-mlp-digits-27-seed0.json``), beside the epochs: a Markdown table."""
    from benchmarks.scheduling.replay import Curves, simulate

    task = TableTask(table)
    full = [i for i, v in enumerate(table["values"]) if len(v) == task.max_steps]
    losses = task.losses.tolist()
    curves = Curves("loss", "min", task.max_steps, 1, losses, [table["seconds"][i] for i in full], start_s)
    orders = [[int(i) for i in np.random.default_rng([seed, 7]).permutation(len(losses))] for seed in range(orderings)]
    lines = [f"| target (share of recorded configurations) | fifo | ASHA stopping | ASHA promotion (restart {start_s} s) |",
             "|---|---|---|---|"]
    for fraction in fractions:
        target = task.target_loss(fraction)
        share = float(np.mean(task.losses[:, -1] <= target))
        cells = []
        for arm in ("fifo", "stopping", "promotion"):
            outs = [simulate(curves, order, target, arm) for order in orders]
            cells.append((statistics.median(o.seconds for o in outs), statistics.median(o.steps for o in outs)))
        fifo_s, fifo_e = cells[0]
        lines.append(f"| {1 - target:.4f} ({share:.1%}) | {fifo_s:.0f} s, {fifo_e:g} epochs | " + " | ".join(
            f"{sec:.0f} s ({fifo_s / sec:.1f}x), {ep:g} epochs ({fifo_e / ep:.1f}x)" for sec, ep in cells[1:]) + " |")
    return "\n".join(lines)


class UniformTable:
    """Curves of ``n`` configurations drawn uniformly from an S2 task's unit cube (what random search draws), for
    :func:`replay_rows` on S2: ``losses[i][step - 1]``."""

    def __init__(self, task: Any, n: int = 3000, seed: int = 123) -> None:
        fn = task.function()
        points = np.random.default_rng(seed).random((n, len(task.names)))
        self.max_steps = int(task.max_steps)
        self.losses = np.asarray([[fn(dict(zip(task.names, p, strict=True)), s)["loss"]
                                   for s in range(1, self.max_steps + 1)] for p in points])


PROMOTION = {"scheduler": {"type": "promotion"}}
SYNCHRONOUS = {"scheduler": {"type": "synchronous"}}
GP_BOHB: dict[str, Any] = {"model": "gp", "random_fraction": 0.1}
R3_METHODS: tuple[str | tuple[str, str, dict[str, Any]], ...] = (
    "rungs:random+fifo", "rungs:random+asha", ("rungs:random+asha-promotion", "rungs:random+asha", PROMOTION),
    "rungs:random+hyperband", "rungs:tpe+fifo", "rungs:tpe+asha", "rungs:bohb+asha",
    ("rungs:bohb+asha-promotion", "rungs:bohb+asha", PROMOTION), "rungs:bohb+hyperband", "optuna:tpe+hyperband",
    *((f"rungs:{s}+hyperband-synchronous", f"rungs:{s}+hyperband", SYNCHRONOUS) for s in ("random", "tpe", "bohb")),
    # BOHB with a Gaussian process per budget instead of TPE (twenty-third session; its settings decided on S2's
    # seeds 0-9, benchmarks/scheduling/RESULTS.md).
    ("rungs:bohb-gp+asha-promotion", "rungs:bohb+asha", {"searcher": GP_BOHB, **PROMOTION}),
    ("rungs:bohb-gp+hyperband-synchronous", "rungs:bohb+hyperband", {"searcher": GP_BOHB, **SYNCHRONOUS}))


#: Settings of the model-based multi-fidelity searcher and of the rungs looked at for issue 20's goals (decided on
#: seeds 0-9, reported on 10-39): BOHB's min points per budget model and random fraction, the reduction factor and
#: the grace period, under the promotion type (better than the stopping type for every method in the figures).
VARIANTS: tuple[str | tuple[str, str, dict[str, Any]], ...] = (
    "rungs:random+fifo", ("rungs:random+asha-promotion", "rungs:random+asha", PROMOTION),
    ("rungs:tpe+asha-promotion", "rungs:tpe+asha", PROMOTION), "rungs:bohb+asha",
    ("rungs:bohb+asha-promotion", "rungs:bohb+asha", PROMOTION),
    *((f"rungs:bohb+asha-promotion[{key}={value}]", "rungs:bohb+asha",
       {"searcher": {key: value}, **PROMOTION} if key in ("min_points", "random_fraction")
       else {"scheduler": {key: value, **PROMOTION["scheduler"]}})
      for key, value in (("min_points", 20), ("random_fraction", 0.1), ("reduction_factor", 4), ("grace_period", 3))),
)

#: Promotion-type ASHA with reduction factor 6 under each searcher (twenty-sixth session, the ``ert`` screen): on the
#: noisy table the p >= 0.5 configurations are all in the best 8% at epoch 1, so a sharper first rung was worth a look.
RF6: tuple[tuple[str, str, dict[str, Any]], ...] = tuple(
    (f"rungs:{s}+asha-promotion[reduction_factor=6]", f"rungs:{s}+asha",
     {"scheduler": {"reduction_factor": 6, **PROMOTION["scheduler"]}}) for s in ("random", "tpe", "bohb"))


def _fifo_ert(losses: np.ndarray, target: float, steps: int) -> float:
    """Full-budget random search's exact expected epochs per hit over recorded trainings: the epochs of a full
    training over the share of trainings whose final loss reaches ``target`` (inf when none does)."""
    share = float(np.mean(losses[:, -1] <= target))
    return steps / share if share else math.inf


def ceiling(task: NoisyTableTask, fraction: float, best: Sequence[int] = (3, 6, 10, 15, 30)) -> str:
    """How far any method can go on the noisy table, as Markdown: full-budget random search's exact expected epochs
    per hit (ERT: 27 epochs over the share of trainings whose final value reaches the target), each configuration's
    hit rate over its trainings, and the ERT of full trainings drawn at random from the ``best`` m configurations by
    hit rate: what a method that knew that region from its first epoch would pay, so ``fifo ERT / 10`` minus it is
    what a method has left to find the region if it is to be 10x faster. And how well one training's value at epoch 1,
    3 and 9 ranks the configurations that hit at least half the time (their rank quantiles: 0 is the best)."""
    target = task.target_loss(fraction)
    steps = task.max_steps
    rates = np.array([float(np.mean(t[:, -1] <= target)) for t in task.trainings])
    fifo = _fifo_ert(task.losses, target, steps)
    if math.isinf(fifo):
        return f"no training reaches {1 - target:.4f}"
    share = steps / fifo
    order = np.argsort(-rates, kind="stable")
    lines = [f"Target {1 - target:.4f} (the top {100 * fraction:g}% of trainings): {share:.1%} of {len(task.losses)} "
             f"trainings of {len(rates)} configurations reach it; full-budget random search's ERT {fifo:.0f} epochs "
             f"per hit, so 10x is {fifo / 10:.0f}. {int((rates > 0).sum())} configurations ever reach it, "
             f"{int((rates >= 0.5).sum())} in at least half their trainings; the best hit rates: "
             f"{', '.join(f'{r:.2f}' for r in rates[order[:max(best)]] if r > 0)}.", "",
             "| region known from the start | hit rate | ERT, epochs | speedup | left to find it at 10x |",
             "|---|---|---|---|---|"]
    for m in best:
        rate = float(rates[order[:m]].mean())
        ert = steps / rate if rate else math.inf
        lines.append(f"| best {m} configurations ({100 * m / len(rates):.1f}%) | {rate:.2f} | {ert:.0f} | "
                     f"{fifo / ert:.1f}x | {round(fifo / 10 - ert)} epochs |")
    lines += ["", _screen_bound(task.losses, target, steps)]
    good = rates >= 0.5
    if good.any():
        lines.append("")
        for step in (1, 3, 9):
            one = np.array([t[0, step - 1] for t in task.trainings])  # one training each: what a trial sees
            quantile = np.argsort(np.argsort(one, kind="stable"), kind="stable") / len(one)
            lines.append(f"- epoch {step}: the rank quantiles of the {int(good.sum())} configurations hitting at least "
                         f"half the time, by one training's value: {', '.join(f'{q:.2f}' for q in np.sort(quantile[good]))}")
    return "\n".join(lines)


def _screen_bound(losses: np.ndarray, target: float, steps: int) -> str:
    """The best that random proposals with early stopping can do: every training taken as a trial (a random
    configuration with a random seed), screened at epochs 1, 3 and 9 with thresholds chosen in hindsight (the given
    share of trials with the lowest loss at that epoch goes on, ties at the threshold too), the survivors trained to
    the end. Its ERT is epochs per surviving trial over their hit rate; the keep shares that give the lowest are
    searched over a grid, so this is an optimistic bound for ASHA and HyperBand at those rungs under random search (they set their
    thresholds online and keep a fixed 1/rf), not a method."""
    hits = losses[:, -1] <= target
    rungs = [r for r in (1, 3, 9) if r < steps]
    best: tuple[float, tuple[float, ...], float] = (math.inf, (), 0.0)
    for keep in itertools.product((0.03, 0.05, 0.1, 0.2, 1 / 3, 0.5, 1.0), repeat=len(rungs)):
        # Epochs per trial that reaches the end: each rung's epochs paid by every trial that got to that rung, counted
        # as they are (validation accuracies tie, so a threshold may let more than its share through).
        alive, spent, start = np.ones(len(losses), dtype=bool), 0.0, 0
        for rung, share in zip(rungs, keep, strict=True):
            spent += (rung - start) * int(alive.sum())
            alive &= losses[:, rung - 1] <= np.quantile(losses[alive, rung - 1], share)
            start = rung
        if not hits[alive].any():
            continue
        rate = float(hits[alive].mean())
        ert = (spent / int(alive.sum()) + steps - start) / rate
        if ert < best[0]:
            best = (ert, keep, rate)
    fifo = _fifo_ert(losses, target, steps)
    ert, keep, rate = best
    return (f"Random proposals screened at epochs {', '.join(map(str, rungs))} with thresholds chosen in hindsight "
            f"(best keep shares {', '.join(f'{k:.2g}' for k in keep)}; {rate:.0%} of the survivors hit): ERT "
            f"{ert:.0f} epochs, {fifo / ert:.1f}x, an optimistic bound for early stopping under random search.")


def ert_rows(task: Any, methods: Sequence[str | tuple[str, str, Mapping[str, Any]]], seeds: Sequence[int],
             cost: int, fraction: float) -> str:
    """Each method's ERT on the table (every seed's epochs to the target, a miss counted as the whole budget, over
    the hits: the statistic the engine runs report) beside full-budget random search's exact ERT, as Markdown.
    The median alone hides a searcher that sometimes settles in the wrong region and never gets there."""
    from automl_bench.engine_methods import make_engine_method
    from automl_bench.mf_figure import cost_to_target

    target = task.target_loss(fraction)
    fifo = _fifo_ert(task.losses, target, task.max_steps)
    budget = cost * task.max_steps
    lines = [f"Target {1 - target:.4f} (top {100 * fraction:g}%); full-budget random search's exact ERT {fifo:.0f} "
             f"epochs; seeds {seeds[0]}-{seeds[-1]}; {budget} epochs per run at most; one trial at a time.", "",
             "| method | hits | median epochs | ERT, epochs (speedup) |", "|---|---|---|---|"]
    for entry in methods:
        label, registered, options = (entry, entry, None) if isinstance(entry, str) else entry
        method = make_engine_method(registered, options)
        costs = [cost_to_target(method.run(task, iterations=cost, batch=1, seed=s), target) for s in seeds]
        hits = [c for c in costs if c is not None]
        spent = sum(hits) + (len(costs) - len(hits)) * budget
        ert = spent / len(hits) if hits else math.inf
        median = statistics.median(c if c is not None else math.inf for c in costs)
        lines.append(f"| {label} | {len(hits)}/{len(costs)} | {'>' + str(budget) if math.isinf(median) else f'{median:g}'}"
                     f" | {ert:.0f} ({fifo / ert:.1f}x) |")
        print(f"{label}: {len(hits)} hits", file=sys.stderr, flush=True)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--configs", type=int, default=400)
    rec.add_argument("--processes", type=int, default=2)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--spec", type=Path, default=SPEC, help="the spec whose space is drawn (numeric parameters "
                     "only: the table's unit cube has one axis per parameter)")
    fig = sub.add_parser("figure")
    fig.add_argument("table", type=Path)
    fig.add_argument("--seeds", type=int, default=10)
    fig.add_argument("--cost", type=int, default=60, help="full-trial equivalents (of 27 epochs) per run")
    fig.add_argument("--methods", nargs="+", default=list(R3_METHODS),
                     help="registered methods, or labels of R3_METHODS / VARIANTS (rungs:bohb+asha-promotion...)")
    fig.add_argument("--variants", action="store_true", help="run VARIANTS (settings of bohb and the rungs) "
                     "instead of --methods")
    fig.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST + SEEDS - 1")
    fig.add_argument("--fractions", nargs="+", type=float, default=[0.05, 0.01],
                     help="targets: the share of uniformly drawn configurations that reach each")
    fig.add_argument("--repeats", type=Path, help="retrain --json output of this table: answer each point with one of "
                     "its nearest configuration's trainings (NoisyTableTask) instead of the recorded one")
    fig.add_argument("--surrogate", choices=["extra-trees", "random-forest"],
                     help="answer each point with this regressor's predicted curve (SurrogateTask) instead of the "
                     "nearest recorded configuration's")
    val = sub.add_parser("validate", help="how well each surrogate predicts held-out configurations of the table "
                         "(5 folds over configurations)")
    val.add_argument("table", type=Path)
    sec = sub.add_parser("seconds", help="the replay's time-to-target in recorded seconds beside epochs")
    sec.add_argument("table", type=Path)
    sec.add_argument("--fractions", nargs="+", type=float, default=[0.05, 0.014, 0.003])
    sec.add_argument("--start-s", type=float, default=0.034, help="seconds a promoted trial's restart costs")
    s2 = sub.add_parser("s2", help="the S2 figure of automl_bench.mf_figure, with the replay's rows (ASHA of both "
                        "types over 3,000 uniformly drawn configurations, each seed one ordering)")
    s2.add_argument("--seeds", type=int, default=20)
    s2.add_argument("--cost", type=int, default=40)
    s2.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST + SEEDS - 1")
    s2.add_argument("--methods", nargs="+", help="default: those of automl_bench.mf_figure (labels of R3_METHODS and "
                    "VARIANTS too)")
    s2.add_argument("--reduction-factor", type=float, default=3, help="of the replay's ASHA")
    s2.add_argument("--grace-period", type=int, default=1, help="of the replay's ASHA")
    for name, text in (("ceiling", "how far any method can go on a noisy table: full-budget random search's exact "
                        "ERT and the ERT of random full trainings within the best configurations"),
                       ("ert", "each method's ERT on a noisy table (misses count the whole budget) beside full-budget "
                        "random search's exact ERT")):
        sub_parser = sub.add_parser(name, help=text)
        sub_parser.add_argument("table", type=Path)
        sub_parser.add_argument("--repeats", type=Path, required=True, help="retrain --json output of this table")
        sub_parser.add_argument("--fraction", type=float, default=0.02,
                                help="the target: the share of trainings that reach it (0.02: R3's 0.983)")
        if name == "ert":
            sub_parser.add_argument("--methods", nargs="+", required=True,
                                    help="registered methods, or labels of R3_METHODS / VARIANTS / RF6")
            sub_parser.add_argument("--seeds", type=int, default=30)
            sub_parser.add_argument("--first-seed", type=int, default=10, help="seeds FIRST .. FIRST + SEEDS - 1")
            sub_parser.add_argument("--cost", type=int, default=100, help="full-trial equivalents (of 27 epochs) per run")
    args = parser.parse_args(argv)
    from automl_bench.base import BenchmarkError

    try:
        return _dispatch(args, parser)
    except BenchmarkError as exc:  # an unknown method, searcher, scheduler or option: the valid ones, no traceback
        parser.exit(2, f"r3_table: {exc}\n")


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the parsed command of :func:`main`."""
    # A label of R3_METHODS or VARIANTS stands for its method with options (rungs:bohb+asha-promotion...).
    known = {m if isinstance(m, str) else m[0]: m for m in (*R3_METHODS, *VARIANTS, *RF6)}
    if args.command in ("ceiling", "ert"):
        if args.command == "ert" and (args.seeds < 1 or args.cost < 1):
            parser.error("ert: --seeds and --cost must be at least 1")
        noisy = NoisyTableTask(json.loads(args.table.read_text()), json.loads(args.repeats.read_text()))
        if args.command == "ceiling":
            print(ceiling(noisy, args.fraction))
            return 0
        t0 = time.time()
        print(ert_rows(noisy, [known.get(m, m) for m in args.methods],
                       list(range(args.first_seed, args.first_seed + args.seeds)), args.cost, args.fraction))
        print(f"({time.time() - t0:.0f} s)")
        return 0
    if args.command == "s2":
        from automl_bench.mf_figure import DEFAULT_METHODS, figure

        t0 = time.time()
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        methods: Sequence[str | tuple[str, str, dict[str, Any]]] = \
            [known.get(m, m) for m in args.methods] if args.methods else DEFAULT_METHODS
        print(figure(["s2-branin", "s2-hartmann3"], methods, seeds, args.cost,
                     extra_rows=lambda t, targets, budget: replay_rows(
                         UniformTable(t), targets, budget, reduction_factor=args.reduction_factor,
                         grace_period=args.grace_period)))
        load = os.getloadavg()
        print(f"({time.time() - t0:.0f} s; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
        return 0
    if args.command == "seconds":
        print(replay_seconds(json.loads(args.table.read_text()), args.fractions, start_s=args.start_s))
        return 0
    if args.command == "validate":
        print(validate(json.loads(args.table.read_text())))
        return 0
    if args.command == "figure":
        from automl_bench.mf_figure import figure

        t0 = time.time()
        table = json.loads(args.table.read_text())
        if args.surrogate and args.repeats:
            raise SystemExit("figure: --surrogate or --repeats, not both")
        task = (SurrogateTask(table, model=args.surrogate) if args.surrogate
                else NoisyTableTask(table, json.loads(args.repeats.read_text())) if args.repeats else TableTask(table))
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        methods = VARIANTS if args.variants else tuple(known.get(m, m) for m in args.methods)
        print(figure([task], methods, seeds, args.cost, fractions=args.fractions,
                     extra_rows=lambda t, targets, budget: replay_rows(t, targets, budget)))
        load = os.getloadavg()
        print(f"({len(task.losses)} {'sampled' if args.surrogate else 'recorded'} curves; {time.time() - t0:.0f} s; "
              f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
        return 0
    if args.command == "record":
        doc = record(args.configs, args.processes, args.out, args.seed, args.spec.resolve())
        print(f"{len(doc['values'])} curves -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
