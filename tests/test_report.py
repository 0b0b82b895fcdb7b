"""``automl report``: one self-contained HTML file; its plots render in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from automl.cli import run as cli
from automl.html_report import ReportData, build_report, parameter_importance, write_report
from automl.run import Run
from benchmarks.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.test_export import make_run

#: Injected at the top of a copy of the page: collects console errors and uncaught exceptions and,
#: once the page has loaded, writes them into the DOM for --dump-dom to show.
PROBE = """<script>
window.__errors = [];
(function () {
  var original = console.error;
  console.error = function () { window.__errors.push("console.error: " + Array.from(arguments).join(" "));
                                original.apply(console, arguments); };
  window.addEventListener("error", function (e) { window.__errors.push("uncaught: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { window.__errors.push("rejection: " + e.reason); });
  window.addEventListener("load", function () { setTimeout(function () {
    var pre = document.createElement("pre"); pre.id = "probe-errors";
    pre.textContent = JSON.stringify(window.__errors); document.body.appendChild(pre); }, 1500); });
})();
</script>"""


def chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(dir=tmp)
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args,
         page.resolve().as_uri()], capture_output=True, text=True, timeout=180)


def render(page: Path, tmp: Path) -> tuple[str, Path]:
    """Open ``page`` in headless Chromium: the DOM after its scripts ran (with the probe's errors) and a screenshot."""
    probed = tmp / f"probed-{page.name}"
    text = page.read_text()
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1))
    dom = chromium(probed, tmp, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = tmp / f"{page.stem}.png"
    result = chromium(page, tmp, f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    return dom.stdout, shot


def assert_rendered(page: Path, tmp: Path, plot_ids: list[str]) -> str:
    """The page holds ``plot_ids``; every plot div in it was drawn by plotly, no script error happened,
    and the screenshot is not blank."""
    from PIL import Image

    in_source = re.findall(r'<div id="(plot-[\w-]+)"', page.read_text())
    assert set(plot_ids) <= set(in_source), f"missing plots: {set(plot_ids) - set(in_source)}"
    plot_ids = in_source  # every plot the page holds must be drawn
    dom, shot = render(page, tmp)
    errors = re.search(r'<pre id="probe-errors">(.*?)</pre>', dom, re.S)
    assert errors is not None, "the page never finished loading"
    assert json.loads(errors.group(1).replace("&quot;", '"')) == []
    for plot in plot_ids:
        # plotly marks a drawn graph div with js-plotly-plot and fills it with its SVG layers.
        div = re.search(rf'<div id="{re.escape(plot)}"[^>]*class="[^"]*js-plotly-plot', dom)
        assert div is not None, f"{plot} was not drawn"
    assert dom.count('class="main-svg"') >= len(plot_ids)
    image = Image.open(shot).convert("L")
    histogram = image.histogram()
    background = max(histogram)
    assert background < 0.97 * sum(histogram), "the screenshot is (almost) blank"
    assert len([n for n in histogram if n]) > 50  # text, axes and markers: many grey levels
    return dom


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh --dev)")


# -- stores filled directly (fast) -------------------------------------------------------------


def test_a_run_with_no_trials_is_refused_with_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = make_run(tmp_path / "empty", [])
    assert cli(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "no trials yet" in err and "Traceback" not in err
    assert not (run_dir / "report.html").exists()
    assert cli(["report", str(tmp_path / "missing")]) == 2
    assert "holds no automl run" in capsys.readouterr().err


def test_configs_and_errors_are_escaped(tmp_path: Path) -> None:
    evil = "</script><script>alert('x')</script><img src=x onerror=alert(1)>"
    run_dir = make_run(tmp_path / "evil", [
        {"number": 0, "status": "completed", "config": {"x": 0.2, "name": evil}, "metrics": {"loss": 0.2, "cost": 1.0}},
        {"number": 1, "status": "completed", "config": {"x": 0.8, "name": "ok"}, "metrics": {"loss": 0.8, "cost": 0.1}},
        {"number": 2, "status": "failed", "config": {"x": 0.9, "name": "ok"}, "error": f"ValueError: {evil}"},
    ])
    page = build_report(run_dir)
    assert evil not in page
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text


def test_failures_are_grouped_by_reason_and_front_members_marked(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "fail", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
        {"number": 1, "status": "completed", "config": {"x": 0.9}, "metrics": {"loss": 0.9, "cost": 0.1}},
        {"number": 2, "status": "completed", "config": {"x": 0.5}, "metrics": {"loss": 0.95, "cost": 0.95}},
        {"number": 3, "status": "failed", "config": {"x": 0.7}, "error": "RuntimeError: too large"},
        {"number": 4, "status": "failed", "config": {"x": 0.8}, "error": "RuntimeError: too large"},
        {"number": 5, "status": "failed", "config": {"x": 0.6}, "error": "trial timed out after 5s"},
    ])
    page = build_report(run_dir)
    assert re.search(r"<td>RuntimeError: too large</td><td>3, 4</td><td>2</td>", page)
    assert re.search(r"<td>trial timed out after 5s</td><td>5</td><td>1</td>", page)
    front_rows = re.findall(r'<tr class="front"><td>(\d+)</td>', page)
    assert front_rows == ["0", "1"]
    assert "provisional" in page  # no front.json: computed from the store


def test_importance_finds_the_parameter_that_drives_the_objective(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    trials = []
    for n in range(40):
        x, noise = float(rng.uniform()), float(rng.uniform())
        trials.append({"number": n, "status": "completed", "config": {"x": x, "noise": noise},
                       "metrics": {"loss": (x - 0.3) ** 2, "cost": 1.0}})
    run_dir = make_run(tmp_path / "imp", trials)
    result = parameter_importance(ReportData.load(Run.open(run_dir)))
    assert not isinstance(result, str)
    ranked = dict((name, mean) for name, mean, _ in result)
    assert list(ranked) == ["x", "noise"]
    assert ranked["x"] > 10 * max(ranked["noise"], 1e-3)


def test_importance_says_why_it_is_missing(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "few", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
    ])
    note = parameter_importance(ReportData.load(Run.open(run_dir)))
    assert isinstance(note, str) and "at least 5 completed trials" in note and "has 1" in note


def test_parallel_coordinates_give_inactive_parameters_their_own_tick(tmp_path: Path) -> None:
    from automl.html_report import parallel_figure

    run_dir = make_run(tmp_path / "cond", [
        {"number": n, "status": "completed", "config": {"x": x, **({"w": w} if w is not None else {})},
         "metrics": {"loss": x, "cost": 1 - x}}
        for n, (x, w) in enumerate([(0.1, 3.0), (0.5, None), (0.9, 5.0)])])
    fig = parallel_figure(ReportData.load(Run.open(run_dir)))
    assert fig is not None
    dims = {d.label: d for d in fig.data[0].dimensions}
    assert list(dims) == ["x", "w", "loss"]
    inactive = dims["w"].tickvals[list(dims["w"].ticktext).index("(inactive)")]
    assert list(dims["w"].values) == [3.0, inactive, 5.0] and inactive < 3.0
    assert list(dims["loss"].values) == [0.1, 0.5, 0.9]


# -- runs through the engine (slow) -----------------------------------------------------------

OBJECTIVE = '''
def objective(config, budget=1):
    x = float(config["x"])
    if x > 0.85:
        raise RuntimeError(f"x={x:.2f} is beyond what this model takes")
    extra = 0.2 if config["kind"] == "b" else 0.01 * float(config["z"])
    return {"loss": (x - 0.3) ** 2 + extra + 1.0 / budget, "cost": x + 0.1 / budget,
            "size": 1.0 - x + (0.5 if config["kind"] == "b" else 0.0)}
'''

FUNCTION_SPEC = """
name: report-fn
trainer: {name: function, params: {function: "report_objective:objective", steps: 4,
                                    metrics: {loss: min, cost: min, size: min}}}
scheduler: {name: asha, options: {grace_period: 1, reduction_factor: 2}}
space:
  x: {type: float, low: 0, high: 1}
  kind: {type: choice, values: [a, b]}
  z: {type: float, low: 0.1, high: 10, log: true, when: {kind: a}}
objectives: [{metric: loss, mode: min}, {metric: cost, mode: min}, {metric: size, mode: min}]
budget: {trials: 10}
seed: 3
"""

@pytest.fixture(scope="module")
def function_run(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from automl.engine import search

    d = tmp_path_factory.mktemp("report-fn")
    (d / "report_objective.py").write_text(textwrap.dedent(OBJECTIVE))
    (d / "spec.yaml").write_text(textwrap.dedent(FUNCTION_SPEC))
    return search(d / "spec.yaml", out=d / "run").dir


@pytest.mark.slow
def test_report_of_a_search_with_rungs_and_failures(function_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = Run.open(function_run)
    trials = run.trials()
    failed = [t for t in trials if t["status"] == "failed"]
    stopped = [t for t in trials if t["status"] == "stopped"]
    assert failed and stopped  # the spec makes both happen; the report must show them
    assert cli(["report", str(function_run), "--out", str(tmp_path / "r.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    page = (tmp_path / "r.html").read_text()
    assert "rungs at budget steps 1, 2 of 4" in page
    for t in failed:
        assert re.search(rf"<td>{t['number']}</td><td class=\"status-failed\">failed</td>", page)
    assert "is beyond what this model takes" in page
    stopped_at = {int(t["budget"]) for t in stopped}
    for rung in (1, 2):
        row = re.search(rf"<tr><td>{rung}</td><td>(\d+)</td><td>(\d+)</td></tr>", page)
        assert row is not None
        assert int(row.group(2)) == sum(1 for t in stopped if t["budget"] == rung)
    assert stopped_at <= {1, 2}
    assert '"label":"log10(z)"' in page  # a log-scaled parameter on its log axis


@pytest.mark.slow
@needs_chromium
def test_the_report_renders_in_chromium(function_run: Path, tmp_path: Path) -> None:
    page = write_report(function_run, tmp_path / "fn.html")
    text = page.read_text()
    # Self-contained: plotly.js is inline, nothing is fetched (no script or stylesheet by URL).
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", text)
    assert "Pareto front: loss vs cost" in text and "Pareto front in 3-D: loss, cost, size" in text
    assert_rendered(page, tmp_path, ["plot-history", "plot-pareto-0", "plot-pareto-1", "plot-pareto-2",
                                     "plot-pareto-3", "plot-parallel", "plot-rungs"])
