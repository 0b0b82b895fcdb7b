"""``automl dashboard`` in headless Chromium against the store of a real search.

The page is driven through the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON: what Puppeteer's ``pipe: true`` speaks). Written here in a few
lines because no CDP client is installed (websockets, Playwright) and the pipe needs none: it reads
the page's console errors and uncaught exceptions, and evaluates expressions in the page to wait on
its DOM (a loop on the DOM's state, never a fixed sleep).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automl.run import Run
from automl.store import Store
from tests.test_report import CHROMIUM, CHROMIUM_FLAGS

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


class Page:
    """One headless Chromium tab driven over the DevTools pipe."""

    def __init__(self, tmp: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4: move the pipe ends there in the child
        # (from numbers above 4 first, so one dup2 cannot close the other's source).
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]

        def child() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp)}", "--remote-debugging-pipe",
             "--window-size=1280,2000", "about:blank"],
            pass_fds=(3, 4, *high), preexec_fn=child, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_chrome_r, from_chrome_w, *high):
            os.close(fd)
        self._next = 0
        self._answers: dict[int, Any] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(domain, session=True)

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_chrome, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def call(self, method: str, *, session: bool = False, **params: Any) -> Any:
        self._next += 1
        number = self._next
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        with self._cond:
            assert self._cond.wait_for(lambda: number in self._answers, timeout=120), f"no answer to {method}"
            answer = self._answers.pop(number)
        assert "error" not in answer, answer
        return answer.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its load event (so no later check reads the previous page)."""
        with self._cond:
            seen = len(self.events)
        self.call("Page.navigate", session=True, url=url)
        with self._cond:
            assert self._cond.wait_for(lambda: any(e.get("method") == "Page.loadEventFired"
                                                   for e in self.events[seen:]), timeout=120), f"{url} never loaded"

    def wait_for(self, expression: str, timeout: float = 120) -> None:
        """Poll the page until ``expression`` is true (the page polls its server every two seconds)."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"(() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
                raise AssertionError(f"the page never showed {expression!r}; it shows:\n{text}\nerrors: {self.errors()}")
            time.sleep(0.2)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads the page logged so far."""
        out = []
        with self._cond:
            events = list(self.events)
        for e in events:
            params = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                out.append("uncaught: " + json.dumps(params.get("exceptionDetails", {}))[:500])
            elif e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console.error: " + json.dumps(params.get("args", []))[:500])
            elif e.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append("log: " + params["entry"].get("text", "") + " " + params["entry"].get("url", ""))
        return out

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):  # a browser that is gone already
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)


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
    # The one error expected: Chromium logs the 410 (Gone) the deleted run's poll was answered.
    errors = [e for e in page.errors() if not ("status of 410" in e and "/api/runs/1?" in e)]
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
