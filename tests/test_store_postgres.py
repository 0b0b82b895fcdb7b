"""PostgreSQL as the results store: a throwaway server (pgserver's binaries, or AUTOML_TEST_POSTGRES_URL's), the
errors a user meets (unreachable server, wrong password, missing driver: one line, no password, exit 2), and two real
``automl search`` runs writing one PostgreSQL store at once, read by ``show`` and ``report``.

The store conformance kit runs on PostgreSQL in tests/test_conformance_builtin.py (TestPostgresStore).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from automl.cli import run as cli
from automl.errors import StoreError
from automl.store import POSTGRES_INSTALL, Store, _engine_url
from automl.testing.stores import postgres_data_dir, postgres_server, postgres_url
from tests.test_store_concurrent import two_searches

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_server() -> str:
    """One PostgreSQL server for the session (skipped, with the reason, where none can be started)."""
    return postgres_server()


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "automl.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        Store("postgresql://me:s3cret@127.0.0.1:1/nowhere")
    message = str(caught.value)
    assert "s3cret" not in message and "postgresql://me:***@127.0.0.1:1/nowhere" in message, message
    assert "Connection refused" in message and "\n" not in message, message


def test_a_missing_driver_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither psycopg 3 (SQLAlchemy 2.1's default for postgresql://) nor psycopg2 importable here.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(StoreError) as caught:
        Store("postgresql://me:s3cret@localhost/db")
    assert POSTGRES_INSTALL in str(caught.value) and "s3cret" not in str(caught.value), caught.value
    with pytest.raises(StoreError, match="pip install pg8000"):
        Store("postgresql+pg8000://me@localhost/db")


def test_a_bare_postgresql_url_uses_the_installed_driver(pg_server: str) -> None:
    # The postgres extra installs psycopg2; SQLAlchemy 2.1 alone would look for psycopg 3 for postgresql://.
    url = postgres_url()
    assert url.startswith("postgresql://")
    store = Store(url)
    try:
        assert store.url == url and store.engine.dialect.name == "postgresql"
        run = store.create_run(name="bare", directory="/r", spec_text="", spec_hash="0" * 64, seed=2**32 - 1,
                               objectives={}, versions={})
        assert store.get_run(run) is not None
    finally:
        store.close()


def test_an_older_store_gains_the_new_columns(pg_server: str) -> None:
    url = postgres_url()
    engine = sa.create_engine(_engine_url(url))
    with engine.begin() as conn:  # the trials table as an older version made it: no node, timings, measured_as
        Store(url).close()
        for column in ("node", "timings", "measured_as"):
            conn.exec_driver_sql(f'ALTER TABLE trials DROP COLUMN "{column}"')
    engine.dispose()
    store = Store(url)
    try:
        run = store.create_run(name="old", directory="/r", spec_text="", spec_hash="0" * 64, seed=1,
                               objectives={}, versions={})
        store.save_trial(run, 0, status="completed", node="abc", timings={"fit_s": 1.0})
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("trials")}
        assert {"node", "timings", "measured_as"} <= columns
        row = store.trial(run, 0)
        assert row is not None and row.timings == {"fit_s": 1.0}
    finally:
        store.close()


SPEC = """
name: {name}
store: "{store}"
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:quadratic", metrics: {{loss: min, cost: min}}}}
searcher: {{name: random}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
objectives:
  - {{metric: loss, mode: min}}
  - {{metric: cost, mode: min}}
budget: {{trials: {trials}}}
seed: {seed}
"""


def test_a_wrong_password_exits_2_with_one_line(pg_server: str, write_spec: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    data = postgres_data_dir()
    if data is None:
        pytest.skip("the server of AUTOML_TEST_POSTGRES_URL is not ours to reconfigure (pg_hba.conf)")
    admin = sa.create_engine(_engine_url(pg_server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS pw_user")
        conn.exec_driver_sql("CREATE ROLE pw_user LOGIN PASSWORD 'right-one'")
        hba = data / "pg_hba.conf"
        if "pw_user" not in hba.read_text():  # this role only, first match: the others keep pgserver's trust
            hba.write_text("local all pw_user scram-sha-256\n" + hba.read_text())
        conn.exec_driver_sql("SELECT pg_reload_conf()")
    admin.dispose()
    wrong = sa.make_url(pg_server).set(username="pw_user", password="wrong-one").render_as_string(hide_password=False)
    right = sa.make_url(wrong).set(password="right-one").render_as_string(hide_password=False)
    Store(right).close()  # the role and its password work: only the password is wrong below
    spec = write_spec(SPEC.format(name="pw", store=wrong, trials=1, seed=1))
    done = _cli("search", str(spec), "--out", str(tmp_path / "run"), timeout=120)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "password authentication failed" in lines[0], done.stderr
    assert "wrong-one" not in done.stderr and "pw_user:***@" in lines[0], done.stderr


@pytest.mark.slow
def test_two_searches_write_one_postgres_store_at_once_and_show_and_report_read_it(
    pg_server: str, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_url()
    outs = [tmp_path / "a", tmp_path / "b"]
    specs = [write_spec(SPEC.format(name=f"pg{i}", store=url, trials=4, seed=i), name=f"s{i}.yaml") for i in (0, 1)]
    two_searches(specs, outs, tmp_path)
    ids = set()
    for out in outs:
        recorded = json.loads((out / "run.json").read_text())
        assert recorded["store"] == url  # the run directory names the PostgreSQL store, no SQLite file made
        assert not (out / "automl.db").exists()
        ids.add(recorded["run_id"])
        # show and report in this process (the searches above are the subprocesses): the same CLI code.
        capsys.readouterr()
        code = cli(["show", str(out), "--json"])
        shown = capsys.readouterr()
        assert code == 0, shown.err
        page = json.loads(shown.out)
        assert [t["number"] for t in page["trials"]] == list(range(4))
        assert all(t["status"] == "completed" and "loss" in t["metrics"] for t in page["trials"]), page["trials"]
        assert page["front"]["members"], "no front read back from PostgreSQL"
        code = cli(["report", str(out)])
        assert code == 0, capsys.readouterr().err
        assert (out / "report.html").stat().st_size > 10_000
    assert len(ids) == 2, f"two runs share an id in one store: {ids}"
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            counted = conn.execute(sa.text("SELECT run_id, count(*) FROM trials GROUP BY run_id")).all()
            steps = conn.execute(sa.text("SELECT count(*) FROM steps")).scalar_one()
        assert sorted(n for _, n in counted) == [4, 4], counted
        assert steps == 8, f"{steps} step rows for 8 one-step trials"
    finally:
        store.close()


def test_a_run_naming_a_store_with_a_password_never_shows_the_password(tmp_path: Path) -> None:
    from automl.errors import AutoMLError
    from automl.run import Run

    (tmp_path / "run.json").write_text(json.dumps({"store": "postgresql://me:s3cret@db.example/runs", "run_id": 1}))
    with pytest.raises(AutoMLError) as info:
        Run.open(tmp_path)  # unsigned: a store outside the run directory is refused, and named
    assert "me:***@db.example" in str(info.value) and "s3cret" not in str(info.value)
