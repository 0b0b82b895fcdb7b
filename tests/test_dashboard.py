"""``automl dashboard``: its JSON endpoints (Starlette's TestClient), its read-only store, its refusals.

Stores here are filled directly (``make_run``: what a search leaves behind), so these tests are fast;
tests/test_dashboard_browser.py drives the pages in headless Chromium against a real search.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from automl.cli import run as cli
from automl.errors import AutoMLError, StoreError
from automl.store import Store
from tests.test_export import make_run

ROOT = Path(__file__).resolve().parents[1]
#: Starlette 1.x's TestClient asks for httpx2; httpx (what is installed) still works.
pytestmark = pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient.")
EVIL = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"


def trials(n: int = 12) -> list[dict]:
    out = []
    for i in range(n):
        failed = i % 5 == 0
        out.append({"number": i, "status": "failed" if failed else "completed", "config": {"x": i / n, "name": EVIL},
                    "metrics": None if failed else {"loss": i / n, "cost": 1 - (i / n) ** 2},
                    "error": "RuntimeError: too large" if failed else None})
    return out


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", trials())


def client_for(*run_dirs: Path, token: str | None = None, stores: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from automl.dashboard.app import create_app
    from automl.dashboard.data import Catalog

    return TestClient(create_app(Catalog(run_dirs=run_dirs, store_urls=stores), token=token),
                      base_url="http://127.0.0.1")


def store_of(run_dir: Path) -> tuple[str, int]:
    meta = json.loads((run_dir / "run.json").read_text())
    return meta["store"], meta["run_id"]


def test_the_runs_list_and_a_run_as_json(run_dir: Path) -> None:
    client = client_for(run_dir)
    runs = client.get("/api/runs").json()
    assert [r["key"] for r in runs] == ["0"]
    assert runs[0]["counts"] == {"completed": 9, "failed": 3} and runs[0]["finished"] == 12
    assert runs[0]["best"]["number"] == 1 and runs[0]["best"]["value"] == pytest.approx(1 / 12)
    detail = client.get("/api/runs/0").json()
    assert [t["number"] for t in detail["trials"]] == list(range(12))
    assert detail["failures"] == [{"reason": "RuntimeError: too large", "numbers": [0, 5, 10], "count": 3}]
    assert detail["trials"][1]["config"]["name"] == EVIL  # sent as a JSON string; the page shows it as text
    assert detail["figures"]["history"]["data"] and len(detail["figures"]["pareto"]) == 1
    assert detail["provisional"] is True and {m["number"] for m in detail["front"]} >= {1}
    importance = client.get("/api/runs/0/importance").json()
    assert importance["figure"]["data"][0]["type"] == "bar"


def test_a_poll_is_answered_unchanged_until_a_trial_is_written(run_dir: Path) -> None:
    client = client_for(run_dir)
    stamp = client.get("/api/runs/0").json()["stamp"]
    assert client.get("/api/runs/0", params={"since": stamp}).json() == {"stamp": stamp, "unchanged": True}
    url, run_id = store_of(run_dir)
    writer = Store(url)  # the search's driver, writing while the dashboard reads
    writer.save_trial(run_id, 12, status="running", config={"x": 0.5, "name": "new"}, max_budget=3)
    writer.add_step(run_id, 12, 1, {"loss": 0.01, "cost": 0.5})
    writer.close()
    fresh = client.get("/api/runs/0", params={"since": stamp}).json()
    assert fresh["stamp"] != stamp and "unchanged" not in fresh
    assert fresh["trials"][-1]["number"] == 12 and fresh["trials"][-1]["status"] == "running"


def test_figures_come_from_the_reports_builders(run_dir: Path) -> None:
    """One plotting code path: the page is sent exactly the figure ``automl report`` embeds."""
    from automl.figures import ReportData, history_figure, pareto_figures
    from automl.run import Run

    detail = client_for(run_dir).get("/api/runs/0").json()
    data = ReportData.load(Run.open(run_dir))
    for sent, built in [(detail["figures"]["history"], history_figure(data)),
                        (detail["figures"]["pareto"][0], pareto_figures(data)[0])]:
        assert sent["data"] == json.loads(built.to_json())["data"]
        assert sent["layout"]["title"] == json.loads(built.to_json())["layout"]["title"]


def test_the_store_is_never_written(run_dir: Path) -> None:
    from automl.dashboard.data import ReadOnlyStore

    db = run_dir / "automl.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    client = client_for(run_dir)
    for path in ("/api/runs", "/api/runs/0", "/api/runs/0/importance", "/run/0", "/"):
        assert client.get(path).status_code == 200
    store = ReadOnlyStore(store_of(run_dir)[0])
    with pytest.raises(StoreError, match="never writes"):
        store.save_trial(1, 99, status="completed")
    with pytest.raises(sa.exc.OperationalError, match="readonly"), store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM trials"))
    store.close()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_missing_database_is_refused_not_created(tmp_path: Path) -> None:
    from automl.dashboard.data import ReadOnlyStore

    with pytest.raises(StoreError, match="no database at"):
        ReadOnlyStore(f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()
    empty = tmp_path / "empty.db"
    sa.create_engine(f"sqlite:///{empty}").connect().close()  # a database, but not an automl store
    with pytest.raises(StoreError, match="cannot read an automl store"):
        ReadOnlyStore(f"sqlite:///{empty}")


def test_every_run_of_a_store(run_dir: Path, tmp_path: Path) -> None:
    url, _ = store_of(run_dir)
    writer = Store(url)
    second = writer.create_run(name="second", directory=str(tmp_path / "elsewhere"), spec_text="x", spec_hash="y",
                               seed=0, objectives={"objectives": [{"metric": "loss", "mode": "min"}]}, versions={})
    writer.close()
    client = client_for(stores=(url,))
    runs = client.get("/api/runs").json()
    assert [(r["key"], r["name"]) for r in runs] == [(f"s0-{second}", "second"), ("s0-1", "filled")]
    detail = client.get(f"/api/runs/s0-{second}").json()  # no trials yet, a spec that does not parse
    assert detail["trials"] == [] and detail["figures"]["history"] is None and detail["notes"]


def test_runs_compared(run_dir: Path, tmp_path: Path) -> None:
    other = make_run(tmp_path / "other", [{"number": i, "status": "completed", "config": {"x": i / 4},
                                           "metrics": {"loss": 0.5 - i / 10, "cost": i / 4}} for i in range(4)])
    client = client_for(run_dir, other)
    answer = client.get("/api/compare", params={"runs": "0,1"}).json()
    assert [r["key"] for r in answer["runs"]] == ["0", "1"]
    history, fronts = answer["figures"]
    assert [t["name"] for t in history["data"]] == ["0: filled", "1: filled"]
    assert history["data"][1]["y"] == pytest.approx([0.5, 0.4, 0.3, 0.2])
    assert len(fronts["data"]) == 2
    assert client.get("/api/compare", params={"runs": "0"}).status_code == 404


def test_a_run_deleted_while_shown_is_said_so(run_dir: Path) -> None:
    client = client_for(run_dir)
    assert client.get("/api/runs/0").status_code == 200
    shutil.rmtree(run_dir)
    answer = client.get("/api/runs/0")
    assert answer.status_code == 410 and "is gone" in answer.json()["gone"]
    assert "is gone" in client.get("/api/runs").json()[0]["gone"]
    assert client.get("/api/runs/7").status_code == 404


def test_a_token_is_required_when_set(run_dir: Path) -> None:
    token = "a-long-enough-token-123"
    client = client_for(run_dir, token=token)
    assert client.get("/api/runs").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/api/runs", headers={"X-Automl-Token": "wrong-token-0000000"}).status_code == 401
    assert client.get("/api/runs", headers={"X-Automl-Token": token}).status_code == 200
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page = client.get("/", params={"token": token})
    assert page.status_code == 200 and "automl_dashboard_token" in page.headers["set-cookie"]
    assert client.get("/static/dashboard.js").status_code == 200  # the cookie the page was given


def test_a_foreign_host_header_is_refused(run_dir: Path) -> None:
    from starlette.testclient import TestClient

    app = client_for(run_dir).app
    assert TestClient(app, base_url="http://evil.example").get("/api/runs").status_code == 400


def test_the_page_puts_store_values_in_as_text() -> None:
    """The script builds the page with textContent only: a store value is never parsed as HTML."""
    script = (ROOT / "automl" / "dashboard" / "static" / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script
    page = (ROOT / "automl" / "dashboard" / "static" / "page.html").read_text()
    assert "http" not in page  # nothing from a CDN: plotly.js is served from the installed package


# -- the command line ------------------------------------------------------------------------


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_bad_input_is_one_line_and_exit_2(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["dashboard", str(tmp_path)]) == 2
    assert "holds no automl run" in one_error_line(capsys)
    assert cli(["dashboard", "--store", f"sqlite:///{tmp_path / 'missing.db'}"]) == 2
    assert "no database at" in one_error_line(capsys)
    assert not (tmp_path / "missing.db").exists()
    assert cli(["dashboard", "--store", "postgresql+psycopg2://nobody@127.0.0.1:1/none"]) == 2
    assert "cannot read an automl store" in one_error_line(capsys)
    assert cli(["dashboard", "--host", "0.0.0.0", str(run_dir)]) == 2
    assert "without --token" in one_error_line(capsys)
    assert cli(["dashboard"]) == 2
    assert "nothing to show" in one_error_line(capsys)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert cli(["dashboard", "--port", str(taken.getsockname()[1]), str(run_dir)]) == 2
    assert "in use" in one_error_line(capsys)


def test_a_non_loopback_host_needs_a_proper_token() -> None:
    from automl.dashboard.server import bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    with pytest.raises(AutoMLError, match="16 or more"):
        bind("127.0.0.1", 0, token="short")
    bound = bind("127.0.0.1", 0, token="x" * 20)
    assert bound.url == f"http://127.0.0.1:{bound.port}/?token={'x' * 20}"
    bound.sock.close()


def test_the_core_imports_without_the_dashboard_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
            "import automl, automl.cli, automl.engine, automl.html_report\n"
            "from automl.cli import run; sys.exit(run(['dashboard', sys.argv[1]]))\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "pip install 'automl[dashboard]'" in result.stderr and "Traceback" not in result.stderr


def test_a_pending_run_directory_is_shown_once_the_search_made_it(tmp_path: Path) -> None:
    """``automl search --dashboard`` serves the run directory before the search has written its run."""
    from automl.dashboard.data import Catalog

    catalog = Catalog(pending=[tmp_path / "run"])
    assert catalog.refs() == []
    make_run(tmp_path / "run", trials(3))
    assert [r.key for r in catalog.refs()] == ["p0"]
    catalog.close()
