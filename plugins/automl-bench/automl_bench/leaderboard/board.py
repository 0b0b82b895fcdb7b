"""The leaderboard's figures, computed from the rows of the searcher benchmark store.

Rows are grouped by (suite, suite version, budget): figures of different suite versions or
budgets are never compared (the page says so when a store holds several). Within a group:

* **normalised score** per method: Bayesmark's normalised loss per (task, seed), then
  ``100 x (1 - mean over tasks)`` per seed, mean over seeds with a 95% Student-t interval
  (100 = the optimum on every task, 0 = no better than a random draw). Per task kind:

  - one objective, known optimum (S1): ``(best - optimum) / (clip - optimum)``;
  - one objective, optimum unknown (R1, Bayesmark): ``(best - opt) / (clip - opt)`` with ``opt``
    the best value any method reached on the task (every night of the group);
  - several objectives (S3): hypervolume regret / the true front's hypervolume (or, without
    a known one, the shortfall from the best hypervolume any method reached, relative to it);

  ``clip`` is the median loss of one random draw (every evaluation of the ``random`` and
  ``automl:random`` runs, every night), each figure clipped to [-1, 1] as Bayesmark does.
* **average rank** within each (task, seed) block that every method ran (scipy's ``rankdata``,
  ties share their mean rank), on the final best loss or minus the final hypervolume;
  **critical difference** (Nemenyi, alpha 0.05: ``q_alpha sqrt(k (k + 1) / (6 N))`` with
  ``q_alpha`` from scipy's studentized range) after a Friedman test (scipy), blocks being the
  (task, seed) pairs;
* **wins**: blocks in which the method is best (ties count for each tied method);
* **hypervolume regret** on the multi-objective tasks, failures, optimizer overhead;
* **trend**: the normalised score of each night (date), flagged when its mean leaves the
  previous night's 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from automl_bench.base import BenchmarkError
from automl_bench.scoring import REGRET_FLOOR, average_ranks, t_interval

__all__ = ["CostRow", "Group", "MethodRow", "TrendPoint", "build_groups", "critical_difference", "latest_rows"]

#: Methods whose evaluations are random draws (Bayesmark's clip is their median loss): for the engine
#: suites, random search with every trial run to full fidelity (early-stopped survivors are no random draw).
RANDOM_METHODS = ("random", "automl:random", "automl:random+fifo", "optuna:random+nop")
ALPHA = 0.05


@dataclass
class MethodRow:
    """One method's line of the leaderboard."""

    method: str
    provider: str
    score: tuple[float, float, float]
    rank: float
    wins: int
    hv_regret: tuple[float, float, float] | None
    failed_evals: int
    crashed_runs: int
    runs: int
    overhead_ms: tuple[float, float, float] | None


@dataclass
class CostRow:
    """A method's line of the cost table of an engine suite (S2, R2, R3): what it spent and stopped.

    Medians over the method's runs; ``to_target`` only for tasks with a target (R3).
    """

    method: str
    runs: int
    final: float | None
    final_label: str
    cost_unit: str
    cost_budget: float
    cost_run: float
    trials: float
    completed: float
    stopped: float
    to_target_s: float | None = None
    to_target_cost: float | None = None
    reached: str = ""
    speedup: float | None = None


@dataclass
class TrendPoint:
    """A method's normalised score on one night."""

    date: str
    method: str
    score: tuple[float, float, float]
    seeds: int
    flagged: bool = False
    previous: tuple[str, tuple[float, float, float]] | None = None


@dataclass
class Group:
    """Everything the leaderboard shows about one (suite, version, budget)."""

    suite: str
    version: int
    budget: int
    batch: int
    rows: pd.DataFrame
    kinds: dict[str, str]
    methods: list[MethodRow]
    blocks: int
    friedman_p: float | None
    cd: float | None
    cliques: list[list[str]]
    trend: list[TrendPoint]
    dates: list[str]
    notes: list[str] = field(default_factory=list)
    #: Engine suites only: cost spent, trials completed and stopped, time and cost to the target.
    costs: list[CostRow] = field(default_factory=list)

    @property
    def title(self) -> str:
        if self.costs:
            return f"{self.suite} v{self.version}, {self.budget} full-trial equivalents of cost"
        return f"{self.suite} v{self.version}, {self.budget} evaluations"

    @property
    def flags(self) -> list[TrendPoint]:
        return [p for p in self.trend if p.flagged]


def latest_rows(df: pd.DataFrame, keys: Sequence[str] = ("task", "seed", "method")) -> pd.DataFrame:
    """The newest row (highest id) per ``keys``."""
    return df.sort_values("id").groupby(list(keys), as_index=False).last().reset_index(drop=True)


def _final(row: Mapping[str, Any]) -> float | None:
    best = [b for b in (row["curve"] or {}).get("best", []) if b is not None]
    return float(best[-1]) if best else None


def task_kinds(df: pd.DataFrame) -> dict[str, str]:
    """``log10 regret``, ``bayesmark``, ``hv regret`` or ``hypervolume`` per task."""
    kinds: dict[str, str] = {}
    for task, group in df.groupby("task"):
        info = group.iloc[0]["task_info"] or {}
        if int(group.iloc[0]["n_objectives"]) > 1:
            kinds[str(task)] = "hv regret" if info.get("max_hypervolume") is not None else "hypervolume"
        else:
            kinds[str(task)] = "log10 regret" if info.get("optimum") is not None else "bayesmark"
    return kinds


def _normaliser(df: pd.DataFrame, kinds: Mapping[str, str], notes: list[str]) -> dict[str, tuple[float, float]]:
    """Per task ``(opt, clip)`` over every row of the group (all nights), in loss form (lower is better)."""
    out: dict[str, tuple[float, float]] = {}
    for task, group in df.groupby("task"):
        kind = kinds[str(task)]
        info = group.iloc[0]["task_info"] or {}
        finals = [f for f in (_final(r) for _, r in group.iterrows()) if f is not None]
        if kind == "hv regret":
            out[str(task)] = (-float(info["max_hypervolume"]), 0.0)
            continue
        if kind == "hypervolume":
            out[str(task)] = (-max(finals, default=0.0), 0.0)
            continue
        draws = [v[0] for losses in group[group["method"].isin(RANDOM_METHODS)]["losses"] for v in losses
                 if v is not None]
        if not draws:
            draws = [v[0] for losses in group["losses"] for v in losses if v is not None]
            notes.append(f"task {task}: no random-search run, so the normalisation's clip is the median of every "
                         f"method's evaluations")
        opt = float(info["optimum"]) if kind == "log10 regret" else min(finals, default=math.nan)
        out[str(task)] = (opt, float(np.median(draws)) if draws else math.nan)
    return out


def _normalised(loss: float | None, opt: float, clip: float) -> float:
    """Bayesmark's normalised loss clipped to [-1, 1] (0 at the optimum, 1 at a random draw's median)."""
    if loss is None or math.isnan(opt) or math.isnan(clip):
        return math.nan
    if clip == opt:
        return 0.0
    return float(np.clip((loss - opt) / (clip - opt), -1.0, 1.0))


def _loss(row: Mapping[str, Any], kind: str) -> float | None:
    """The final figure in loss form: best loss, or minus the hypervolume."""
    final = _final(row)
    if final is None:
        return None
    return -final if kind in ("hv regret", "hypervolume") else final


def score_frame(df: pd.DataFrame, kinds: Mapping[str, str], norm: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """``df`` with ``loss`` (for ranks) and ``normalised`` (for the score) per row."""
    df = df.copy()
    losses, normalised = [], []
    for _, row in df.iterrows():
        kind = kinds[str(row["task"])]
        loss = _loss(row, kind)
        opt, clip = norm[str(row["task"])]
        losses.append(math.nan if loss is None else loss)
        normalised.append(_normalised(loss, opt, clip))
    df["loss"] = losses
    df["normalised"] = normalised
    return df


def method_score(df: pd.DataFrame) -> tuple[float, float, float]:
    """``100 x (1 - normalised loss)``: mean over tasks per seed, then mean and 95% interval over seeds."""
    per_seed = df.groupby("seed")["normalised"].mean()
    return t_interval(list(100 * (1 - per_seed.to_numpy(dtype=float))))


def critical_difference(ranks: Sequence[float], blocks: int, alpha: float = ALPHA) -> float | None:
    """Nemenyi's critical difference of average ranks for ``len(ranks)`` methods over ``blocks`` blocks."""
    k = len(ranks)
    if k < 2 or blocks < 1:
        return None
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6.0 * blocks))


def cliques(ranks: Mapping[str, float], cd: float) -> list[list[str]]:
    """Maximal runs of methods (ordered by rank) whose average ranks differ by less than ``cd``."""
    ordered = sorted((r, m) for m, r in ranks.items() if not math.isnan(r))
    groups: list[list[str]] = []
    for i in range(len(ordered)):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][0] - ordered[i][0] < cd:
            j += 1
        if j > i:
            members = [m for _, m in ordered[i:j + 1]]
            if not any(set(members) <= set(g) for g in groups):
                groups.append(members)
    return groups


def _overhead(sub: pd.DataFrame) -> tuple[float, float, float] | None:
    ms = sub["overhead_s"].dropna().to_numpy(dtype=float) * 1000
    if not len(ms):
        return None
    return float(np.median(ms)), float(np.percentile(ms, 25)), float(np.percentile(ms, 75))


def _hv_regret(sub: pd.DataFrame, kinds: Mapping[str, str]) -> tuple[float, float, float] | None:
    mo = sub[sub["task"].map(lambda t: kinds[str(t)] == "hv regret")]
    if mo.empty:
        return None
    per_seed = mo.groupby("seed")["hv_regret"].mean()
    return t_interval(list(per_seed.to_numpy(dtype=float)))


def _trend(all_rows: pd.DataFrame, kinds: Mapping[str, str], norm: Mapping[str, tuple[float, float]]) -> list[TrendPoint]:
    points: list[TrendPoint] = []
    for method, by_method in all_rows.groupby("method"):
        previous: TrendPoint | None = None
        for date, night in sorted(by_method.groupby("date"), key=lambda kv: str(kv[0])):
            night = score_frame(latest_rows(night), kinds, norm)
            point = TrendPoint(str(date), str(method), method_score(night), int(night["seed"].nunique()))
            if previous is not None and not math.isnan(point.score[0]) and previous.score[1] < previous.score[2]:
                _, low, high = previous.score
                point.flagged = not (low <= point.score[0] <= high)
                point.previous = (previous.date, previous.score)
            if not math.isnan(point.score[0]):
                points.append(point)
                previous = point
    return points


def build_group(rows: pd.DataFrame) -> Group:
    """The leaderboard of one (suite, version, budget)."""
    notes: list[str] = []
    kinds = task_kinds(rows)
    norm = _normaliser(rows, kinds, notes)
    current = score_frame(latest_rows(rows), kinds, norm)
    methods = sorted(current["method"].unique())
    by_block = {m: {(r["task"], r["seed"]): r["loss"] for _, r in current[current["method"] == m].iterrows()
                    if not math.isnan(r["loss"])} for m in methods}
    ranks = average_ranks(by_block)
    common = set.intersection(*(set(b) for b in by_block.values())) if by_block else set()
    wins = dict.fromkeys(methods, 0)
    for block in common:
        best = min(by_block[m][block] for m in methods)
        for m in methods:
            wins[m] += by_block[m][block] == best
    friedman_p = None
    cd = None
    groups: list[list[str]] = []
    if len(methods) >= 3 and len(common) >= 2:
        matrix = np.array([[by_block[m][b] for b in sorted(common)] for m in methods])
        if np.ptp(matrix, axis=0).any():
            friedman_p = float(stats.friedmanchisquare(*matrix).pvalue)
        cd = critical_difference([ranks[m] for m in methods], len(common))
        groups = cliques(ranks, cd) if cd is not None else []
    missing = [m for m in methods if len(by_block[m]) > len(common)]
    if common and missing:
        notes.append(f"ranks, wins and the critical difference use the {len(common)} (task, seed) blocks every method "
                     f"ran; some methods ran more")
    table = []
    for m in methods:
        sub = current[current["method"] == m]
        table.append(MethodRow(
            method=m, provider=str(sub.iloc[-1]["method_version"]), score=method_score(sub), rank=ranks[m],
            wins=int(wins[m]), hv_regret=_hv_regret(sub, kinds), failed_evals=int(sub["failures"].sum()),
            crashed_runs=int(sub["error"].notna().sum()), runs=len(sub), overhead_ms=_overhead(sub)))
    table.sort(key=lambda r: (math.isnan(r.score[0]), -r.score[0] if not math.isnan(r.score[0]) else 0, r.rank))
    first = rows.iloc[0]
    costs = cost_rows(current, kinds)
    if costs:
        notes.append("engine suite: the budget is a cost (full-trial equivalents of budget steps); an evaluation is a "
                     "trial that reached full fidelity within it; overhead is the engine's wall time per trial not "
                     "spent in trials")
    return Group(
        suite=str(first["suite"]), version=int(first["suite_version"]), budget=int(first["budget"]),
        batch=int(first["batch"]), rows=current, kinds=kinds, methods=table, blocks=len(common),
        friedman_p=friedman_p, cd=cd, cliques=groups, trend=_trend(rows, kinds, norm),
        dates=sorted(rows["date"].unique()), notes=notes, costs=costs,
    )


def _median(values: Sequence[float | None]) -> float | None:
    x = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.median(x)) if x else None


def cost_rows(current: pd.DataFrame, kinds: Mapping[str, str]) -> list[CostRow]:
    """The cost table of an engine suite (rows with ``extra`` figures); empty for the other suites."""
    if "extra" not in current.columns:
        return []
    engine = current[current["extra"].map(lambda e: isinstance(e, dict) and "cost_budget" in e)]
    if engine.empty:
        return []
    out: list[CostRow] = []
    fifo: dict[tuple[str, int], float] = {}
    for _, r in engine.iterrows():
        e = r["extra"]
        if r["method"] == "automl:random+fifo" and e.get("time_to_target_s") is not None:
            fifo[(str(r["task"]), int(r["seed"]))] = float(e["time_to_target_s"])
    for method, sub in engine.groupby("method"):
        extras = list(sub["extra"])
        kind = kinds[str(sub.iloc[0]["task"])]
        finals = []
        for _, r in sub.iterrows():
            final = r["final_value"]
            if final is None or (isinstance(final, float) and math.isnan(final)):
                continue
            if kind == "log10 regret":
                finals.append(log10(float(final) - float((r["task_info"] or {})["optimum"])))
            elif kind == "bayesmark":
                finals.append(1.0 - float(final))  # R3: the loss is the validation error
            else:
                finals.append(float(final))
        label = {"log10 regret": "log10 regret", "bayesmark": "best accuracy"}.get(kind, "hypervolume")
        row = CostRow(
            method=str(method), runs=len(sub), final=_median(finals), final_label=label,
            cost_unit=str(extras[0].get("cost_unit", "budget steps")),
            cost_budget=float(np.median([e["cost_budget"] for e in extras])),
            cost_run=float(np.median([e.get("cost_run", e["cost_budget"]) for e in extras])),
            trials=float(np.median([e.get("trials", 0) for e in extras])),
            completed=float(np.median([e.get("completed", 0) for e in extras])),
            stopped=float(np.median([e.get("stopped", 0) for e in extras])))
        if any("target" in e for e in extras):
            reached = [e for e in extras if e.get("time_to_target_s") is not None]
            row.reached = f"{len(reached)}/{len(extras)}"
            row.to_target_s = _median([e["time_to_target_s"] for e in reached])
            row.to_target_cost = _median([e.get("cost_to_target") for e in reached])
            ratios = [fifo[(str(r["task"]), int(r["seed"]))] / float(r["extra"]["time_to_target_s"])
                      for _, r in sub.iterrows()
                      if r["extra"].get("time_to_target_s") and (str(r["task"]), int(r["seed"])) in fifo]
            row.speedup = _median(ratios)
        out.append(row)
    return out


def build_groups(rows: Sequence[Mapping[str, Any]]) -> tuple[list[Group], list[str]]:
    """Every (suite, version, budget) group of ``rows``, and the notes about groups kept apart.

    Raises:
        BenchmarkError: When there are no rows.
    """
    df = pd.DataFrame(list(rows))
    if df.empty:
        raise BenchmarkError("the store holds no benchmark results: run a suite first (automl bench smoke)")
    notes: list[str] = []
    for suite, sub in df.groupby("suite"):
        versions = sorted(int(v) for v in sub["suite_version"].unique())
        if len(versions) > 1:
            notes.append(f"suite {suite} has results of versions {', '.join(map(str, versions))}: each version is "
                         f"shown apart and never compared with another (a new version changed what is measured)")
        budgets = sorted(int(v) for v in sub["budget"].unique())
        if len(budgets) > 1:
            notes.append(f"suite {suite} has results at budgets {', '.join(map(str, budgets))} evaluations: "
                         f"shown apart")
    groups = [build_group(g) for _, g in df.groupby(["suite", "suite_version", "budget"], sort=True)]
    groups.sort(key=lambda g: (g.suite, -g.version, -g.budget))
    return groups, notes


def log10(value: float) -> float:
    return math.log10(max(value, REGRET_FLOOR))
