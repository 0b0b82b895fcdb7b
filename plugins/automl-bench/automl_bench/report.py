"""Markdown tables from the store: per suite, per method, scores with 95% intervals over seeds.

Per-run score (lower is better), by task kind:

* single objective with a known optimum: log10 simple regret (floored at 1e-12);
* several objectives: hypervolume regret (true front's hypervolume minus the run's);
* single objective without a known optimum (the Bayesmark tasks): Bayesmark's normalised
  loss (best - opt) / (clip - opt) clipped to [-1, 1], with opt the best value any method
  found on the task and clip the median loss of one random draw (every evaluation of the
  ``random`` and ``automl:random`` runs); the suite's Bayesmark score is 100 x (1 - mean).

Average rank: ranks among the methods within each (task, seed) that all of them ran, averaged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from automl_bench.base import BenchmarkError
from automl_bench.scoring import average_ranks, bayesmark_normalise, log10_regret, t_interval

__all__ = ["render_report", "score_rows"]

#: Methods whose evaluations are random draws (Bayesmark's clip is their median loss).
RANDOM_METHODS = ("random", "automl:random")
#: The reference the best automl searcher is compared with.
DEFAULT_TPE = "optuna:tpe"
#: Fractions of the budget the anytime table reports.
ANYTIME = (0.25, 0.5, 1.0)


def latest(rows: Sequence[dict[str, Any]], version: int | None = None) -> pd.DataFrame:
    """The newest row per (suite, budget, task, seed, method), of each suite's newest version (or ``version``)."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return df
    newest = df.groupby("suite")["suite_version"].transform("max") if version is None else version
    df = df[df["suite_version"] == newest]
    df = df.sort_values("id").groupby(["suite", "budget", "task", "seed", "method"], as_index=False).last()
    return df.reset_index(drop=True)


def _curve_at(curve: dict[str, Any], evaluations: float) -> float | None:
    """The curve's figure after ``evaluations`` (the last batch end not beyond it)."""
    value = None
    for n, best in zip(curve["evals"], curve["best"], strict=True):
        if n <= evaluations + 1e-9:
            value = best
    return value


def score_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Add ``score`` (lower is better) and ``anytime`` scores to one suite's rows; return the score kind per task."""
    df = df.copy()
    kinds: dict[str, str] = {}
    scores: list[float] = []
    anytime: list[list[float | None]] = []
    clip_opt: dict[str, tuple[float, float]] = {}
    for task, group in df.groupby("task"):
        first = group.iloc[0]
        if first["n_objectives"] > 1:
            kinds[str(task)] = "hv regret" if group["hv_regret"].notna().all() else "-hypervolume"
        elif group["regret"].notna().all():
            kinds[str(task)] = "log10 regret"
        else:
            kinds[str(task)] = "bayesmark"
            random_losses = [v[0] for losses in group[group["method_name"].isin(RANDOM_METHODS)]["losses"]
                             for v in losses if v is not None]
            if not random_losses:
                raise BenchmarkError(
                    f"task {task!r}: the Bayesmark score needs random draws to set its clip; "
                    f"add `random` (or automl:random) to the suite's methods and run it"
                )
            opt = min(min((b for b in c["best"] if b is not None), default=math.inf) for c in group["curve"])
            clip_opt[str(task)] = (float(np.median(random_losses)), float(opt))

    def figure(row: pd.Series, value: float | None) -> float:
        kind = kinds[str(row["task"])]
        if value is None:
            return math.nan
        if kind == "log10 regret":
            return log10_regret(value - row["task_info"]["optimum"])
        if kind == "hv regret":
            return float(row["task_info"]["max_hypervolume"] - value)
        if kind == "-hypervolume":
            return -float(value)
        clip, opt = clip_opt[str(row["task"])]
        return bayesmark_normalise(value, opt, clip)

    for _, row in df.iterrows():
        final = row["curve"]["best"][-1] if row["curve"]["best"] else None
        scores.append(figure(row, final))
        anytime.append([figure(row, _curve_at(row["curve"], f * row["budget"])) for f in ANYTIME])
    df["score"] = scores
    df["anytime"] = anytime
    return df, kinds


def _fmt(mean: float, low: float, high: float, digits: int = 2) -> str:
    if math.isnan(mean):
        return "n/a"
    if low == high:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _parity(df: pd.DataFrame) -> list[str]:
    """Each wrapped searcher against its library used directly: paired differences over (task, seed)."""
    lines: list[str] = []
    pairs = sorted({(str(r["peer_of"]), str(r["method"])) for _, r in df.iterrows() if isinstance(r["peer_of"], str)})
    if not pairs:
        return lines
    lines += ["", "Wrapper parity: our searcher minus its library used directly, paired by (task, seed); "
              "negative = ours better. Within noise when the 95% interval holds 0 (Wilcoxon signed-rank p beside).",
              "The last column: our overhead per suggestion over the library's, median of the per-run ratios [IQR].",
              "", "| ours | library directly | pairs | mean difference [95% CI] | Wilcoxon p | verdict | overhead ratio |",
              "|---|---|---|---|---|---|---|"]
    for ours, peer in pairs:
        diff = _paired(df, ours, peer)
        if len(diff) == 0:
            lines.append(f"| {ours} | {peer} | 0 | not run | | |")
            continue
        mean, low, high = t_interval(list(diff))
        p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) and len(diff) > 1 else 1.0
        if not np.any(diff != 0):
            verdict = "identical runs"
        else:
            verdict = "within noise" if low <= 0 <= high else ("ours better" if high < 0 else "ours worse")
        x = df[df["method"] == ours].set_index(["task", "seed"])["overhead_s"]
        y = df[df["method"] == peer].set_index(["task", "seed"])["overhead_s"]
        common = x.index.intersection(y.index)
        ratio = (x[common] / y[common]).to_numpy(dtype=float)
        ratio = ratio[np.isfinite(ratio)]
        overhead = (f"{np.median(ratio):.2f} [{np.percentile(ratio, 25):.2f}, {np.percentile(ratio, 75):.2f}]"
                    if len(ratio) else "n/a")
        lines.append(f"| {ours} | {peer} | {len(diff)} | {_fmt(mean, low, high, 3)} | {p:.2f} | {verdict} | {overhead} |")
    return lines


def _paired(df: pd.DataFrame, a: str, b: str) -> np.ndarray:
    """Score of ``a`` minus score of ``b`` over the (task, seed) both ran (finite ones)."""
    x = df[df["method"] == a].set_index(["task", "seed"])["score"]
    y = df[df["method"] == b].set_index(["task", "seed"])["score"]
    common = x.index.intersection(y.index)
    diff = (x[common] - y[common]).to_numpy(dtype=float)
    return diff[np.isfinite(diff)]


def _vs_default_tpe(df: pd.DataFrame, ranks: dict[str, float]) -> list[str]:
    """Every automl searcher against optuna's default TPE, paired by (task, seed)."""
    ours = sorted((m for m in ranks if m.startswith("automl:")), key=lambda m: (math.isnan(ranks[m]), ranks[m]))
    if DEFAULT_TPE not in ranks or not ours:
        return []
    lines = ["", f"Each automl searcher against optuna's default TPE (`{DEFAULT_TPE}`): score difference per "
             "(task, seed), negative = ours better.", "",
             "| ours | pairs | mean difference [95% CI] | better / tied / worse | Wilcoxon p |", "|---|---|---|---|---|"]
    for m in ours:
        diff = _paired(df, m, DEFAULT_TPE)
        if len(diff) == 0:
            continue
        p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) and len(diff) > 1 else 1.0
        counts = f"{int(np.sum(diff < 0))} / {int(np.sum(diff == 0))} / {int(np.sum(diff > 0))}"
        lines.append(f"| `{m}` | {len(diff)} | {_fmt(*t_interval(list(diff)), digits=3)} | {counts} | {p:.2g} |")
    return lines


def _best_vs_tpe(df: pd.DataFrame, ranks: dict[str, float], bayesmark: dict[str, tuple[float, float, float]]) -> list[str]:
    ours = {m: r for m, r in ranks.items() if m.startswith("automl:") and not math.isnan(r)}
    if not ours:
        return []
    best = min(ours, key=lambda m: ours[m])
    line = f"Best automl searcher by average rank: **{best}** ({ours[best]:.2f})"
    if DEFAULT_TPE in ranks and not math.isnan(ranks[DEFAULT_TPE]):
        diff = _paired(df, best, DEFAULT_TPE)
        mean, low, high = t_interval(list(diff))
        wins, ties = int(np.sum(diff < 0)), int(np.sum(diff == 0))
        p = float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) and len(diff) > 1 else 1.0
        significant = "significant" if (high < 0 or low > 0) else "not significant"
        line += (f"; against optuna's default TPE ({DEFAULT_TPE}, rank {ranks[DEFAULT_TPE]:.2f}): score difference "
                 f"{_fmt(mean, low, high, 3)} per (task, seed) (negative = {best} better; {significant} at 95%, "
                 f"Wilcoxon p {p:.2f}), better in {wins}, tied in {ties} of {len(diff)}")
        if best in bayesmark and DEFAULT_TPE in bayesmark:
            line += (f"; Bayesmark score {bayesmark[best][0]:.1f} vs {bayesmark[DEFAULT_TPE][0]:.1f}")
    return ["", line + "."]


def _shared_blocks(df: pd.DataFrame, methods: Sequence[str]) -> int:
    blocks = [set(zip(df[df["method"] == m]["task"], df[df["method"] == m]["seed"], strict=True)) for m in methods]
    return len(set.intersection(*blocks)) if blocks else 0


def render_suite(df: pd.DataFrame) -> list[str]:
    """The Markdown section of one suite at one budget."""
    df, kinds = score_rows(df)
    first = df.iloc[0]
    tasks = sorted(df["task"].unique())
    methods = sorted(df["method"].unique())
    seeds = sorted(df["seed"].unique())
    commits = sorted(df["commit"].unique())
    dates = sorted(df["date"].unique())
    ranks = average_ranks({m: {(r["task"], r["seed"]): r["score"] for _, r in df[df["method"] == m].iterrows()
                               if not math.isnan(r["score"])} for m in methods})
    bayes_tasks = [t for t in tasks if kinds[t] == "bayesmark"]
    bayesmark: dict[str, tuple[float, float, float]] = {}
    if bayes_tasks:
        sub = df[df["task"].isin(bayes_tasks)]
        for m in methods:
            per_seed = sub[sub["method"] == m].groupby("seed")["score"].mean()
            mean, low, high = t_interval(list(100 * (1 - per_seed.to_numpy(dtype=float))))
            bayesmark[m] = (mean, low, high)
    score_names = sorted(set(kinds.values()))
    lines = [
        f"## {first['suite']} (version {first['suite_version']})",
        "",
        f"{first['budget']} evaluations ({first['budget'] // first['batch']} x batch {first['batch']}), "
        f"seeds {seeds[0]}-{seeds[-1]} ({len(seeds)}), {len(tasks)} tasks, dates {dates[0]}..{dates[-1]}, "
        f"commits {', '.join(c[:8] for c in commits[:4])}{' ...' if len(commits) > 4 else ''}. "
        f"Per-task score: {', '.join(score_names)} (lower is better), mean over seeds [95% t-interval]. "
        f"Ranks over the {_shared_blocks(df, methods)} (task, seed) pairs every method ran.",
        "",
    ]
    header = ["method", *tasks]
    if bayes_tasks:
        header.append("Bayesmark score")
    header += [f"avg rank (of {len(methods)})", "overhead ms/suggestion, median [IQR]", "failed evals", "crashed runs"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in sorted(methods, key=lambda m: (math.isnan(ranks[m]), ranks[m])):
        sub = df[df["method"] == m]
        cells = [f"`{m}`"]
        for t in tasks:
            cells.append(_fmt(*t_interval(list(sub[sub["task"] == t]["score"])), digits=3 if kinds[t] != "log10 regret"
                              else 2))
        if bayes_tasks:
            cells.append(_fmt(*bayesmark[m], digits=1))
        cells.append(f"{ranks[m]:.2f}" if not math.isnan(ranks[m]) else "n/a")
        ms = sub["overhead_s"].dropna().to_numpy(dtype=float) * 1000
        cells.append(f"{np.median(ms):.2f} [{np.percentile(ms, 25):.2f}, {np.percentile(ms, 75):.2f}]"
                     if len(ms) else "n/a")
        cells.append(str(int(sub["failures"].sum())))
        cells.append(f"{int(sub['error'].notna().sum())}/{len(sub)}")
        lines.append("| " + " | ".join(cells) + " |")
    # Anytime: the mean score over tasks and seeds at fractions of the budget.
    lines += ["", "Anytime (mean score over tasks and seeds after a fraction of the budget):", "",
              "| method | " + " | ".join(f"{int(f * 100)}%" for f in ANYTIME) + " |",
              "|---|" + "---|" * len(ANYTIME)]
    for m in sorted(methods, key=lambda m: (math.isnan(ranks[m]), ranks[m])):
        sub = df[df["method"] == m]
        at = np.array([[np.nan if v is None else v for v in a] for a in sub["anytime"]], dtype=float)
        cells = []
        for i in range(len(ANYTIME)):
            column = at[:, i][np.isfinite(at[:, i])]
            cells.append(f"{column.mean():.3f}" if len(column) else "n/a")
        lines.append(f"| `{m}` | " + " | ".join(cells) + " |")
    lines += _parity(df)
    lines += _vs_default_tpe(df, ranks)
    lines += _best_vs_tpe(df, ranks, bayesmark)
    errors = df[df["error"].notna()]
    if len(errors):
        lines += ["", "Crashed runs (figures are those reached before the error):", ""]
        for (m, err), group in errors.groupby(["method", "error"]):
            lines.append(f"- `{m}` x{len(group)}: {str(err)[:300]}")
    if "eval_errors" in df:
        failed = df[df["eval_errors"].apply(lambda e: isinstance(e, list) and len(e) > 0)]
        if len(failed):
            lines += ["", "Failed evaluations (first message of each run):", ""]
            for (m, first), group in failed.groupby([failed["method"], failed["eval_errors"].str[0]]):
                lines.append(f"- `{m}` x{len(group)}: {str(first)[:300]}")
    versions = sorted({f"{r['method']}: {r['method_version']}" for _, r in df.iterrows()})
    lines += ["", "<details><summary>versions</summary>", "", *[f"- {v}" for v in versions], "", "</details>", ""]
    return lines


def render_report(rows: Sequence[dict[str, Any]], environments: Sequence[dict[str, Any]] = (),
                  version: int | None = None) -> str:
    """The Markdown report of every suite in ``rows`` (newest version, newest row per run)."""
    df = latest(rows, version)
    if df.empty:
        raise BenchmarkError("the store holds no results: run a suite first (automl bench smoke)")
    lines = ["# Searcher benchmarks", ""]
    if environments:
        env = environments[-1]
        pk = env["packages"]
        lines += [f"Environment (newest run): {env['cpu']}, {env['cpus']} CPUs, Python {env['python']}; "
                  + ", ".join(f"{k} {v}" for k, v in pk.items()), ""]
    for (_, _), group in df.groupby(["suite", "budget"]):
        lines += render_suite(group)
    return "\n".join(lines)
