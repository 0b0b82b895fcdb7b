"""``automl report``: one self-contained HTML file about a run.

Sections: optimisation history, the Pareto front (2-D for each pair of the first three
objectives and 3-D over them, front members highlighted, hover shows the config), parallel
coordinates, parameter importance, early-stopping rungs, PBT's exploits (when the run has any), the
trial table and the failures with their reasons.

Plots are `plotly <https://plotly.com/python/>`_ figures drawn by :mod:`automl.figures` (the
live dashboard serves the same ones); plotly.js is written into the page once, so the file opens
offline. The page is a Jinja2 template with autoescaping: every
config value, metric name and error text is escaped (plotly escapes ``</`` in its JSON, and
hover texts are escaped here because plotly renders a few HTML tags in them).

Parameter importance: see :func:`automl.figures.parameter_importance`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from automl.errors import AutoMLError
from automl.figures import (
    ReportData,
    _fmt,
    failure_groups,
    parallel_figure,
    parameter_importance,
    run_figures,
    rung_table,
)
from automl.run import Run

__all__ = ["ReportData", "build_report", "parallel_figure", "parameter_importance", "write_report"]

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

{% if lineage %}
<h2 id="lineage">Population Based Training</h2>
<p class="note">Each time a trial copied a better trial's checkpoint at a step and went on with its config perturbed (exploit and explore), oldest first.</p>
<div class="scroll"><table><tr><th>trial</th><th>at step</th><th>copied trial</th><th>config changes</th></tr>
{% for e in lineage %}<tr><td>{{ e.number }}</td><td>{{ e.step }}</td><td>{{ e.donor }}</td><td>{{ e.changes }}</td></tr>{% endfor %}</table></div>
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


def _front_rows(data: ReportData) -> list[dict[str, Any]]:
    by_number = {t.number: t for t in data.trials}
    rows = []
    for m in data.front.members:
        member_of = by_number.get(m.number)
        metrics = m.metrics or (member_of.metrics if member_of else {})
        rows.append({"number": m.number, "values": [_fmt(metrics.get(o.metric)) for o in data.objectives],
                     "config": _config_text(m.config), "model": m.model or "-"})
    return rows


def _trial_rows(data: ReportData) -> list[dict[str, Any]]:
    from automl.records import estimate_key

    members = data.members
    return [{
        "number": t.number, "status": str(t.status), "front": t.number in members,
        "budget": f"{t.budget or 0}/{t.max_budget or '?'}",
        # A stopped trial's rung estimate (latency, size) is marked as one, never shown as measured.
        "values": [_fmt(t.metrics.get(o.metric)) if o.metric in t.metrics or estimate_key(o.metric) not in t.metrics
                   else f"~{_fmt(t.metrics[estimate_key(o.metric)])} (estimate)" for o in data.objectives],
        "duration": _fmt(t.duration), "config": _config_text(t.config), "error": t.error or "",
    } for t in data.trials]


def _lineage_rows(data: ReportData) -> list[dict[str, Any]]:
    """PBT's exploits (``TrialRecord.lineage``), by trial then step, with the parameters each one changed."""
    rows = []
    for t in data.trials:
        for e in t.lineage:
            changed = [f"{k} {_fmt(e.previous.get(k))} -> {_fmt(v)}" for k, v in e.config.items()
                       if e.previous.get(k) != v]
            rows.append({"number": t.number, "step": e.step, "donor": e.donor, "changes": "; ".join(changed) or "-"})
    return rows


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

    drawn = run_figures(data)
    figures: dict[str, Any] = {name: None if fig is None else html_of(fig, name) for name, fig in (
        ("history", drawn.history), ("parallel", drawn.parallel), ("importance", drawn.importance),
        ("rungs", drawn.rungs))}
    figures["pareto"] = [html_of(f, f"pareto-{i}") for i, f in enumerate(drawn.pareto)]

    counts: dict[str, int] = {}
    for t in data.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    front_rows, trial_rows = _front_rows(data), _trial_rows(data)
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
        importance_note=drawn.importance_note, rung_note=drawn.rung_note, rungs=rung_table(data, drawn.milestones),
        failures=[{**f, "numbers": ", ".join(map(str, f["numbers"]))} for f in failure_groups(data)],
        trial_rows=trial_rows, lineage=_lineage_rows(data), fmt=_fmt, plotly_js=Markup(get_plotlyjs()),
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
