"""Engine overhead: trivial trials through the whole engine vs raw Ray Tune, in one process.

    .venv/bin/python -m benchmarks.engine.throughput --trials 100 --repeats 3
    .venv/bin/python -m benchmarks.engine.throughput --quickstart
    .venv/bin/python -m benchmarks.engine.throughput --trials 60 --failing 0.5 --engine-only

Methods, all on one local Ray with 2 CPUs started once (its start-up is reported apart):
- ``raytune-default``: ``Tuner`` with Tune's defaults (fresh worker process per trial, auto loggers on).
- ``raytune-tuned``: ``reuse_actors=True`` and no automatic logger callbacks but ``JsonLoggerCallback``
  (the hand-tuned figure of field-notes.md).
- ``automl``: ``automl.search`` on a spec using the ``function`` trainer: spec, plan, searcher adapter,
  store writes, front.

Throughput is given two ways: ``_fit`` / ``_search`` over the whole ``Tuner.fit()`` /
``automl.search()`` call (set-up and teardown included), and ``_span`` from the first trial's start to
the last trial's end (the steady state). Also: the engine's wall time and seconds from ``search()`` to
the first trial running (Ray already started). ``--failing SHARE``: that share of the engine's trials raise
(``budget.max_failures: 0``), the cost of failed trials.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SPEC = """
name: throughput
trainer:
  name: function
  params: {{function: "benchmarks.engine.objectives:{function}", metrics: {{loss: min}}}}
space:
  x: {{type: float, low: 0, high: 1}}
{extra}objectives: [{{metric: loss, mode: min}}]
budget: {{trials: {trials}}}
"""


def _trivial_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    tune.report({"loss": (config["x"] - 0.5) ** 2})


def _span_callback() -> Any:
    """A Tune callback noting the first trial start and the last trial end (the span automl reports)."""
    from ray import tune

    class Span(tune.Callback):
        first: float | None = None
        last: float = 0.0

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.first = self.first or time.time()

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.last = time.time()

    return Span()


def raw_tune(trials: int, tuned: bool, storage: str) -> tuple[float, float]:
    """Trials per second over ``fit()`` and over the span first trial start -> last trial end."""
    from ray import tune
    from ray.tune import RunConfig, TuneConfig
    from ray.tune.logger import JsonLoggerCallback

    span = _span_callback()
    if tuned:
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    else:
        os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)
    tuner = tune.Tuner(
        _trivial_trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=TuneConfig(num_samples=trials, reuse_actors=tuned),
        run_config=RunConfig(storage_path=storage, verbose=0, callbacks=[span, JsonLoggerCallback()] if tuned else [span]),
    )
    start = time.perf_counter()
    results = tuner.fit()
    elapsed = time.perf_counter() - start
    assert len(results) == trials and not results.errors
    return trials / elapsed, trials / (span.last - span.first)


def engine(trials: int, workdir: Path, failing: float = 0.0) -> dict[str, float]:
    import automl

    spec = workdir / f"spec-{trials}.yaml"
    extra = f"  share: {{type: choice, values: [{failing}]}}\n" if failing else ""
    spec.write_text(SPEC.format(trials=trials, function="fails_below" if failing else "trivial", extra=extra))
    out = workdir / f"run-{time.time_ns()}"
    start = time.perf_counter()
    run = automl.search(spec, out=out)
    wall = time.perf_counter() - start
    rows = run.trials()
    assert len(rows) == trials
    assert all(r["status"] == ("failed" if r["config"]["x"] < failing else "completed") for r in rows)
    first_start = min(r["started_at"] for r in rows)
    last_end = max(r["finished_at"] for r in rows)
    summary = run.info()["summary"]
    return {
        "failed": sum(r["status"] == "failed" for r in rows),
        "trials_per_s": trials / (last_end - first_start),
        "wall_s": wall,
        "first_trial_s": summary["first_trial_s"],
    }


def quickstart() -> dict[str, float]:
    """Wall time of the README quickstart command, as a user runs it (Ray start-up included)."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [str(root / ".venv/bin/automl"), "search", str(root / "searchspaces/quickstart.yaml"), "--out", f"{tmp}/qs"],
            check=True, capture_output=True, cwd=root,
        )
        return {"quickstart_wall_s": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, nargs="+", default=[100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--default-max", type=int, default=100, help="run Tune's defaults only up to this many trials")
    parser.add_argument("--quickstart", action="store_true", help="time the quickstart command instead")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--failing", type=float, default=0.0, metavar="SHARE",
                        help="this share of the engine's trials raise (x below it)")
    parser.add_argument("--engine-only", action="store_true", help="leave raw Ray Tune out")
    args = parser.parse_args(argv)
    if args.quickstart:
        figures: dict[str, Any] = quickstart()
        print(json.dumps(figures, indent=2))
        return 0
    import ray

    from automl.plugin import start_ray

    t0 = time.perf_counter()
    start_ray(None)
    figures = {"ray_init_s": time.perf_counter() - t0, "cpus": ray.cluster_resources().get("CPU")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in args.trials:
            rows: dict[str, list[float]] = {
                "raytune-default_fit": [], "raytune-default_span": [], "raytune-tuned_fit": [],
                "raytune-tuned_span": [], "automl_span": [], "automl_search": [], "automl_wall_s": [],
                "automl_first_trial_s": [], "automl_failed": [],
            }
            for _ in range(args.repeats):
                if n <= args.default_max and not args.engine_only:  # ~0.5 trials/s: 400 would take 15 min a repeat
                    fit, span = raw_tune(n, tuned=False, storage=str(work / "raw"))
                    rows["raytune-default_fit"].append(fit)
                    rows["raytune-default_span"].append(span)
                if not args.engine_only:
                    fit, span = raw_tune(n, tuned=True, storage=str(work / "raw"))
                    rows["raytune-tuned_fit"].append(fit)
                    rows["raytune-tuned_span"].append(span)
                result = engine(n, work, args.failing)
                rows["automl_failed"].append(result["failed"])
                rows["automl_span"].append(result["trials_per_s"])
                rows["automl_search"].append(n / result["wall_s"])
                rows["automl_wall_s"].append(result["wall_s"])
                rows["automl_first_trial_s"].append(result["first_trial_s"])
            figures[f"trials={n}"] = {
                k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in rows.items() if v
            }
            print(f"{n} trials:", json.dumps(figures[f"trials={n}"], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
