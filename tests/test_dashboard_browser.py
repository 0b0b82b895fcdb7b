"""``automl dashboard`` in headless Chromium against the store of a real search.

The page is driven through the Chrome DevTools Protocol by :class:`benchmarks.browser.Page` (it reads the
page's console errors and uncaught exceptions, and waits on its DOM, never on a fixed sleep).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automl.run import Run
from automl.store import Store
from benchmarks.browser import CHROMIUM, Page

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]

#: A choice value that would run script if the page parsed it as HTML.
EVIL = "<img src=x onerror=window.__xss=1>"

OBJECTIVE = '''
def objective(config, budget=1):
    x = float(config["x"])
    if x > 0.85:
        raise RuntimeError(f"x={x:.2f} is beyond what this model takes")
    extra = 0.2 if config["kind"] == "plain" else 0.0
    return {"loss": (x - 0.3) ** 2 + extra + 1.0 / budget, "cost": x + 0.1 / budget}
'''

SPEC = f"""
name: dashboard-fn
trainer: {{name: function, params: {{function: "dash_objective:objective", steps: 4, metrics: {{loss: min, cost: min}}}}}}
scheduler: {{name: asha, options: {{grace_period: 1, reduction_factor: 2}}}}
space:
  x: {{type: float, low: 0, high: 1}}
  kind: {{type: choice, values: [{json.dumps(EVIL)}, plain]}}
objectives: [{{metric: loss, mode: min}}, {{metric: cost, mode: min}}]
start: [{{x: 0.95, kind: plain}}, {{x: 0.3, kind: {json.dumps(EVIL)}}}]
budget: {{trials: 8}}
seed: 5
"""


@pytest.fixture(scope="module")
def searched(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real short search's run directory (ASHA may stop some trials; the first start point fails)."""
    from automl.engine import search

    d = tmp_path_factory.mktemp("dashboard-fn")
    (d / "dash_objective.py").write_text(textwrap.dedent(OBJECTIVE))
    (d / "spec.yaml").write_text(textwrap.dedent(SPEC))
    return search(d / "spec.yaml", out=d / "run").dir


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    p = Page(tmp_path)
    yield p
    p.close()


def serve(*run_dirs: Path) -> Any:
    from automl.dashboard.server import BackgroundDashboard, bind

    return BackgroundDashboard(bind("127.0.0.1", 0), run_dirs=list(run_dirs)).start()


def plots_drawn(ids: list[str]) -> str:
    return " && ".join(f"!!document.querySelector('#{i}.js-plotly-plot .main-svg')" for i in ids)


def test_a_run_renders_and_follows_the_store(searched: Path, tmp_path: Path, page: Page) -> None:
    run = Run.open(searched)
    trials = run.trials()
    # The start points make trial 0 fail (x > 0.85) and trial 1 complete with the HTML-like value.
    assert trials[0].status == "failed" and trials[1].status == "completed" and trials[1].config["kind"] == EVIL
    with serve(searched) as dashboard:
        page.open(dashboard.bound.url + "run/0")
        page.wait_for(f"document.querySelectorAll('#trials-body tr').length === {len(trials)}")
        figures = httpx.get(dashboard.bound.url + "api/runs/0").json()["figures"]
        drawn = [f"plot-{name}" for name in ("history", "rungs", "parallel") if figures[name] is not None]
        drawn += [f"plot-pareto-{i}" for i in range(len(figures["pareto"]))]
        assert {"plot-history", "plot-rungs", "plot-pareto-0"} <= set(drawn)
        page.wait_for(plots_drawn(drawn))  # every figure the server sent is drawn
        # Importance: drawn, or (one completed trial here) the sentence why not.
        page.wait_for("document.querySelector('#plot-importance.js-plotly-plot') || "
                      "document.querySelector('#section-importance .note').textContent.includes('at least 5')")
        assert page.evaluate("document.getElementById('banner').hidden") is True
        text = page.evaluate("document.body.innerText")
        assert "rungs at budget steps 1, 2 of 4" in text and "is beyond what this model takes" in text
        # The HTML-like config value is text in the table, and nothing of it ran.
        assert EVIL in text
        assert page.evaluate("window.__xss === undefined && document.querySelectorAll('#view img').length === 0")

        # A trial written to the store appears without a reload.
        page.evaluate("window.__same_page = 1")
        number = max(t.number for t in trials) + 1
        writer = Store(run.store.url)
        writer.save_trial(run.run_id, number, status="running", config={"x": 0.123, "kind": "plain"}, max_budget=4)
        writer.add_step(run.run_id, number, 1, {"loss": 0.5, "cost": 0.2})
        writer.close()
        page.wait_for(f"!!document.querySelector('#trials-body tr[data-number=\"{number}\"]')")
        assert page.evaluate("window.__same_page") == 1
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1

        # Sorted by number: a click on its header reverses the order, a second restores it; filter by status.
        page.evaluate("document.querySelector('#trials th').click()")
        assert page.evaluate("document.querySelector('#trials-body tr').dataset.number") == str(number)
        page.evaluate("document.querySelector('#trials th').click()")
        assert page.evaluate("document.querySelector('#trials-body tr').dataset.number") == "0"
        page.evaluate("const s = document.getElementById('status-filter'); s.value = 'failed'; s.onchange()")
        statuses = page.evaluate("Array.from(document.querySelectorAll('#trials-body tr td:nth-child(2)'))"
                                 ".map(td => td.textContent)")
        assert statuses and set(statuses) == {"failed"}
    assert page.errors() == [], page.errors()


def test_runs_list_compare_and_a_deleted_run(searched: Path, tmp_path: Path, page: Page) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(searched, copy)  # a copied run directory reads its own automl.db
    with serve(searched, copy) as dashboard:
        page.open(dashboard.bound.url)
        page.wait_for("document.querySelectorAll('#runs-body tr').length === 2")
        assert "dashboard-fn" in page.evaluate("document.getElementById('runs-body').innerText")
        page.open(dashboard.bound.url + "compare?runs=0,1")
        page.wait_for("document.querySelectorAll('#compare-body tr').length === 2")
        page.wait_for(plots_drawn(["plot-compare-0", "plot-compare-1"]))
        page.open(dashboard.bound.url + "run/1")
        page.wait_for("document.body.dataset.ready === '1'")
        shutil.rmtree(copy)
        page.wait_for("document.body.dataset.gone === '1'")
        assert "deleted while shown" in page.evaluate("document.getElementById('banner').textContent")
    # The errors expected: Chromium logs the 410 (Gone) that answered the deleted run's poll, and its importance
    # request when one was under way as the run went (timing decides whether it was).
    errors = [e for e in page.errors() if not ("status of 410" in e and re.search(r"/api/runs/1(\?|/importance)", e))]
    assert errors == [], errors


def test_search_dashboard_prints_its_address_and_stops_with_the_search(
        ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from automl.cli import run as cli

    (tmp_path / "dash_objective.py").write_text(textwrap.dedent(OBJECTIVE))
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(SPEC).replace("trials: 8", "trials: 2"))
    assert cli(["search", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run"), "--dashboard",
                "--dashboard-port", "0"]) == 0
    out = capsys.readouterr().out
    address = out.split("dashboard: ", 1)[1].split()[0]
    assert address.startswith("http://127.0.0.1:") and f"(run {tmp_path / 'run'})" in out
    assert f"serve the run again: automl dashboard {tmp_path / 'run'}" in out
    with pytest.raises(httpx.TransportError):  # stopped with the search
        httpx.get(address + "api/runs", timeout=5)
