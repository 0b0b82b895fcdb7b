"""The leaderboard as a Markdown table and a static HTML page (plotly figures, plotly.js inline).

Figures: the critical-difference diagram and the nightly trend per group; anytime curves per
task; for multi-objective tasks the non-dominated points each method found (one seed).
Everything shown from the store (method names, errors, package versions) is escaped by
Jinja2's autoescaping; plotly escapes ``</`` in its figure JSON.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automl.plugin import pareto_front
from automl_bench.leaderboard.board import Group, MethodRow, build_groups, latest_rows, log10
from automl_bench.leaderboard.store import open_results

__all__ = ["render_html", "render_markdown", "write_leaderboard"]

FLAG = "⚑"


def _ci(value: tuple[float, float, float] | None, digits: int = 1) -> str:
    if value is None or math.isnan(value[0]):
        return "n/a"
    mean, low, high = value
    if low == high:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _overhead(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return "n/a"
    return f"{value[0]:.2f} [{value[1]:.2f}, {value[2]:.2f}]"


def _cells(g: Group, r: MethodRow) -> list[str]:
    return [
        r.method, r.provider, _ci(r.score), f"{r.rank:.2f}" if not math.isnan(r.rank) else "n/a",
        f"{r.wins}/{g.blocks}", _ci(r.hv_regret, 4) if r.hv_regret is not None else "-",
        str(r.failed_evals), f"{r.crashed_runs}/{r.runs}", _overhead(r.overhead_ms),
    ]


HEADER = ["method", "provider", "normalised score [95% CI]", "avg rank", "wins", "hv regret [95% CI]",
          "failed evals", "crashed runs", "overhead ms/suggestion, median [IQR]"]


COST_HEADER = ["method", "runs", "final figure, median", "cost budget", "cost the run spent", "trials (completed / stopped)",
               "to target: seconds, median", "to target: cost, median", "reached", "speedup vs random+fifo"]


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cost_cells(c: Any) -> list[str]:
    target = c.reached != ""
    return [
        c.method, str(c.runs), f"{_num(c.final, 3)} ({c.final_label})", f"{c.cost_budget:.0f} {c.cost_unit}",
        f"{c.cost_run:.0f}", f"{c.trials:.0f} ({c.completed:.0f} / {c.stopped:.0f})",
        _num(c.to_target_s) if target else "-", _num(c.to_target_cost, 0) if target else "-",
        c.reached or "-", (f"{c.speedup:.2f}x" if c.speedup is not None else "-") if target else "-",
    ]


def _md_escape(text: str) -> str:
    return html.escape(text).replace("|", "\\|")


def _describe(g: Group) -> str:
    seeds = sorted(g.rows["seed"].unique())
    tasks = sorted(g.rows["task"].unique())
    kinds = ", ".join(f"{t} ({g.kinds[t]})" for t in tasks)
    budget = (f"a cost of {g.budget} full-trial equivalents, {g.batch} trials at once, through the whole engine"
              if g.costs else f"{g.budget} evaluations ({g.budget // max(g.batch, 1)} x batch {g.batch})")
    return (f"{budget}, {len(seeds)} seeds, "
            f"nights {g.dates[0]}..{g.dates[-1]} ({len(g.dates)}); tasks: {kinds}.")


def _cd_text(g: Group) -> str:
    if g.cd is None:
        return "Critical difference: needs at least 3 methods and 2 (task, seed) blocks."
    p = f"Friedman p = {g.friedman_p:.2g}" if g.friedman_p is not None else "Friedman test: every block tied"
    groups = "; ".join("{" + ", ".join(c) + "}" for c in g.cliques) or "none"
    return (f"{p}; Nemenyi critical difference {g.cd:.2f} at alpha 0.05 over {g.blocks} blocks. Groups whose "
            f"average ranks differ by less than the CD (not significantly different): {groups}.")


def _flag_text(p: Any) -> str:
    assert p.previous is not None
    date, (_, low, high) = p.previous
    return (f"{p.date} {p.method}: {p.score[0]:.1f} left its previous interval [{low:.1f}, {high:.1f}] "
            f"({date})")


def render_markdown(groups: Sequence[Group], notes: Sequence[str], environment: dict[str, Any] | None = None) -> str:
    """The leaderboard as Markdown: per group, one table of every method, then the CD and trend flags."""
    lines = ["# Searcher leaderboard", ""]
    if environment:
        lines += [f"Newest environment: {_md_escape(str(environment.get('cpu')))}, {environment.get('cpus')} CPUs, "
                  f"Python {environment.get('python')}, commit {str(environment.get('commit'))[:10]}.", ""]
    lines += ["Normalised score: 100 = the optimum on every task, 0 = no better than a random draw (Bayesmark's "
              "normalisation; hypervolume regret relative to the true front's for multi-objective tasks); mean over "
              "seeds with a 95% t-interval. Average rank within each (task, seed), lower is better.", ""]
    lines += [f"> {_md_escape(n)}" for n in notes]
    if notes:
        lines.append("")
    for g in groups:
        lines += [f"## {g.title}", "", _describe(g), ""]
        lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        for r in g.methods:
            lines.append("| " + " | ".join(_md_escape(c) for c in _cells(g, r)) + " |")
        lines += ["", _md_escape(_cd_text(g)), ""]
        if g.costs:
            lines += ["Cost and early stopping (medians over runs; a run is cut at the cost budget, and "
                      "\"cost the run spent\" is what the search ran before that cut was applied):", ""]
            lines += ["| " + " | ".join(COST_HEADER) + " |", "|" + "---|" * len(COST_HEADER)]
            lines += ["| " + " | ".join(_md_escape(x) for x in _cost_cells(c)) + " |" for c in g.costs]
            lines.append("")
        flags = g.flags
        if flags:
            lines += [f"{FLAG} Scores that left their previous night's interval:", ""]
            lines += [f"- {_md_escape(_flag_text(p))}" for p in flags]
            lines.append("")
        elif len(g.dates) > 1:
            lines += ["No score left its previous night's interval.", ""]
        lines += [f"> {_md_escape(n)}" for n in g.notes]
        if g.notes:
            lines.append("")
    return "\n".join(lines)


# -- figures --------------------------------------------------------------------------------------


def _layout(fig: Any, title: str, height: int = 440) -> Any:
    fig.update_layout(title=title, height=height, template="plotly_white",
                      margin={"l": 60, "r": 30, "t": 50, "b": 40})
    return fig


def cd_figure(g: Group) -> Any | None:
    """Critical-difference diagram: one row per method at its average rank, with a bar CD long
    centred on it; two methods differ significantly (Nemenyi, alpha 0.05) when their bars do not overlap.

    Demšar's original draws every method on one axis; with twenty methods its labels collide,
    so each method gets its own row here (the comparison it shows is the same).
    """
    import plotly.graph_objects as go

    if g.cd is None:
        return None
    ranked = sorted((r.rank, r.method) for r in g.methods if not math.isnan(r.rank))
    labels = [html.escape(m) for _, m in ranked]
    fig = go.Figure(go.Scatter(
        x=[r for r, _ in ranked], y=labels, mode="markers", marker={"size": 9, "color": "#1f77b4"},
        error_x={"type": "constant", "value": g.cd / 2, "thickness": 3, "width": 0, "color": "#8fb8de"},
        hovertemplate="%{y}: average rank %{x:.2f}<extra></extra>", showlegend=False))
    fig.update_xaxes(title=f"average rank (1 = best); bars are CD = {g.cd:.2f} long", range=[0.5, len(ranked) + 0.5],
                     dtick=1)
    fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, f"Critical difference (Nemenyi, alpha 0.05): {g.title}", height=120 + 24 * len(ranked))


def trend_figure(g: Group) -> Any | None:
    """Normalised score per night and method, with intervals; flagged nights ringed in red."""
    import plotly.graph_objects as go

    if len(g.dates) < 2:
        return None
    fig = go.Figure()
    for method in sorted({p.method for p in g.trend}):
        points = [p for p in g.trend if p.method == method]
        fig.add_trace(go.Scatter(
            x=[p.date for p in points], y=[p.score[0] for p in points], mode="lines+markers", name=method,
            error_y={"type": "data", "symmetric": False, "array": [p.score[2] - p.score[0] for p in points],
                     "arrayminus": [p.score[0] - p.score[1] for p in points], "thickness": 1},
            hovertemplate=f"{html.escape(method)}<br>%{{x}}: %{{y:.1f}}<extra></extra>"))
    flagged = g.flags
    if flagged:
        fig.add_trace(go.Scatter(
            x=[p.date for p in flagged], y=[p.score[0] for p in flagged], mode="markers", name="left its interval",
            marker={"size": 16, "symbol": "circle-open", "color": "#d62728", "line": {"width": 3}},
            text=[html.escape(_flag_text(p)) for p in flagged], hovertemplate="%{text}<extra></extra>"))
    fig.update_xaxes(title="night", type="category")
    fig.update_yaxes(title="normalised score")
    return _layout(fig, f"Trend across nights: {g.title}")


def _task_figure_value(kind: str, info: dict[str, Any], best: float) -> float:
    if kind == "log10 regret":
        return log10(best - float(info["optimum"]))
    if kind == "hv regret":
        return float(info["max_hypervolume"]) - best
    return best


def anytime_figure(g: Group, task: str) -> Any:
    """Mean over seeds of the figure after each batch, one line per method."""
    import plotly.graph_objects as go

    kind = g.kinds[task]
    label = {"log10 regret": "log10 simple regret", "hv regret": "hypervolume regret",
             "hypervolume": "hypervolume (higher is better)", "bayesmark": "best loss"}[kind]
    rows = g.rows[g.rows["task"] == task]
    fig = go.Figure()
    for method, sub in rows.groupby("method"):
        by_eval: dict[int, list[float]] = {}
        for _, r in sub.iterrows():
            info = r["task_info"] or {}
            for n, best in zip(r["curve"]["evals"], r["curve"]["best"], strict=True):
                if best is not None:
                    by_eval.setdefault(int(n), []).append(_task_figure_value(kind, info, float(best)))
        xs = sorted(by_eval)
        fig.add_trace(go.Scatter(x=xs, y=[float(np.mean(by_eval[x])) for x in xs], mode="lines", name=str(method),
                                 hovertemplate=f"{html.escape(str(method))}<br>%{{x}}: %{{y:.4g}}"
                                               "<extra></extra>"))
    x_title = next((str(r["curve"]["x"]) for _, r in rows.iterrows() if (r["curve"] or {}).get("x")), "evaluations")
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=f"{label}, mean over seeds")
    return _layout(fig, f"Anytime: {task} ({g.title})")


def pareto_figure(g: Group, task: str) -> Any | None:
    """The non-dominated points each method evaluated on a multi-objective task (its smallest seed)."""
    import plotly.graph_objects as go

    rows = latest_rows(g.rows[g.rows["task"] == task])
    if rows.empty or int(rows.iloc[0]["n_objectives"]) < 2:
        return None
    seed = int(rows["seed"].min())
    m = int(rows.iloc[0]["n_objectives"])
    fig = go.Figure()
    for _, r in rows[rows["seed"] == seed].sort_values("method").iterrows():
        pts = np.array([v for v in r["losses"] if v is not None], dtype=float)
        if not len(pts):
            continue
        front = pts[sorted(pareto_front(pts), key=lambda i: tuple(pts[i]))]
        name = html.escape(str(r["method"]))
        if m == 2:
            fig.add_trace(go.Scatter(x=front[:, 0], y=front[:, 1], mode="markers+lines", name=str(r["method"]),
                                     line={"shape": "hv", "width": 1}, hovertemplate=f"{name}<br>(%{{x:.3f}}, "
                                     "%{y:.3f})<extra></extra>"))
        else:
            fig.add_trace(go.Scatter3d(x=front[:, 0], y=front[:, 1], z=front[:, 2], mode="markers",
                                       name=str(r["method"]), marker={"size": 3}))
    names = [str(n) for n in ((rows.iloc[0]["task_info"] or {}).get("objectives") or [])]
    if len(names) != m:
        names = [f"f{i + 1}" for i in range(m)]
    if m == 2:
        fig.update_xaxes(title=names[0])
        fig.update_yaxes(title=names[1])
    else:
        fig.update_layout(scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": names[2]})
    return _layout(fig, f"Pareto fronts found: {task}, seed {seed} ({g.title})", height=480 if m == 2 else 560)


# -- the page -----------------------------------------------------------------------------------

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>automl searcher leaderboard</title>
<style>
 body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1250px;
        padding: 1rem 2rem; color: #222; }
 h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; } h3 { margin-top: 1.5rem; }
 table { border-collapse: collapse; font-size: .85rem; width: 100%; }
 th, td { border: 1px solid #ddd; padding: .25rem .45rem; text-align: left; }
 th { background: #f4f6f8; } td.num { text-align: right; white-space: nowrap; }
 .note { color: #555; font-style: italic; } .flag { color: #d62728; } code { background: #f4f6f8; }
</style>
<script type="text/javascript">{{ plotly_js }}</script>
</head>
<body>
<h1>Searcher leaderboard</h1>
<p>Written {{ written }} from {{ n_rows }} stored runs.{% if env %} Newest environment: {{ env.cpu }}, {{ env.cpus }} CPUs,
Python {{ env.python }}, commit <code>{{ env.commit[:10] }}</code>{% if env.dirty %} (with uncommitted changes){% endif %}.{% endif %}</p>
<p class="note">Normalised score: 100 = the optimum on every task, 0 = no better than a random draw (Bayesmark's normalisation;
hypervolume regret relative to the true front's for multi-objective tasks); mean over seeds with a 95% t-interval.
Average rank within each (task, seed) block, lower is better; wins = blocks in which the method is best.</p>
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}
{% for s in sections %}
<h2 id="{{ s.anchor }}">{{ s.group.title }}</h2>
<p>{{ s.describe }}</p>
<table>
 <tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
 {% for row in s.rows %}<tr>{% for c in row %}<td{% if not loop.first and loop.index != 2 %} class="num"{% endif %}>{% if loop.first %}<code>{{ c }}</code>{% else %}{{ c }}{% endif %}</td>{% endfor %}</tr>
 {% endfor %}
</table>
<p>{{ s.cd_text }}</p>
{% if s.costs %}<h3>Cost and early stopping</h3>
<p class="note">Medians over runs. A run is cut at the cost budget; "cost the run spent" is what the search ran before the cut.</p>
<table>
 <tr>{% for h in cost_header %}<th>{{ h }}</th>{% endfor %}</tr>
 {% for row in s.costs %}<tr>{% for c in row %}<td{% if not loop.first %} class="num"{% endif %}>{% if loop.first %}<code>{{ c }}</code>{% else %}{{ c }}{% endif %}</td>{% endfor %}</tr>
 {% endfor %}
</table>{% endif %}
{% for n in s.group.notes %}<p class="note">{{ n }}</p>{% endfor %}
{{ s.cd_plot }}
<h3>Trend across nights</h3>
{% if s.flags %}<ul class="flag">{% for f in s.flags %}<li>{{ flag }} {{ f }}</li>{% endfor %}</ul>
{% elif s.group.dates | length > 1 %}<p>No score left its previous night's interval.</p>
{% else %}<p class="note">One night so far ({{ s.group.dates[0] }}): the trend needs two.</p>{% endif %}
{{ s.trend_plot }}
<h3>Per task</h3>
{% for p in s.task_plots %}{{ p }}{% endfor %}
{% endfor %}
</body>
</html>
"""


def render_html(groups: Sequence[Group], notes: Sequence[str], environment: dict[str, Any] | None = None,
                n_rows: int = 0) -> str:
    import jinja2
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    counter = iter(range(10**6))

    def plot(fig: Any | None) -> Markup:
        if fig is None:
            return Markup("")
        return Markup(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{next(counter)}",
                                  config={"displaylogo": False, "responsive": True}))

    sections = []
    for i, g in enumerate(groups):
        tasks = sorted(g.rows["task"].unique())
        task_plots = []
        for t in tasks:
            task_plots.append(plot(anytime_figure(g, t)))
            if g.kinds[t] in ("hv regret", "hypervolume"):
                task_plots.append(plot(pareto_figure(g, t)))
        sections.append({
            "anchor": f"group-{i}", "group": g, "describe": _describe(g), "rows": [_cells(g, r) for r in g.methods],
            "cd_text": _cd_text(g), "cd_plot": plot(cd_figure(g)), "trend_plot": plot(trend_figure(g)),
            "flags": [_flag_text(p) for p in g.flags], "task_plots": task_plots,
            "costs": [_cost_cells(c) for c in g.costs],
        })
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        sections=sections, notes=notes, env=environment, header=HEADER, cost_header=COST_HEADER, flag=FLAG,
        n_rows=n_rows,
        written=time.strftime("%Y-%m-%d %H:%M:%S"), plotly_js=Markup(get_plotlyjs()))


def write_leaderboard(store_url: str, out: str | Path, suites: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``index.html`` and ``leaderboard.md`` for the results at ``store_url`` into ``out``.

    Raises:
        BenchmarkError: When the store cannot be opened or holds no results (of ``suites``).
    """

    rows, environments = open_results(store_url, suites)
    groups, notes = build_groups(rows)
    env = environments[-1] if environments else None
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / "leaderboard.md"
    md.write_text(render_markdown(groups, notes, env), encoding="utf-8")
    page = directory / "index.html"
    page.write_text(render_html(groups, notes, env, n_rows=len(rows)), encoding="utf-8")
    return page, md
