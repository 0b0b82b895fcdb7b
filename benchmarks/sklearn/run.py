"""Tabular benchmark: automl's sklearn trainer against scikit-learn's RandomizedSearchCV.

    nice -n 10 .venv/bin/python -m benchmarks.sklearn.run                       # 5 data sets x 3 seeds
    nice -n 10 .venv/bin/python -m benchmarks.sklearn.run --datasets iris wine --seeds 0
    .venv/bin/python -m benchmarks.sklearn.run --report                         # only rewrite RESULTS.md

Protocol, the same for every method (one data set, one seed):
- the engine's split (``automl.data.split``, seed = the seed): 20% test rows held out; the other rows
  are scored by 3-fold cross-validation (stratified for classification) with identical folds for
  every method; the selected configuration is refitted on all of them and scored once on the test rows;
- the same preprocessing (the plugin's default: mean imputation, standard scaling, one-hot encoding);
- the same search space (:mod:`benchmarks.sklearn.space`) and budget (50 configurations), random search;
- 2 workers on the 2 cores (automl: 2 concurrent trials of 1 CPU; RandomizedSearchCV: ``n_jobs=2``),
  BLAS/OpenMP pools at one thread each.

Methods: ``rscv`` (RandomizedSearchCV over the single models), ``automl`` (the same space through
``automl.search``), ``automl+ens`` (the same space plus voting / stacking / bagging ensembles whose
members are the best trials so far, within the same 50 trials). Primary score: accuracy
(classification) or R2 (diabetes). Each (data set, seed, method) result is kept as JSON under
``benchmarks/results/sklearn/`` (not versioned), so data sets can be run in separate calls;
``RESULTS.md`` is rebuilt from every result found there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.sklearn.space import FIXED, SPACES, automl_space, sklearn_distributions

DATASETS = {"iris": "classification", "wine": "classification", "breast_cancer": "classification",
            "digits": "classification", "diabetes": "regression"}
PRIMARY = {"classification": "accuracy", "regression": "r2"}
FOLDS = 3
METHODS = ("rscv", "automl", "automl+ens")
ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "benchmarks" / "results" / "sklearn"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _splits(name: str, task: str, seed: int) -> Any:
    from automl_sklearn.datasets import load

    from automl.plugin import split

    return split(load(name, {}), task, valid=0.2, test=0.2, seed=seed, folds=FOLDS)


def run_rscv(name: str, task: str, seed: int, trials: int) -> dict[str, Any]:
    """RandomizedSearchCV over the single-model space, on the engine's split and folds."""
    from automl_sklearn.build import make_estimator
    from automl_sklearn.preprocess import preprocessor
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    data = _splits(name, task, seed)
    X = pd.concat([data.train.X, data.valid.X], ignore_index=True)
    y = pd.concat([data.train.y, data.valid.y], ignore_index=True)
    make = {m: make_estimator(m, task, {}, FIXED[task], seed=seed, cpus=1)[0] for m in SPACES[task]}
    pipeline = Pipeline([("prep", preprocessor(X, task, {}, {}, seed=seed)), ("model", make["linear"])])
    cv = (StratifiedKFold if task == "classification" else KFold)(FOLDS, shuffle=True, random_state=seed)
    metric = PRIMARY[task]
    search = RandomizedSearchCV(pipeline, sklearn_distributions(task, make), n_iter=trials, scoring=metric, cv=cv,
                                n_jobs=2, random_state=seed, refit=True, error_score=np.nan)
    start = time.time()
    with threadpool_limits(limits=1):
        search.fit(X, y)
        test = float(get_scorer(metric)(search.best_estimator_, data.test.X, data.test.y))
    wall = time.time() - start
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    best_model = type(search.best_params_["model"]).__name__
    return {"valid": float(search.best_score_), "test": test, "wall_s": wall, "trials": trials,
            "failed": int(np.isnan(scores).sum()), "best_model": best_model}


def run_automl(name: str, task: str, seed: int, trials: int, ensembles: bool, work: Path) -> dict[str, Any]:
    """``automl.search`` over the same space (plus ensembles of the best trials so far when asked)."""
    import automl

    metric = PRIMARY[task]
    label = f"{name}-{seed}-{'ens' if ensembles else 'single'}"
    spec: dict[str, Any] = {
        "name": label,
        "task": task,
        "data": {"dataset": name, "folds": FOLDS, "validation": 0.2, "test": 0.2},
        "trainer": {"name": "sklearn", "params": dict(FIXED[task])},
        "searcher": {"name": "random"},
        "space": automl_space(task, ensembles),
        "objectives": [{"metric": metric, "mode": "max"}],
        "budget": {"trials": trials},
        "resources": {"cpu": 1},
        "seed": seed,
    }
    path = work / f"{label}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    start = time.time()
    run = automl.search(path, out=work / label)
    wall = time.time() - start
    rows = run.trials()
    done = [t for t in rows if t["status"] == "completed" and metric in (t["metrics"] or {})]

    def best(candidates: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        if not candidates:
            return None
        top = max(candidates, key=lambda t: (t["metrics"][metric], -t["number"]))
        return {"valid": top["metrics"][metric], "test": top["metrics"].get(f"test_{metric}"),
                "model": top["config"]["model"], "number": top["number"]}

    singles = [t for t in done if t["config"]["model"] in SPACES[task]]
    ensembles_done = [t for t in done if t["config"]["model"] not in SPACES[task]]
    overall = best(done)
    assert overall is not None, f"no trial completed in {run.dir}"
    failed = [t for t in rows if t["status"] == "failed"]
    return {
        "valid": overall["valid"], "test": overall["test"], "wall_s": wall, "trials": len(rows),
        "failed": len(failed), "best_model": overall["model"],
        "best_single": best(singles), "best_ensemble": best(ensembles_done),
        "ensemble_trials": sum(t["config"]["model"] not in SPACES[task] for t in rows),
        "ensemble_failed": sum(t["config"]["model"] not in SPACES[task] for t in failed),
        "failure_reasons": sorted({(t["error"] or "")[:120] for t in failed}),
        # Time inside trials (fit, score, export), summed over trials: the rest of the wall time on the
        # 2 workers is the engine's own (Ray scheduling, store, front).
        "trial_s": sum(t["duration"] or 0.0 for t in rows),
        "seconds_by_model": {
            m: round(sum(t["duration"] or 0.0 for t in rows if t["config"]["model"] == m), 1)
            for m in sorted({t["config"]["model"] for t in rows})
        },
    }


# -- report ------------------------------------------------------------------------------------


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.median(values):.4f} [{min(values):.4f}, {max(values):.4f}]"


def _load_raw() -> dict[tuple[str, int, str], dict[str, Any]]:
    out = {}
    for path in sorted(RAW.glob("*.json")):
        doc = json.loads(path.read_text())
        out[(doc["dataset"], int(doc["seed"]), doc["method"])] = doc
    return out


def report() -> str:
    raw = _load_raw()
    versions = sorted({json.dumps({k: v for k, v in d["env"].items() if k not in ("commit", "date")}, sort_keys=True)
                       for d in raw.values()})
    commits = sorted({d["env"]["commit"] for d in raw.values()})
    dates = sorted({d["env"]["date"] for d in raw.values()})
    loads = [x for d in raw.values() for x in d.get("load_before_after", [])]
    lines = [
        "# Tabular benchmark: automl (sklearn trainer) vs RandomizedSearchCV",
        "",
        "Written by `nice -n 10 .venv/bin/python -m benchmarks.sklearn.run` (protocol in its docstring): per data set",
        f"and seed, {FOLDS}-fold CV over the engine's train + validation rows (the same folds for every method), 20% test",
        "rows held out, the same space and preprocessing, 50 random configurations, 2 workers on 2 shared cores.",
        "Scores: accuracy (classification), R2 (diabetes). Cells: median [min, max] over the seeds run.",
        "",
        "## Best configuration found",
        "",
        "| data set | method | seeds | CV score of the best | its test score | failed trials | wall s | wall vs rscv |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in DATASETS:
        rscv_wall = {s: d["wall_s"] for (n, s, m), d in raw.items() if n == name and m == "rscv"}
        for method in METHODS:
            docs = [d for (n, _s, m), d in sorted(raw.items()) if n == name and m == method]
            if not docs:
                continue
            ratios = [d["wall_s"] / rscv_wall[d["seed"]] for d in docs if d["seed"] in rscv_wall]
            lines.append(
                f"| {name} | {method} | {len(docs)} | {_spread([d['valid'] for d in docs])} | "
                f"{_spread([d['test'] for d in docs])} | {statistics.median(d['failed'] for d in docs):.0f} | "
                f"{statistics.median(d['wall_s'] for d in docs):.0f} | "
                f"{f'{statistics.median(ratios):.2f}x' if ratios else '-'} |"
            )
    lines += [
        "",
        "## Ensembles vs the best single model (automl+ens: the same 50 trials hold both)",
        "",
        "| data set | seeds | best single: CV / test | best ensemble: CV / test | ensemble CV > single CV | "
        "ensemble test >= single test | ensemble trials (failed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in DATASETS:
        docs = [d for (n, _s, m), d in sorted(raw.items()) if n == name and m == "automl+ens"]
        pairs = [(d["best_single"], d["best_ensemble"]) for d in docs if d["best_single"] and d["best_ensemble"]]
        if not docs:
            continue
        lines.append(
            f"| {name} | {len(docs)} | {_spread([s['valid'] for s, _ in pairs])} / {_spread([s['test'] for s, _ in pairs])} "
            f"| {_spread([e['valid'] for _, e in pairs])} / {_spread([e['test'] for _, e in pairs])} "
            f"| {sum(e['valid'] > s['valid'] for s, e in pairs)}/{len(pairs)} "
            f"| {sum(e['test'] >= s['test'] for s, e in pairs)}/{len(pairs)} "
            f"| {statistics.median(d['ensemble_trials'] for d in docs):.0f} ({statistics.median(d['ensemble_failed'] for d in docs):.0f}) |"
        )
    kinds: dict[str, int] = {}
    for d in raw.values():
        if d["method"] == "automl+ens" and d.get("best_ensemble"):
            kinds[d["best_ensemble"]["model"]] = kinds.get(d["best_ensemble"]["model"], 0) + 1
    lines += [
        "",
        f"Best ensemble kind per run: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or '-'}. Ensemble trials",
        "drawn before two single-model trials had finished fail by design (recorded with that reason).",
        "An ensemble's CV score is measured on the rows its members were chosen on, so it is optimistic; the",
        "test column is the honest comparison.",
        "",
        "## Environment",
        "",
        *[f"- `{e}`" for e in versions],
        f"- dates {', '.join(dates)}; HEAD of the shared working tree when each call started: {', '.join(commits)}",
        f"- 1-minute load average at the start and end of each run: {min(loads, default=0):.1f} to "
        f"{max(loads, default=0):.1f} on 2 cores shared with other users (kept in each result). Seconds are comparable",
        "  only between the methods of one data set and seed (run back to back): read the ratio column (median over",
        "  seeds of automl / rscv of the same seed). Per configuration automl also refits on all CV rows, scores the",
        "  test rows and all ten metrics, and exports the model (skops); RandomizedSearchCV refits only the winner.",
        "",
    ]
    return "\n".join(lines)


def _env() -> dict[str, Any]:
    import ray
    import sklearn

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                                check=False).stdout.strip()
    except OSError:
        commit = "?"
    return {"python": platform.python_version(), "sklearn": sklearn.__version__, "ray": ray.__version__,
            "cpus": len(os.sched_getaffinity(0)), "commit": commit, "date": time.strftime("%Y-%m-%d")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--report", action="store_true", help="only rebuild RESULTS.md from the stored results")
    args = parser.parse_args(argv)
    if not args.report:
        os.environ.setdefault("AUTOML_NUM_CPUS", "2")
        from automl.plugin import start_ray

        start_ray(None)  # once for every search of this call
        RAW.mkdir(parents=True, exist_ok=True)
        env = _env()
        with tempfile.TemporaryDirectory(prefix="automl-bench-") as tmp:
            for name in args.datasets:
                task = DATASETS[name]
                for seed in args.seeds:
                    for method in args.methods:
                        load = os.getloadavg()[0]
                        if method == "rscv":
                            result = run_rscv(name, task, seed, args.trials)
                        else:
                            result = run_automl(name, task, seed, args.trials, method == "automl+ens", Path(tmp))
                        # Other users of the shared cores show in the load average: kept with each result.
                        result["load_before_after"] = [round(load, 1), round(os.getloadavg()[0], 1)]
                        doc = {"dataset": name, "seed": seed, "method": method, "env": env, **result}
                        (RAW / f"{name}-{seed}-{method}.json").write_text(json.dumps(doc, indent=2))
                        print(f"{name} seed {seed} {method}: valid {result['valid']:.4f} test {result['test']:.4f} "
                              f"({result['best_model']}) {result['wall_s']:.0f}s, {result['failed']} failed", flush=True)
    RESULTS.write_text(report())
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
