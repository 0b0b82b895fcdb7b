"""``automl report``: one self-contained HTML file about a run.

Sections: optimisation history, the Pareto front (2-D for each pair of the first three
objectives and 3-D over them, front members highlighted, hover shows the config), parallel
coordinates, parameter importance, early-stopping rungs, the trial table and the failures
with their reasons.

Plots are `plotly <https://plotly.com/python/>`_ figures; plotly.js is written into the page
once, so the file opens offline. The page is a Jinja2 template with autoescaping: every
config value, metric name and error text is escaped (plotly escapes ``</`` in its JSON, and
hover texts are escaped here because plotly renders a few HTML tags in them).

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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl.errors import AutoMLError
from automl.interfaces import Objective
from automl.records import Front, RunRecord, StepRecord, TrialRecord
from automl.run import Run

__all__ = ["ReportData", "build_report", "parameter_importance", "write_report"]

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
        info = run.info()
        trials = run.trials()
        if not trials:
            raise AutoMLError(
                f"{str(run.dir)!r} holds a run ({info['name']}, {info['status']}) with no trials yet: "
                "nothing to report; run or resume the search first"
            )
        data = cls(info, trials, run.steps(), run.front(), run.objectives(), [str(c) for c in run.constraints()])
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
    done = sorted((t for t in data.trials if t.status == "completed"
                   and _finite(t.metrics.get(primary.metric)) is not None), key=lambda t: t.number)
    best: list[float] = []
    for t in done:
        value = float(t.metrics[primary.metric])
        best.append(value if not best else (max if primary.mode == "max" else min)(best[-1], value))
    if done:
        fig.add_trace(go.Scatter(x=[t.number for t in done], y=best, mode="lines", line={"shape": "hv"},
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
    fig = go.Figure()
    shown: set[str] = set()
    for number, points in sorted(by_trial.items()):
        points.sort()
        st = status.get(number, "running")
        fig.add_trace(go.Scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=st,
            legendgroup=st, showlegend=st not in shown, line={"color": STATUS_COLOURS.get(st, "#7f7f7f"), "width": 1},
            marker={"size": 5}, hovertemplate=f"trial {number} ({html.escape(st)})<br>step %{{x}}: %{{y:.4g}}<extra></extra>"))
        shown.add(st)
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


# -- the page ---------------------------------------------------------------------------------


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>automl report: {{ info.name }}</title>
<style>
 body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
        padding: 1rem 2rem; color: #222; }
 h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
 table { border-collapse: collapse; font-size: .85rem; width: 100%; }
 th, td { border: 1px solid #ddd; padding: .25rem .45rem; text-align: left; vertical-align: top; }
 th { background: #f4f6f8; position: sticky; top: 0; }
 tr.front td { background: #fff1f0; }
 .status-completed { color: #1f77b4; } .status-stopped { color: #ff7f0e; } .status-failed { color: #d62728; }
 .note { color: #555; font-style: italic; } .summary td:first-child { font-weight: 600; width: 14rem; }
 code { background: #f4f6f8; padding: 0 .2rem; }
 .scroll { max-height: 36rem; overflow: auto; }
</style>
<script type="text/javascript">{{ plotly_js }}</script>
</head>
<body>
<h1>{{ info.name }}</h1>
<p>automl run report, written {{ written }} from <code>{{ directory }}</code></p>
<table class="summary">
 <tr><td>status</td><td>{{ info.status }}</td></tr>
 <tr><td>trials</td><td>{% for s, n in counts %}{{ n }} {{ s }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
 <tr><td>objectives</td><td>{% for o in objectives %}{{ o.metric }} ({{ o.mode }}){% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
 {% if constraints %}<tr><td>constraints</td><td>{{ constraints | join(", ") }}</td></tr>{% endif %}
 {% if setup %}<tr><td>trainer, searcher, scheduler</td><td>{{ setup }}</td></tr>{% endif %}
 <tr><td>Pareto front</td><td>{{ front_size }} of {{ front.candidates }} candidates{% if front.hypervolume is not none %}, hypervolume {{ fmt(front.hypervolume) }}{% endif %}{% if front.provisional %} (provisional: computed from the store, the search has not written front.json){% endif %}</td></tr>
 {% if wall %}<tr><td>wall time</td><td>{{ wall }}</td></tr>{% endif %}
 <tr><td>versions</td><td>{% for k, v in versions %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
</table>
{% for note in notes %}<p class="note">{{ note }}</p>{% endfor %}

<h2 id="history">Optimisation history</h2>
{% if figures.history %}{{ figures.history }}{% else %}<p class="note">No trial reported {{ objectives[0].metric }} yet.</p>{% endif %}

<h2 id="front">Pareto front</h2>
{% if figures.pareto %}{% for f in figures.pareto %}{{ f }}{% endfor %}
{% else %}<p class="note">One objective: the front is the best trial.</p>{% endif %}
{% if front_rows %}
<table>
 <tr><th>#</th>{% for o in objectives %}<th>{{ o.metric }} ({{ o.mode }})</th>{% endfor %}<th>config</th><th>model</th></tr>
 {% for m in front_rows %}<tr><td>{{ m.number }}</td>{% for v in m["values"] %}<td>{{ v }}</td>{% endfor %}<td>{{ m.config }}</td><td>{{ m.model }}</td></tr>{% endfor %}
</table>
{% else %}<p class="note">No trial is on the front yet.</p>{% endif %}

<h2 id="parallel">Parallel coordinates</h2>
{% if figures.parallel %}{{ figures.parallel }}{% else %}<p class="note">Needs at least two completed trials with parameters.</p>{% endif %}

<h2 id="importance">Parameter importance</h2>
<p class="note">scikit-learn's permutation importance of a random-forest surrogate fitted from the parameters to {{ objectives[0].metric }} over the completed trials.</p>
{% if figures.importance %}{{ figures.importance }}{% else %}<p class="note">{{ importance_note }}</p>{% endif %}

<h2 id="rungs">Early stopping</h2>
{% if rung_note %}<p class="note">{{ rung_note }}</p>{% endif %}
{% if figures.rungs %}{{ figures.rungs }}{% endif %}
{% if rungs %}
<table><tr><th>rung (budget step)</th><th>trials that reached it</th><th>stopped there</th></tr>
{% for r in rungs %}<tr><td>{{ r.rung }}</td><td>{{ r.reached }}</td><td>{{ r.stopped }}</td></tr>{% endfor %}</table>
{% endif %}

<h2 id="failures">Failures</h2>
{% if failures %}
<table><tr><th>reason</th><th>trials</th><th>count</th></tr>
{% for f in failures %}<tr><td>{{ f.reason }}</td><td>{{ f.numbers }}</td><td>{{ f.count }}</td></tr>{% endfor %}</table>
{% else %}<p class="note">No trial failed.</p>{% endif %}

<h2 id="trials">Trials</h2>
<div class="scroll"><table>
 <tr><th>#</th><th>status</th><th>budget</th>{% for o in objectives %}<th>{{ o.metric }}</th>{% endfor %}<th>seconds</th><th>config</th><th>error</th></tr>
 {% for t in trial_rows %}<tr{% if t.front %} class="front"{% endif %}><td>{{ t.number }}</td><td class="status-{{ t.status }}">{{ t.status }}{% if t.front %} (front){% endif %}</td><td>{{ t.budget }}</td>{% for v in t["values"] %}<td>{{ v }}</td>{% endfor %}<td>{{ t.duration }}</td><td>{{ t.config }}</td><td>{{ t.error }}</td></tr>
 {% endfor %}
</table></div>
</body>
</html>
"""


def _config_text(config: Mapping[str, Any] | None) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in (config or {}).items())


def build_report(run_dir: str | Path) -> str:
    """The report of the run in ``run_dir`` as one HTML document.

    Raises:
        AutoMLError: When the directory holds no run, the run has no trials, or plotly
            is not installed.
    """
    try:
        import jinja2
        from markupsafe import Markup
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise AutoMLError(f"automl report needs plotly and jinja2 ({exc.name} is missing): "
                          "pip install 'automl[report]'") from exc
    run = Run.open(run_dir)
    data = ReportData.load(run)
    objectives = data.objectives
    members = data.members

    def html_of(fig: Any, name: str) -> Markup:
        return Markup(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}",
                                  config={"displaylogo": False, "responsive": True}))

    figures: dict[str, Any] = dict.fromkeys(("history", "parallel", "importance", "rungs"))
    if any(_finite(t.metrics.get(objectives[0].metric)) is not None for t in data.trials):
        figures["history"] = html_of(history_figure(data), "history")
    figures["pareto"] = [html_of(f, f"pareto-{i}") for i, f in enumerate(pareto_figures(data))]
    parallel = parallel_figure(data)
    if parallel is not None:
        figures["parallel"] = html_of(parallel, "parallel")
    importance = parameter_importance(data)
    importance_note = ""
    if isinstance(importance, str):
        importance_note = importance
    else:
        figures["importance"] = html_of(importance_figure(importance, objectives[0].metric), "importance")

    max_budget = max((int(t.max_budget or 1) for t in data.trials), default=1)
    milestones = rung_milestones_of(data, max_budget)
    rungs_fig = rungs_figure(data, milestones)
    if rungs_fig is not None:
        figures["rungs"] = html_of(rungs_fig, "rungs")
    scheduler = data.spec.scheduler.name if data.spec is not None else "unknown"
    if max_budget <= 1:
        rung_note = "Every trial runs one budget step: there is nothing to stop early."
    elif milestones:
        rung_note = f"Scheduler {scheduler}: rungs at budget steps {', '.join(map(str, milestones))} of {max_budget}."
    else:
        rung_note = f"Scheduler {scheduler}: {max_budget} budget steps per trial, no rungs."

    counts: dict[str, int] = {}
    for t in data.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    failures: dict[str, list[int]] = {}
    for t in data.trials:
        if t.status == "failed":
            failures.setdefault(str(t.error or "no reason recorded"), []).append(int(t.number))
    by_number = {t.number: t for t in data.trials}
    front_rows = []
    for m in data.front.members:
        member_of = by_number.get(m.number)
        metrics = m.metrics or (member_of.metrics if member_of else {})
        front_rows.append({"number": m.number, "values": [_fmt(metrics.get(o.metric)) for o in objectives],
                           "config": _config_text(m.config), "model": m.model or "-"})
    from automl.records import estimate_key

    trial_rows = [{
        "number": t.number, "status": str(t.status), "front": t.number in members,
        "budget": f"{t.budget or 0}/{t.max_budget or '?'}",
        # A stopped trial's rung estimate (latency, size) is marked as one, never shown as measured.
        "values": [_fmt(t.metrics.get(o.metric)) if o.metric in t.metrics or estimate_key(o.metric) not in t.metrics
                   else f"~{_fmt(t.metrics[estimate_key(o.metric)])} (estimate)" for o in objectives],
        "duration": _fmt(t.duration), "config": _config_text(t.config), "error": t.error or "",
    } for t in data.trials]
    setup = ""
    if data.spec is not None:
        setup = f"{data.spec.trainer.name}, {data.spec.searcher.name}, {data.spec.scheduler.name}"
    summary = data.info.summary
    wall = f"{summary['wall_s']:.1f} s" if isinstance(summary.get("wall_s"), (int, float)) else ""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        info=data.info, directory=str(run.dir), written=time.strftime("%Y-%m-%d %H:%M:%S"),
        counts=sorted(counts.items()), objectives=objectives, constraints=data.constraints, setup=setup,
        front=data.front, front_size=len(members), front_rows=front_rows, wall=wall,
        versions=sorted(data.info.versions.items()), notes=data.notes, figures=figures,
        importance_note=importance_note, rung_note=rung_note, rungs=rung_table(data, milestones),
        failures=[{"reason": r, "numbers": ", ".join(map(str, ns)), "count": len(ns)}
                  for r, ns in sorted(failures.items(), key=lambda kv: -len(kv[1]))],
        trial_rows=trial_rows, fmt=_fmt, plotly_js=Markup(get_plotlyjs()),
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``RUN_DIR/report.html``) and return its path."""
    page = build_report(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    if path.is_dir():
        path = path / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
