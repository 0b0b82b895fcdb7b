"""The Markdown report of the tabular comparison, from the JSON-lines files ``compare`` writes.

Scores are in points (accuracy or R2 x 100). A (table, seed) pair is a **tie** when the two systems' test
scores differ by at most :data:`TIE_POINTS` (0.1 point), a win or a loss otherwise; a system that failed
on a pair loses it to one that did not (a pair both failed on is left out). The goal of issue 14, per
budget, against FLAML: automl >= FLAML (win or tie) on at least 2/3 of the pairs, a mean classification
accuracy (mean over tables of each table's mean over seeds) >= FLAML's, and no table worse by more than
:data:`WORST_POINTS` (1 point) on its mean over seeds.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.tabular.datasets import TEST_FRACTION

__all__ = ["TIE_POINTS", "WORST_POINTS", "accuracy_se", "compare", "latest", "load_rows", "render", "verdict"]

TIE_POINTS = 0.1
WORST_POINTS = 1.0
ORDER = ("automl", "flaml", "previous", "autogluon")


def load_rows(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every row of the JSON-lines files, in order.

    Raises:
        ValueError: For a line that is not a JSON object (naming the file and line).
    """
    rows = []
    for path in paths:
        for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON row ({exc.msg})") from exc
            if not isinstance(row, dict) or not {"table", "seed", "system", "budget"} <= row.keys():
                raise ValueError(f"{path}:{number}: a row needs table, seed, system and budget")
            rows.append(row)
    return rows


def key(row: dict[str, Any]) -> tuple[str, int, str, float]:
    return (str(row["table"]), int(row["seed"]), str(row["system"]), float(row["budget"]))


def latest(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, int, str, float], dict[str, Any]]:
    """The last row of each (table, seed, system, budget): a rerun replaces an earlier attempt."""
    return {key(r): r for r in rows}


def _points(row: dict[str, Any] | None) -> float | None:
    if row is None or row.get("status") != "ok" or row.get("score") is None:
        return None
    return 100.0 * float(row["score"])


def compare(rows: Sequence[dict[str, Any]], a: str, b: str, budget: float) -> dict[str, Any]:
    """Wins, ties and losses of ``a`` against ``b`` over the (table, seed) pairs both ran at ``budget``."""
    done = latest(rows)
    pairs = sorted({(t, s) for (t, s, sys, bud) in done if bud == budget and sys in (a, b)})
    out: dict[str, Any] = {"wins": 0, "ties": 0, "losses": 0, "pairs": 0, "diffs": [], "by_table": {}}
    for table, seed in pairs:
        ra, rb = done.get((table, seed, a, budget)), done.get((table, seed, b, budget))
        if ra is None or rb is None or "not installed" in (ra.get("status"), rb.get("status")):
            continue
        pa, pb = _points(ra), _points(rb)
        if pa is None and pb is None:
            continue
        out["pairs"] += 1
        if pa is None or pb is None:
            out["losses" if pa is None else "wins"] += 1
            continue
        diff = pa - pb
        out["diffs"].append(diff)
        out["by_table"].setdefault(table, []).append(diff)
        # The epsilon keeps a difference of exactly 0.1 point a tie despite float rounding (90.0 - 89.9).
        out["wins" if diff > TIE_POINTS + 1e-9 else "losses" if diff < -TIE_POINTS - 1e-9 else "ties"] += 1
    return out


def _table_means(rows: Sequence[dict[str, Any]], system: str, budget: float) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for (table, _seed, sys, bud), row in latest(rows).items():
        p = _points(row)
        if sys == system and bud == budget and p is not None:
            by.setdefault(table, []).append(p)
    return {t: statistics.fmean(v) for t, v in by.items()}


def verdict(rows: Sequence[dict[str, Any]], budget: float, a: str = "automl", b: str = "flaml") -> dict[str, Any]:
    """The three goal checks of ``a`` against ``b`` at ``budget`` (see the module docstring)."""
    c = compare(rows, a, b, budget)
    share = (c["wins"] + c["ties"]) / c["pairs"] if c["pairs"] else None
    tasks = {str(r["table"]): r.get("task") for r in rows}
    ma, mb = _table_means(rows, a, budget), _table_means(rows, b, budget)
    clf = [t for t in ma if t in mb and tasks.get(t) == "classification"]
    mean_a = statistics.fmean(ma[t] for t in clf) if clf else None
    mean_b = statistics.fmean(mb[t] for t in clf) if clf else None
    worst = min(((statistics.fmean(d), t) for t, d in c["by_table"].items()), default=None)
    return {
        **c, "share": share, "share_ok": share is not None and share >= 2 / 3,
        "mean_a": mean_a, "mean_b": mean_b, "mean_ok": mean_a is not None and mean_b is not None and mean_a >= mean_b,
        "worst_table": worst[1] if worst else None, "worst_diff": worst[0] if worst else None,
        "worst_ok": worst is not None and worst[0] >= -WORST_POINTS,
    }


def accuracy_se(rows: Sequence[dict[str, Any]], table: str, budget: float) -> float | None:
    """One standard error of a test accuracy on ``table``, in points: sqrt(p (1 - p) / n) with p the mean
    accuracy of the systems there and n its held-out rows (25% of the table: n_train / 3, to a row). The
    sampling noise of the held-out rows alone, the scale against which a (table, seed) difference is read; a
    difference of two systems on the same rows is correlated and its spread is not this. None for regression."""
    mine = [r for (t, _s, _sys, bud), r in latest(rows).items() if t == table and bud == budget and _points(r) is not None]
    if not mine or mine[0].get("task") != "classification" or not mine[0].get("n_train"):
        return None
    p = statistics.fmean(float(r["score"]) for r in mine)
    n = float(mine[0]["n_train"]) * TEST_FRACTION / (1 - TEST_FRACTION)
    return 100.0 * math.sqrt(p * (1 - p) / n)


def _within_se(rows: Sequence[dict[str, Any]], v: dict[str, Any], budget: float) -> tuple[int, int] | None:
    """(losses smaller than one :func:`accuracy_se`, losses) over the classification pairs of a :func:`verdict`."""
    lost = [(t, d) for t, ds in v["by_table"].items() for d in ds if d < -TIE_POINTS - 1e-9]
    scaled = [(d, accuracy_se(rows, t, budget)) for t, d in lost]
    scaled = [(d, se) for d, se in scaled if se is not None]
    return (sum(-d < se for d, se in scaled), len(scaled)) if scaled else None


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _section(rows: Sequence[dict[str, Any]], budget: float) -> list[str]:
    done = {k: r for k, r in latest(rows).items() if k[3] == budget}
    systems = [s for s in ORDER if any(k[2] == s for k in done)] + sorted({k[2] for k in done} - set(ORDER))
    tables = list(dict.fromkeys(k[0] for k in done))
    info = {str(r["table"]): r for r in rows}
    means = {s: _table_means(rows, s, budget) for s in systems}
    vs = compare(rows, "automl", "flaml", budget)
    lines = [f"## Budget {budget:g} s", "",
             "| table | task | train rows | seeds | " + " | ".join(systems) + " | automl - flaml | W/T/L vs flaml | "
             "1 SE of a test accuracy |",
             "|---|---|---|---|" + "---|" * len(systems) + "---|---|---|"]
    for t in tables:
        seeds = len({k[1] for k in done if k[0] == t})
        d = vs["by_table"].get(t, [])
        wtl = [(x > TIE_POINTS + 1e-9, abs(x) <= TIE_POINTS + 1e-9, x < -TIE_POINTS - 1e-9) for x in d]
        cells = " | ".join(_f(means[s].get(t)) for s in systems)
        lines.append(f"| {t} | {info[t].get('task', '?')} | {info[t].get('n_train', '?')} | {seeds} | {cells} | "
                     f"{_f(statistics.fmean(d)) if d else '-'} | "
                     f"{sum(w for w, _, _ in wtl)}/{sum(x for _, x, _ in wtl)}/{sum(lo for _, _, lo in wtl)} | "
                     f"{_f(accuracy_se(rows, t, budget))} |")
    lines += ["", f"Cells: mean test score over the seeds (accuracy or R2, in points); ties within {TIE_POINTS} point. "
              "1 SE: the binomial standard error of one system's test accuracy on that table's held-out rows, in "
              "points (the noise of the held-out sample alone; regression: -).", ""]
    for other in [s for s in systems if s != "automl"]:
        if "automl" not in systems:
            break
        v = verdict(rows, budget, "automl", other)
        if not v["pairs"]:
            continue
        lines.append(
            f"- **automl vs {other}**: {v['wins']} wins, {v['ties']} ties, {v['losses']} losses over {v['pairs']} "
            f"(table, seed) pairs; automl >= {other} on {_f(100 * v['share'], 0)}% ({_ok(v['share_ok'])}: >= 67%); "
            f"mean difference {_f(statistics.fmean(v['diffs'])) if v['diffs'] else '-'} points; mean classification "
            f"accuracy {_f(v['mean_a'])} vs {_f(v['mean_b'])} ({_ok(v['mean_ok'])}); worst table {v['worst_table']} "
            f"{_f(v['worst_diff'])} points ({_ok(v['worst_ok'])}: >= -{WORST_POINTS:g})")
        small = _within_se(rows, v, budget)
        if small is not None:
            lines.append(f"  - of the {small[1]} classification pairs automl lost, {small[0]} by less than one "
                         "standard error of a test accuracy")
    lines += ["", f"| system | runs | failed | mean trials | mean wall s [max] (budget {budget:g}) | mean fit s | "
              "best models | best is an ensemble | mean front size |", "|---|---|---|---|---|---|---|---|---|"]
    for s in systems:
        mine = [r for k, r in done.items() if k[2] == s]
        if all(r.get("status") == "not installed" for r in mine):
            lines.append(f"| {s} | not installed | - | - | - | - | - | - | - |")
            continue
        ok = [r for r in mine if r.get("status") == "ok"]
        walls = [float(r["wall_s"]) for r in mine if r.get("wall_s") is not None]
        models = Counter(str(r.get("best_model")) for r in ok if r.get("best_model"))
        fronts = [r["front_size"] for r in ok if r.get("front_size") is not None]
        trials = [r["trials"] for r in mine if r.get("trials") is not None]
        lines.append(
            f"| {s} | {len(mine)} | {sum(r.get('status') == 'failed' for r in mine)} | "
            f"{_f(statistics.fmean(trials), 0) if trials else '-'} | "
            f"{_f(statistics.fmean(walls), 0) if walls else '-'} [{_f(max(walls), 0) if walls else '-'}] | "
            f"{_f(statistics.fmean(float(r['fit_s']) for r in ok if r.get('fit_s')), 0) if any(r.get('fit_s') for r in ok) else '-'} | "
            f"{', '.join(f'{m} {n}' for m, n in models.most_common(4)) or '-'} | "
            f"{sum(bool(r.get('best_is_ensemble')) for r in ok)}/{len(ok)} | "
            f"{_f(statistics.fmean(fronts), 1) if fronts else '-'} |")
    lines.append("")
    wall_by = {s: [float(r["wall_s"]) for k, r in done.items() if k[2] == s and r.get("wall_s") is not None]
               for s in ("automl", "flaml")}
    if all(wall_by.values()):
        extra = statistics.fmean(wall_by["automl"]) - statistics.fmean(wall_by["flaml"])
        if extra > 0.1 * budget:
            # The comparison is at equal wall time only if the engine keeps to its budget as FLAML does.
            lines.append(f"- **not equal wall time**: automl's whole process ran {extra:.0f} s longer than FLAML's "
                         f"on average (budget {budget:g} s)")
    failures = [r for r in done.values() if r.get("status") == "failed"]
    for r in failures[:10]:
        first = str(r.get("error", "")).strip().splitlines()[:1]
        lines.append(f"- failed: {r['system']} on {r['table']} seed {r['seed']}: {first[0][:200] if first else '?'}")
    return [*lines, ""]


def render(rows: Sequence[dict[str, Any]], sources: Sequence[str] = (), seeds: Sequence[int] | None = None) -> str:
    """The whole report: one section per budget, then where the rows came from (``seeds``: the rows kept)."""
    budgets = sorted({float(r["budget"]) for r in rows})
    lines = ["# Tabular comparison: automl vs FLAML vs the previous engine behaviour", ""]
    if sources:
        only = f", seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} only" if seeds is not None else ""
        lines += [f"From {', '.join(f'`{s}`' for s in sources)}{only}.", ""]
    for budget in budgets:
        lines += _section(rows, budget)
    envs = [r.get("env", {}) for r in rows]
    loads = [x for r in rows for x in r.get("load_before_after") or []]  # a row may not know its load (null)
    commits = sorted({str(e.get("commit")) for e in envs if e})
    dates = sorted({str(e.get("date")) for e in envs if e})
    versions = sorted({json.dumps(e.get("versions", {}), sort_keys=True) for e in envs if e})
    lines += ["## Environment", "", f"- commits {', '.join(commits) or '-'}; dates {', '.join(dates) or '-'}",
              *[f"- `{v}`" for v in versions],
              f"- 1-minute load average before/after each run: {_f(min(loads, default=None), 1)} to "
              f"{_f(max(loads, default=None), 1)} (2 cores; above ~2.5 the wall-time budgets buy less work)", ""]
    return "\n".join(lines)
