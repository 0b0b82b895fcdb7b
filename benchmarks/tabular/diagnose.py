"""Why automl loses on a small table (issue 14, german at 60 s): kept runs, analysed offline.

    # one automl run of the comparison (same split, same spec), its whole run directory kept:
    flock /work/notes/bench.lock nice -n 0 .venv/bin/python -m benchmarks.tabular.diagnose keep german 0 DIR
    # offline, no timing: every completed trial refitted on all training rows and scored on the test rows
    nice -n 19 .venv/bin/python -m benchmarks.tabular.diagnose analyse DIR/german-0
    # ways of choosing from the same trials, judged on the training rows (and then on the test rows)
    nice -n 19 .venv/bin/python -m benchmarks.tabular.diagnose methods DIR/german-0 DIR/vehicle-0 ...

``keep`` runs :func:`benchmarks.tabular.peers.run_system` exactly as ``run compare`` does, but leaves the
work directory (trials, their saved out-of-fold predictions) in place. ``analyse`` rebuilds each completed
trial with the run's own plan (:func:`automl.plan.run_plan`), fits it as its worker did and predicts the
held-out rows (``test.csv`` beside the run): the CV score each trial was chosen on against its test score,
the engine's greedy ensemble (:func:`automl.ensemble.greedy_selection`, re-run on the stored predictions)
against the best single trial and the best of each model family. ``methods`` compares ways of choosing
from the engine's 20 ensemble candidates (:data:`METHODS`) by :func:`honest`: each chosen on one stratified
half of the out-of-fold rows and scored on the other half (training rows only, so a decision can rest on
it); the test score is printed beside it, to be looked at afterwards. Nothing is tuned on the test rows.
Classification only.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.tabular import datasets, peers


def keep(table: str, seed: int, out: str, budget: float = 60.0, searcher: str = "auto") -> int:
    """One automl run of the comparison on ``table``/``seed``, its work directory kept under ``out``."""
    data = datasets.load(table)
    work = Path(out) / f"{table}-{seed}"
    work.mkdir(parents=True, exist_ok=True)
    train, test = datasets.split(data, seed)
    train.to_csv(work / "train.csv", index=False)
    test.to_csv(work / "test.csv", index=False)
    job = peers.Job(table=table, task=data.task, seed=seed, budget=budget, train_csv=str(work / "train.csv"),
                    test_csv=str(work / "test.csv"), work=str(work), searcher=searcher)
    row = peers.run_system(job, "automl")
    (work / "row.json").write_text(json.dumps(row, default=str, indent=1))
    print(json.dumps({k: row.get(k) for k in ("status", "score", "valid_score", "trials", "best_model", "wall_s")}))
    return 0


def _refit_test(plan: Any, data: Any, trial: Any, tmp: Path) -> np.ndarray:
    """Trial ``trial`` fitted as its worker fitted it, then its predictions on ``data.test``."""
    from automl.plugin import trial_dir

    directory = trial_dir(tmp, trial["number"])
    directory.mkdir(parents=True, exist_ok=True)
    trainer = plan.trial_trainer(trial["number"], trial["config"], tmp, data)
    steps = max(1, int(trial.get("budget") or trainer.budget_steps))
    for step in range(1, steps + 1):
        trainer.fit_step(step)
    out = trainer.predictions("test")
    assert out is not None
    return np.asarray(out, dtype=np.float64)


def collect(run_dir: Path, top: int | None = None) -> dict[str, Any]:
    """Per completed trial: config, CV accuracy, out-of-fold and test predictions (the refits cached in
    ``analysis.npz`` beside the run)."""
    from automl.plugin import Part, Run, Splits, is_ensemble_trial, load_predictions, run_plan, trial_dir

    run = Run.open(run_dir / "run")
    plan = run_plan(run)
    base = plan.load_data()
    assert base is not None, "a tabular run has data"
    test = pd.read_csv(run_dir / "test.csv")
    X_test, y_test = test.drop(columns=[datasets.TARGET]), test[datasets.TARGET]
    X_test = X_test[list(base.train.X.columns)]
    data = Splits(base.train, base.valid, Part(X_test.reset_index(drop=True), y_test.reset_index(drop=True)),
                  task=base.task, name=base.name, folds=base.folds, seed=base.seed, repeats=base.repeats)
    trials = [t for t in run.trials() if t["status"] == "completed" and not is_ensemble_trial(t)
              and isinstance((t["metrics"] or {}).get("accuracy"), (int, float))
              and load_predictions(trial_dir(run.dir, t["number"]), "valid") is not None]
    if top is not None:  # the engine's candidates: the best ``top`` by CV accuracy (ties: lowest number)
        trials = sorted(trials, key=lambda t: (-float(t["metrics"]["accuracy"]), t["number"]))[:top]
    cache = run_dir / "analysis.npz"
    cached = dict(np.load(cache, allow_pickle=False)) if cache.is_file() else {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="automl-diag-") as tmp:
        for t in trials:
            valid = load_predictions(trial_dir(run.dir, t["number"]), "valid")
            if valid is None:
                continue
            key = f"t{t['number']}"
            if key not in cached:
                try:
                    cached[key] = _refit_test(plan, data, t, Path(tmp))
                except Exception as exc:  # a trial that cannot be refitted here is left out, and said
                    print(f"trial {t['number']}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    continue
            rows.append({"number": t["number"], "model": str(t["config"].get("model")), "config": t["config"],
                         "cv": float(t["metrics"]["accuracy"]), "valid": valid, "test": cached[key]})
    np.savez(cache, **cached)
    classes = list(data.classes)
    from sklearn.model_selection import StratifiedKFold

    X_all = pd.concat([data.train.y, data.valid.y], ignore_index=True)
    folds = [va for _, va in StratifiedKFold(int(data.folds), shuffle=True, random_state=int(data.seed))
             .split(np.zeros(len(X_all)), X_all)] if int(data.folds) >= 2 else None
    # Out-of-fold predictions hold one set per round of data.repeats, round after round (``folds``: round 0's).
    y_valid = np.tile(np.asarray(X_all), data.repeats) if folds is not None else np.asarray(data.valid.y)
    return {"rows": rows, "classes": classes, "y_valid": y_valid, "y_test": np.asarray(y_test), "folds": folds,
            "run": run, "folds_n": int(data.folds), "repeats": int(data.repeats)}


def _acc(values: np.ndarray, y: np.ndarray, classes: list[Any]) -> float:
    labels = np.asarray(classes)[np.argmax(values, axis=1)]
    return float(np.mean(peers._plain(labels).to_numpy() == peers._plain(y).to_numpy()))


def analyse(run_dir: str) -> int:
    """Print the evidence for one kept run (see the module docstring)."""
    from automl.plugin import greedy_selection

    got = collect(Path(run_dir))
    rows, classes, yv, yt = got["rows"], got["classes"], got["y_valid"], got["y_test"]
    print(f"{run_dir}: {len(rows)} completed trials with predictions, folds {got['folds_n']} x {got['repeats']}")
    for r in rows:
        r["oof"] = _acc(r["valid"], yv, classes)
        r["tacc"] = _acc(r["test"], yt, classes)
    rows.sort(key=lambda r: (-r["cv"], r["number"]))
    best = rows[0]
    print(f"best single by CV: trial {best['number']} {best['model']} cv {best['cv']:.4f} test {best['tacc']:.4f}")
    print(f"mean test of the top 5 / 20 by CV: {np.mean([r['tacc'] for r in rows[:5]]):.4f} / "
          f"{np.mean([r['tacc'] for r in rows[:20]]):.4f}; median test of all: {np.median([r['tacc'] for r in rows]):.4f}")
    print(f"oracle best on test: {max(r['tacc'] for r in rows):.4f}")
    fam: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        fam[r["model"]].append(r)
    for name, rs in sorted(fam.items(), key=lambda kv: -kv[1][0]["cv"]):
        print(f"  {name:14s} n={len(rs):3d} best cv {rs[0]['cv']:.4f} -> test {rs[0]['tacc']:.4f}; "
              f"family mean test {np.mean([r['tacc'] for r in rs]):.4f}")
    cands = sorted(rows[:20], key=lambda r: r["number"])

    def loss(values: np.ndarray) -> float:
        return -_acc(values, yv, classes)

    def logloss(values: np.ndarray) -> float:
        p = np.clip(values[np.arange(len(yv)), [classes.index(v) for v in yv]], 1e-15, 1)
        return float(-np.mean(np.log(p)))

    sel = greedy_selection([c["valid"] for c in cands], loss, rounds=25, tie_break=logloss)
    w = sel.counts / sel.counts.sum()
    blend_t = sum(wi * c["test"] for wi, c in zip(w, cands, strict=True))
    print(f"greedy ensemble (20 cands, acc + logloss tie): valid {-sel.loss:.4f} test {_acc(blend_t, yt, classes):.4f}"
          f" members {[(c['number'], c['model'], int(k)) for c, k in zip(cands, sel.counts, strict=True) if k]}")
    mean = _acc(sum(c["test"] for c in cands) / len(cands), yt, classes)
    print(f"plain average of the 20 candidates: valid {_acc(sum(c['valid'] for c in cands) / len(cands), yv, classes):.4f}"
          f" test {mean:.4f}")
    sel2 = greedy_selection([c["valid"] for c in cands], logloss, rounds=25)
    w2 = sel2.counts / sel2.counts.sum()
    print(f"greedy on log loss: valid acc {_acc(sum(wi * c['valid'] for wi, c in zip(w2, cands, strict=True)), yv, classes):.4f}"
          f" test {_acc(sum(wi * c['test'] for wi, c in zip(w2, cands, strict=True)), yt, classes):.4f}")
    if math.isfinite(best["cv"]):
        print("top 10 by CV: " + ", ".join(f"{r['number']}:{r['model']} {r['cv']:.3f}/{r['tacc']:.3f}/oof{r['oof']:.3f}"
                                           for r in rows[:10]))
    return 0


# -- ways of choosing from the same trials, judged on the training rows only -----------------------------


def _loss_fns(y: np.ndarray, classes: list[Any]) -> tuple[Any, Any]:
    index = np.asarray([classes.index(v) for v in y])

    def acc_loss(values: np.ndarray) -> float:
        return -float(np.mean(np.argmax(values, axis=1) == index))

    def log_loss(values: np.ndarray) -> float:
        p = np.clip(values[np.arange(len(index)), index], 1e-15, 1)
        return float(-np.mean(np.log(p)))
    return acc_loss, log_loss


def _greedy(preds: list[np.ndarray], y: np.ndarray, classes: list[Any], *, on: str = "accuracy",
            rounds: int = 25) -> np.ndarray:
    from automl.plugin import greedy_selection

    acc_loss, log_loss = _loss_fns(y, classes)
    if on == "accuracy":
        sel = greedy_selection(preds, acc_loss, rounds=rounds, tie_break=log_loss)
    else:
        sel = greedy_selection(preds, log_loss, rounds=rounds)
    return sel.counts / sel.counts.sum()


def _bagged(preds: list[np.ndarray], y: np.ndarray, classes: list[Any], *, on: str = "accuracy", bags: int = 20,
            share: float = 0.5, seed: int = 0) -> np.ndarray:
    """Caruana et al. (2004), section 2.3: selection on random halves of the library, the ensembles averaged."""
    rng = np.random.default_rng(seed)
    total = np.zeros(len(preds))
    for _ in range(bags):
        pick = np.sort(rng.choice(len(preds), size=max(2, int(round(share * len(preds)))), replace=False))
        w = _greedy([preds[i] for i in pick], y, classes, on=on)
        total[pick] += w
    return total / total.sum()


def _pooled(preds: list[np.ndarray], y: np.ndarray, classes: list[Any], *, bags: int = 20, share: float = 0.5,
            seed: int = 0) -> np.ndarray:
    """As :func:`_bagged`, the bags' picks summed (integer counts: a larger bag ensemble weighs more)."""
    from automl.plugin import greedy_selection

    acc_loss, log_loss = _loss_fns(y, classes)
    rng = np.random.default_rng(seed)
    total = np.zeros(len(preds))
    for _ in range(bags):
        pick = np.sort(rng.choice(len(preds), size=max(2, int(round(share * len(preds)))), replace=False))
        total[pick] += greedy_selection([preds[i] for i in pick], acc_loss, rounds=25, tie_break=log_loss).counts
    return total / total.sum()


def _hybrid(preds: list[np.ndarray], y: np.ndarray, classes: list[Any], rounds: int = 25) -> np.ndarray:
    """Start at the best single on accuracy (log-loss tie-break), add by log loss, keep the best seen on
    (accuracy, log loss): never below the best single on the selection rows."""
    acc_loss, log_loss = _loss_fns(y, classes)
    start = min(range(len(preds)), key=lambda i: (acc_loss(preds[i]), log_loss(preds[i]), i))
    counts = np.zeros(len(preds))
    counts[start] = 1
    total = preds[start].copy()
    best = (acc_loss(total), log_loss(total))
    best_counts = counts.copy()
    for _ in range(rounds):
        n = counts.sum() + 1
        i = min(range(len(preds)), key=lambda j: (log_loss((total + preds[j]) / n), j))
        counts[i] += 1
        total += preds[i]
        value = (acc_loss(total / n), log_loss(total / n))
        if value < best:
            best, best_counts = value, counts.copy()
    return best_counts / best_counts.sum()


def _logloss_if_better(preds: list[np.ndarray], y: np.ndarray, classes: list[Any]) -> np.ndarray:
    """A candidate rule for automl.ensemble (tried, not adopted): the log-loss selection where its blend is
    strictly better on accuracy than the best single candidate (else it could never be the run's best, chosen
    on accuracy), otherwise the accuracy selection."""
    acc_loss, log_loss = _loss_fns(y, classes)
    smooth = _greedy(preds, y, classes, on="logloss")
    best_single = min(acc_loss(p) for p in preds)
    if acc_loss(sum(w * p for w, p in zip(smooth, preds, strict=True))) < best_single - 1e-12:
        return smooth
    return _greedy(preds, y, classes)


def _single(preds: list[np.ndarray], y: np.ndarray, classes: list[Any]) -> np.ndarray:
    acc_loss, log_loss = _loss_fns(y, classes)
    scores = [(acc_loss(p), log_loss(p), i) for i, p in enumerate(preds)]
    w = np.zeros(len(preds))
    w[min(scores)[2]] = 1
    return w


def _single_ll(preds: list[np.ndarray], y: np.ndarray, classes: list[Any]) -> np.ndarray:
    _, log_loss = _loss_fns(y, classes)
    w = np.zeros(len(preds))
    w[int(np.argmin([log_loss(p) for p in preds]))] = 1
    return w


METHODS = {
    "single(acc)": _single,
    "single(logloss)": _single_ll,
    "greedy(acc)": _greedy,
    "greedy(logloss)": lambda p, y, c: _greedy(p, y, c, on="logloss"),
    "bagged(acc)": _bagged,
    "bagged(logloss)": lambda p, y, c: _bagged(p, y, c, on="logloss"),
    "pooled(acc)": _pooled,
    "hybrid": _hybrid,
    "logloss-if-better": _logloss_if_better,
}


def honest(cands: list[dict[str, Any]], y: np.ndarray, classes: list[Any], repeats: int = 10,
           methods: dict[str, Any] | None = None) -> dict[str, float]:
    """Each method chosen on one stratified half of the out-of-fold rows and scored on the other, both ways,
    ``repeats`` times: what the method's choice is worth on rows it did not choose on (training rows only)."""
    from sklearn.model_selection import StratifiedKFold

    out: dict[str, list[float]] = defaultdict(list)
    for r in range(repeats):
        for a, b in StratifiedKFold(2, shuffle=True, random_state=r).split(np.zeros(len(y)), y):
            for name, fn in (methods or METHODS).items():
                w = fn([c["valid"][a] for c in cands], y[a], classes)
                blend = sum(wi * c["valid"][b] for wi, c in zip(w, cands, strict=True))
                out[name].append(_acc(blend, y[b], classes))
    return {k: float(np.mean(v)) for k, v in out.items()}


def compare_methods(run_dir: str) -> dict[str, Any]:
    got = collect(Path(run_dir), top=20)
    rows, classes, yv, yt = got["rows"], got["classes"], got["y_valid"], got["y_test"]
    rows.sort(key=lambda r: (-r["cv"], r["number"]))
    cands = sorted(rows[:20], key=lambda r: r["number"])
    inner = honest(cands, yv, classes)
    test, oof = {}, {}
    for name, fn in METHODS.items():
        w = fn([c["valid"] for c in cands], yv, classes)
        test[name] = _acc(sum(wi * c["test"] for wi, c in zip(w, cands, strict=True)), yt, classes)
        oof[name] = _acc(sum(wi * c["valid"] for wi, c in zip(w, cands, strict=True)), yv, classes)
    return {"inner": inner, "test": test, "oof": oof}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("keep", "analyse", "methods"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    cmd, *rest = argv
    if cmd == "keep":
        return keep(rest[0], int(rest[1]), rest[2], float(rest[3]) if len(rest) > 3 else 60.0)
    if cmd == "analyse":
        return analyse(rest[0])
    for d in rest:
        res = compare_methods(d)
        print(d, "inner / OOF / test:", json.dumps({k: [round(100 * res[p][k], 2) for p in ("inner", "oof", "test")]
                                                    for k in METHODS}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
