"""The figures of a run, drawn from its store rows: one code path for ``automl report`` and ``automl dashboard``.

Every builder takes a :class:`ReportData` (a run's rows, read once) and returns a `plotly
<https://plotly.com/python/>`_ figure (or None when there is nothing to draw): the static report
embeds it as HTML (:mod:`automl.html_report`), the live dashboard serves its JSON (:mod:`automl.dashboard`),
and both pages hand it to the same plotly.js. Hover texts are escaped here, because plotly renders a
few HTML tags in them.

Parameter importance is scikit-learn's permutation importance
(:func:`sklearn.inspection.permutation_importance`) of a random-forest surrogate
(:class:`sklearn.ensemble.RandomForestRegressor`) fitted from the parameters to the primary
objective over the completed trials, one column per parameter (inactive conditional
parameters get a value outside their range, choices their index), so a parameter's
importance is the drop in the surrogate's R² when that column is shuffled.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automl.errors import AutoMLError
from automl.interfaces import Objective
from automl.records import Front, RunRecord, StepRecord, TrialRecord
from automl.run import Run

__all__ = ["ReportData", "RunFigures", "history_figure", "importance_figure", "parallel_figure",
           "parameter_importance", "pareto_figures", "run_figures", "rungs_figure"]

#: Colours by trial status (also used for the status cells of the table).
STATUS_COLOURS = {"completed": "#1f77b4", "stopped": "#ff7f0e", "failed": "#d62728", "running": "#7f7f7f",
                  "paused": "#9467bd", "pending": "#bbbbbb"}
FRONT_COLOUR = "#e41a1c"
#: Completed trials needed before a surrogate's importances mean anything.
MIN_IMPORTANCE_TRIALS = 5


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _hover(trial: Mapping[str, Any], objectives: Sequence[Objective]) -> str:
    """Trial number, objectives and config as escaped hover text (plotly renders ``<br>``)."""
    metrics = trial.get("metrics") or {}
    lines = [f"<b>trial {int(trial['number'])}</b> ({html.escape(str(trial['status']))})"]
    lines += [f"{html.escape(o.metric)} = {html.escape(_fmt(metrics.get(o.metric)))}" for o in objectives]
    lines += [f"{html.escape(str(k))} = {html.escape(_fmt(v))}" for k, v in (trial.get("config") or {}).items()]
    return "<br>".join(lines)


@dataclass
class ReportData:
    """What the report is drawn from: the run's rows, read once."""

    info: RunRecord
    trials: list[TrialRecord]
    steps: list[StepRecord]
    front: Front
    objectives: list[Objective]
    constraints: list[str]
    spec: Any = None
    space: Any = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, run: Run) -> ReportData:
        """Read ``run``; raises :class:`AutoMLError` when it has no trials."""
        data = cls.read(run)
        if not data.trials:
            raise AutoMLError(
                f"{str(run.dir)!r} holds a run ({data.info['name']}, {data.info['status']}) with no trials yet: "
                "nothing to report; run or resume the search first"
            )
        return data

    @classmethod
    def read(cls, run: Run) -> ReportData:
        """Read ``run`` as it is now, with no trials yet too (a search that just started)."""
        info = run.info()
        trials = run.trials()
        objectives = [Objective(**o) for o in info.objectives["objectives"]]
        constraints = [str(c) for c in run.constraints()]
        data = cls(info, trials, run.steps(), run.front(), objectives, constraints)
        try:
            from automl.spec import parse_spec

            data.spec = parse_spec(info.spec_text)
            from automl.plan import build_space

            data.space = build_space(data.spec)
        except Exception as exc:  # noqa: BLE001 - the report still renders without the parsed spec
            data.notes.append(f"the stored spec could not be parsed again ({type(exc).__name__}); "
                              "parameter scales and rungs are left out")
        return data

    @property
    def members(self) -> set[int]:
        return set(self.front.numbers)

    @property
    def params(self) -> list[str]:
        """Parameter names: the space's order, then any other config key in order of appearance."""
        names: list[str] = list(self.space) if self.space is not None else []
        for t in self.trials:
            names += [k for k in t.config if k not in names]
        return names


# -- figures ----------------------------------------------------------------------------------


def _layout(fig: Any, title: str, height: int = 420) -> Any:
    fig.update_layout(title=title, height=height, margin={"l": 60, "r": 30, "t": 50, "b": 50},
                      template="plotly_white", legend={"orientation": "h", "y": -0.2})
    return fig


def history_figure(data: ReportData) -> Any:
    """Primary objective per trial (completed and stopped), with the best so far."""
    import plotly.graph_objects as go

    primary = data.objectives[0]
    fig = go.Figure()
    for status in ("completed", "stopped"):
        rows = [t for t in data.trials if t.status == status
                and _finite(t.metrics.get(primary.metric)) is not None]
        if not rows:
            continue
        fig.add_trace(go.Scatter(
            x=[t.number for t in rows], y=[float(t.metrics[primary.metric]) for t in rows], mode="markers",
            name=status if status == "completed" else "stopped early (last reported value)",
            marker={"color": STATUS_COLOURS[status], "size": 8, "symbol": "circle" if status == "completed" else "x"},
            text=[_hover(t, data.objectives) for t in rows], hovertemplate="%{text}<extra></extra>"))
    numbers, best = best_so_far(data)
    if numbers:
        fig.add_trace(go.Scatter(x=numbers, y=best, mode="lines", line={"shape": "hv"},
                                 name=f"best so far ({primary.mode})", line_color="#2ca02c"))
    fig.update_xaxes(title="trial number")
    fig.update_yaxes(title=primary.metric)
    return _layout(fig, f"Optimisation history: {primary.metric} ({primary.mode})")


def _front_points(data: ReportData) -> list[TrialRecord]:
    """Trials with every objective finite (completed, and stopped ones when the front admits them)."""
    stopped = {t.number for t in data.trials if t.status == "stopped"}
    statuses = {"completed", "stopped"} if any(n in stopped for n in data.front.numbers) else {"completed"}
    out = []
    for t in data.trials:
        metrics = t.metrics
        if t.status in statuses and all(_finite(metrics.get(o.metric)) is not None for o in data.objectives):
            out.append(t)
    return out


def pareto_figures(data: ReportData) -> list[Any]:
    """2-D scatter per pair of the first three objectives, and 3-D over them when there are three."""
    import plotly.graph_objects as go

    objectives = data.objectives[:3]
    if len(objectives) < 2:
        return []
    points = _front_points(data)
    members = data.members
    groups = [("other trials", [t for t in points if t.number not in members], "#9aa5b1", 7, "circle"),
              ("Pareto front", [t for t in points if t.number in members], FRONT_COLOUR, 11, "diamond")]
    figures = []
    for i in range(len(objectives)):
        for j in range(i + 1, len(objectives)):
            a, b = objectives[i], objectives[j]
            fig = go.Figure()
            for name, rows, colour, size, symbol in groups:
                if not rows:
                    continue
                ordered = sorted(rows, key=lambda t: float(t.metrics[a.metric]))
                fig.add_trace(go.Scatter(
                    x=[float(t.metrics[a.metric]) for t in ordered], y=[float(t.metrics[b.metric]) for t in ordered],
                    mode="markers", name=name, marker={"color": colour, "size": size, "symbol": symbol,
                                                       "line": {"width": 1, "color": "#333"}},
                    text=[_hover(t, data.objectives) for t in ordered], hovertemplate="%{text}<extra></extra>"))
            fig.update_xaxes(title=f"{a.metric} ({a.mode})")
            fig.update_yaxes(title=f"{b.metric} ({b.mode})")
            figures.append(_layout(fig, f"Pareto front: {a.metric} vs {b.metric}"))
    if len(objectives) == 3:
        a, b, c = objectives
        fig = go.Figure()
        for name, rows, colour, size, _symbol in groups:
            if rows:
                fig.add_trace(go.Scatter3d(
                    x=[float(t.metrics[a.metric]) for t in rows], y=[float(t.metrics[b.metric]) for t in rows],
                    z=[float(t.metrics[c.metric]) for t in rows], mode="markers", name=name,
                    marker={"color": colour, "size": size * 0.6}, text=[_hover(t, data.objectives) for t in rows],
                    hovertemplate="%{text}<extra></extra>"))
        fig.update_layout(scene={"xaxis_title": a.metric, "yaxis_title": b.metric, "zaxis_title": c.metric})
        figures.append(_layout(fig, f"Pareto front in 3-D: {a.metric}, {b.metric}, {c.metric}", height=560))
    return figures


def _encode(data: ReportData, rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[float]], dict[str, Any]]:
    """One numeric column per parameter: log10 for log-scaled ones, index for choices, a value
    below the range for an inactive parameter. Returns names, rows and each column's ticks."""
    from automl.space import Choice

    names = [p for p in data.params if any(p in (r.get("config") or {}) for r in rows)]
    columns: dict[str, list[float | None]] = {}
    ticks: dict[str, Any] = {}
    for name in names:
        param = data.space[name] if data.space is not None and name in data.space else None
        raw = [(r.get("config") or {}).get(name, _MISSING) for r in rows]
        present = [v for v in raw if v is not _MISSING]
        if isinstance(param, Choice) or any(isinstance(v, (str, bool)) or v is None for v in present):
            # Keys are JSON texts, so 1, "1" and True stay apart; the space's order where it is known.
            choices: list[Any] = list(param.values) if isinstance(param, Choice) else [
                json.loads(k) for k in sorted({json.dumps(v) for v in present})]
            keys = [json.dumps(v) for v in choices]
            labels = [str(v) for v in choices]
            code = {k: float(i) for i, k in enumerate(keys)}
            columns[name] = [None if v is _MISSING else code.get(json.dumps(v), math.nan) for v in raw]
            ticks[name] = {"tickvals": list(code.values()), "ticktext": labels}
        else:
            log = bool(getattr(param, "log", False))
            columns[name] = [None if v is _MISSING else (math.log10(float(v)) if log and float(v) > 0 else float(v))
                             for v in raw]
            ticks[name] = {"log": log}
    out_names = []
    matrix_cols = []
    for name in names:
        col = columns[name]
        known = [v for v in col if v is not None and math.isfinite(v)]
        if not known:
            continue
        lo, hi = min(known), max(known)
        inactive = lo - max(0.1 * (hi - lo), 1.0 if ticks[name].get("tickvals") else 0.1 * max(abs(lo), 1e-9) or 1.0)
        if any(v is None for v in col):
            ticks[name]["inactive"] = inactive
        matrix_cols.append([inactive if v is None else v for v in col])
        out_names.append(name)
    matrix = [list(r) for r in zip(*matrix_cols, strict=True)] if matrix_cols else [[] for _ in rows]
    return out_names, matrix, ticks


_MISSING = object()


def parallel_figure(data: ReportData) -> Any | None:
    """Parallel coordinates over the parameters and the primary objective of completed trials."""
    import plotly.graph_objects as go

    primary = data.objectives[0]
    rows = [t for t in data.trials if t.status == "completed"
            and _finite(t.metrics.get(primary.metric)) is not None]
    if len(rows) < 2:
        return None
    names, matrix, ticks = _encode(data, rows)
    if not names:
        return None
    dimensions = []
    for k, name in enumerate(names):
        values = [r[k] for r in matrix]
        dim: dict[str, Any] = {"label": f"log10({name})" if ticks[name].get("log") else name, "values": values}
        if "tickvals" in ticks[name]:
            dim["tickvals"] = list(ticks[name]["tickvals"])
            dim["ticktext"] = list(ticks[name]["ticktext"])
            if "inactive" in ticks[name]:
                dim["tickvals"].append(ticks[name]["inactive"])
                dim["ticktext"].append("(inactive)")
        elif "inactive" in ticks[name]:
            lo, hi = min(values), max(values)
            span = [v for v in values if v != ticks[name]["inactive"]]
            grid = [min(span), (min(span) + max(span)) / 2, max(span)] if span else []
            dim["tickvals"] = [ticks[name]["inactive"], *grid]
            dim["ticktext"] = ["(inactive)", *[f"{v:.3g}" for v in grid]]
            dim["range"] = [lo, hi]
        dimensions.append(dim)
    objective_values = [float(t.metrics[primary.metric]) for t in rows]
    dimensions.append({"label": primary.metric, "values": objective_values})
    fig = go.Figure(go.Parcoords(
        line={"color": objective_values, "colorscale": "Viridis", "showscale": True,
              "reversescale": primary.mode == "min", "colorbar": {"title": {"text": primary.metric}}},
        dimensions=dimensions))
    _layout(fig, f"Parallel coordinates: parameters and {primary.metric} (completed trials)", height=480)
    return fig.update_layout(margin={"t": 110, "l": 70, "r": 40}, title_y=0.97)


def parameter_importance(data: ReportData, *, seed: int = 0) -> list[tuple[str, float, float]] | str:
    """Permutation importance of each parameter for the primary objective, via a random-forest surrogate.

    Returns:
        ``[(parameter, mean importance, std), ...]`` sorted by importance, or a sentence
        saying why there is none (too few trials, scikit-learn missing, nothing varies).
    """
    primary = data.objectives[0]
    rows = [t for t in data.trials if t.status == "completed"
            and _finite(t.metrics.get(primary.metric)) is not None]
    if len(rows) < MIN_IMPORTANCE_TRIALS:
        return (f"parameter importance needs at least {MIN_IMPORTANCE_TRIALS} completed trials "
                f"with {primary.metric}; this run has {len(rows)}")
    try:
        import numpy as np
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.inspection import permutation_importance
    except ImportError:
        return "parameter importance needs scikit-learn: pip install scikit-learn (or 'automl[report]')"
    names, matrix, _ = _encode(data, rows)
    X = np.asarray(matrix, dtype=float)
    varying = [k for k in range(len(names)) if len(np.unique(X[:, k])) > 1]
    y = np.asarray([primary.to_min(float(t.metrics[primary.metric])) for t in rows])
    if not varying or float(np.ptp(y)) == 0.0:
        return "no parameter or objective varies over the completed trials: nothing to attribute"
    X = X[:, varying]
    forest = RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1).fit(X, y)
    result = permutation_importance(forest, X, y, n_repeats=10, random_state=seed, n_jobs=1)
    out = [(names[k], float(m), float(s)) for k, m, s in zip(varying, result.importances_mean, result.importances_std)]
    return sorted(out, key=lambda r: -r[1])


def importance_figure(importance: list[tuple[str, float, float]], metric: str) -> Any:
    import plotly.graph_objects as go

    ordered = list(reversed(importance))
    fig = go.Figure(go.Bar(x=[r[1] for r in ordered], y=[r[0] for r in ordered], orientation="h",
                           error_x={"type": "data", "array": [r[2] for r in ordered]}, marker_color="#4c78a8",
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_xaxes(title="drop in the surrogate's R² when the parameter is shuffled")
    return _layout(fig, f"Parameter importance for {metric} (random-forest surrogate, permutation importance)",
                   height=max(260, 60 + 32 * len(importance)))


def rung_milestones_of(data: ReportData, max_budget: int) -> list[int]:
    """The rung budgets of the run's ASHA / MO-ASHA scheduler (empty for other schedulers)."""
    spec = data.spec
    if spec is None or spec.scheduler.name not in ("asha", "moasha") or max_budget <= 1:
        return []
    from automl.schedulers import rung_milestones

    options = dict(spec.scheduler.options)
    return rung_milestones(int(options.get("grace_period", 1)), float(options.get("reduction_factor", 3)), max_budget)


def rungs_figure(data: ReportData, milestones: Sequence[int]) -> Any | None:
    """The primary objective per budget step for every trial, stopped trials in their own colour."""
    import plotly.graph_objects as go

    primary = data.objectives[0]
    by_trial: dict[int, list[tuple[int, float]]] = {}
    for s in data.steps:
        value = _finite((s.get("metrics") or {}).get(primary.metric))
        if value is not None:
            by_trial.setdefault(int(s.number), []).append((int(s.step), value))
    if not by_trial or max(len(v) for v in by_trial.values()) < 2:
        return None
    status = {t.number: t.status for t in data.trials}
    # One trace per status, the trials' curves apart by a gap (None): plotly draws thousands of trials this way,
    # where a trace per trial made a 10,000-trial page unusable. Hovering a point still names its trial.
    curves: dict[str, tuple[list[Any], list[Any], list[Any]]] = {}
    for number, points in sorted(by_trial.items()):
        points.sort()
        st = str(status.get(number, "running"))
        xs, ys, texts = curves.setdefault(st, ([], [], []))
        xs += [p[0] for p in points] + [None]
        ys += [p[1] for p in points] + [None]
        texts += [f"trial {number} ({html.escape(st)})"] * len(points) + [None]
    fig = go.Figure()
    for st, (xs, ys, texts) in curves.items():
        fig.add_trace(go.Scatter(
            x=xs[:-1], y=ys[:-1], text=texts[:-1], mode="lines+markers", name=st, connectgaps=False,
            line={"color": STATUS_COLOURS.get(st, "#7f7f7f"), "width": 1}, marker={"size": 5},
            hovertemplate="%{text}<br>step %{x}: %{y:.4g}<extra></extra>"))
    for m in milestones:
        fig.add_vline(x=m, line_dash="dash", line_color="#555", annotation_text=f"rung {m}")
    fig.update_xaxes(title="budget step")
    fig.update_yaxes(title=primary.metric)
    return _layout(fig, f"Learning curves and early-stopping rungs: {primary.metric} per budget step", height=460)


def rung_table(data: ReportData, milestones: Sequence[int]) -> list[dict[str, Any]]:
    """Per rung: trials that reached it, and how many of those were stopped there."""
    reached: dict[int, int] = {}
    for t in data.trials:
        reached[int(t.number)] = int(t.budget or 0)
    out = []
    for m in milestones:
        at = [n for n, b in reached.items() if b >= m]
        stopped_here = [t for t in data.trials if t.status == "stopped" and int(t.budget or 0) == m]
        out.append({"rung": m, "reached": len(at), "stopped": len(stopped_here)})
    return out


# -- every figure of a run, and of runs side by side ---------------------------------------------


@dataclass
class RunFigures:
    """Every figure of one run, with the sentences that stand in for the ones that cannot be drawn.

    Attributes:
        history: The optimisation history, or None before any trial reported the primary objective.
        pareto: The 2-D fronts and the 3-D one (empty with one objective).
        parallel: Parallel coordinates, or None with fewer than two completed trials.
        importance: Parameter importance, or None (``importance_note`` says why; not computed unless asked).
        rungs: Learning curves with the rungs marked, or None when no trial reported two steps.
        rung_note: One sentence on early stopping in the run (its scheduler, rungs and budget).
        milestones: The scheduler's rung budgets (empty for other schedulers).
        max_budget: Budget steps of a full trial.
    """

    history: Any = None
    pareto: list[Any] = field(default_factory=list)
    parallel: Any = None
    importance: Any = None
    importance_note: str = ""
    rungs: Any = None
    milestones: list[int] = field(default_factory=list)
    max_budget: int = 1
    rung_note: str = ""


def run_figures(data: ReportData, *, importance: bool = True) -> RunFigures:
    """The figures of ``data``: what ``automl report`` embeds and ``automl dashboard`` serves.

    Args:
        data: The run's rows.
        importance: Fit the importance surrogate (seconds over thousands of trials; the dashboard asks
            for it on its own).
    """
    primary = data.objectives[0]
    out = RunFigures()
    if any(_finite(t.metrics.get(primary.metric)) is not None for t in data.trials):
        out.history = history_figure(data)
    out.pareto = pareto_figures(data)
    out.parallel = parallel_figure(data)
    if importance:
        ranked = parameter_importance(data)
        if isinstance(ranked, str):
            out.importance_note = ranked
        else:
            out.importance = importance_figure(ranked, primary.metric)
    out.max_budget = max((int(t.max_budget or 1) for t in data.trials), default=1)
    out.milestones = rung_milestones_of(data, out.max_budget)
    out.rungs = rungs_figure(data, out.milestones)
    scheduler = data.spec.scheduler.name if data.spec is not None else "unknown"
    if out.max_budget <= 1:
        out.rung_note = "Every trial runs one budget step: there is nothing to stop early."
    elif out.milestones:
        out.rung_note = (f"Scheduler {scheduler}: rungs at budget steps {', '.join(map(str, out.milestones))} "
                          f"of {out.max_budget}.")
    else:
        out.rung_note = f"Scheduler {scheduler}: {out.max_budget} budget steps per trial, no rungs."
    return out


#: One colour per run in a comparison (plotly's qualitative "Plotly" palette less the status colours' clash).
RUN_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def best_so_far(data: ReportData) -> tuple[list[int], list[float]]:
    """Trial numbers of the completed trials and the best primary value up to each."""
    primary = data.objectives[0]
    done = sorted((t for t in data.trials if t.status == "completed"
                   and _finite(t.metrics.get(primary.metric)) is not None), key=lambda t: t.number)
    best: list[float] = []
    for t in done:
        value = float(t.metrics[primary.metric])
        best.append(value if not best else (max if primary.mode == "max" else min)(best[-1], value))
    return [t.number for t in done], best


def comparison_figures(runs: Sequence[tuple[str, ReportData]]) -> list[Any]:
    """Runs side by side: the best primary value so far of each, and each front over the first two
    objectives the runs share (when they share two). ``runs`` pairs a label with the run's rows."""
    import plotly.graph_objects as go

    primary = runs[0][1].objectives[0]
    fig = go.Figure()
    for k, (label, data) in enumerate(runs):
        numbers, best = best_so_far(data)
        if data.objectives[0].metric == primary.metric and numbers:
            fig.add_trace(go.Scatter(x=numbers, y=best, mode="lines+markers", line={"shape": "hv"},
                                     name=html.escape(label), line_color=RUN_COLOURS[k % len(RUN_COLOURS)],
                                     hovertemplate=f"{html.escape(label)}<br>trial %{{x}}: %{{y:.4g}}<extra></extra>"))
    fig.update_xaxes(title="trial number")
    fig.update_yaxes(title=primary.metric)
    figures = [_layout(fig, f"Best {primary.metric} so far ({primary.mode}), by run")]
    shared = [o for o in runs[0][1].objectives
              if all(any(p.metric == o.metric for p in d.objectives) for _, d in runs)][:2]
    if len(shared) == 2:
        a, b = shared
        fig = go.Figure()
        for k, (label, data) in enumerate(runs):
            by_number = {t.number: t for t in data.trials}
            rows = [by_number[n] for n in data.front.numbers if n in by_number
                    and _finite(by_number[n].metrics.get(a.metric)) is not None
                    and _finite(by_number[n].metrics.get(b.metric)) is not None]
            rows.sort(key=lambda t: float(t.metrics[a.metric]))
            fig.add_trace(go.Scatter(
                x=[float(t.metrics[a.metric]) for t in rows], y=[float(t.metrics[b.metric]) for t in rows],
                mode="lines+markers", line={"shape": "hv"}, name=html.escape(label),
                marker={"color": RUN_COLOURS[k % len(RUN_COLOURS)], "size": 9},
                text=[_hover(t, data.objectives) for t in rows], hovertemplate="%{text}<extra></extra>"))
        fig.update_xaxes(title=f"{a.metric} ({a.mode})")
        fig.update_yaxes(title=f"{b.metric} ({b.mode})")
        figures.append(_layout(fig, f"Pareto fronts: {a.metric} vs {b.metric}, by run"))
    return figures


def failure_groups(data: ReportData) -> list[dict[str, Any]]:
    """The failed trials grouped by reason, the most frequent first: ``{"reason", "numbers", "count"}``."""
    failures: dict[str, list[int]] = {}
    for t in data.trials:
        if t.status == "failed":
            failures.setdefault(str(t.error or "no reason recorded"), []).append(int(t.number))
    return [{"reason": r, "numbers": ns, "count": len(ns)}
            for r, ns in sorted(failures.items(), key=lambda kv: -len(kv[1]))]
