"""``automl bench`` and ``automl leaderboard``: stores filled directly, bad input, the nightly plan on a tiny budget."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from automl_bench.leaderboard.board import build_groups, critical_difference
from automl_bench.leaderboard.render import render_html, render_markdown
from automl_bench.store import HpoStore

from automl.cli import run as cli
from tests.test_report import assert_rendered, needs_chromium

ROOT = Path(__file__).resolve().parents[1]

ENV = {"created_at": 0.0, "commit": "abc", "dirty": False, "python": "3.11", "platform": "linux", "cpu": "test cpu",
       "cpus": 2, "threads": {}, "packages": {"automl": "0.1.0"}, "command": "test"}


def row(*, task: str, seed: int, method: str, curve: list[float], date: str = "2026-11-01", suite: str = "toy",
        version: int = 1, n_objectives: int = 1, task_info: dict[str, Any] | None = None,
        losses: list[list[float] | None] | None = None, hv_regret: float | None = None, failures: int = 0,
        error: str | None = None, env_id: int = 1) -> dict[str, Any]:
    """One result row as the runner stores it; ``curve`` is the best figure after each batch of 2."""
    return {
        "date": date, "created_at": 0.0, "commit": "abc", "suite": suite, "suite_version": version, "task": task,
        "seed": seed, "method": method, "budget": 2 * len(curve), "batch": 2, "env_id": env_id,
        "method_name": method, "method_options": {}, "method_version": f"{method.split(':')[0]}==1.0",
        "peer_of": None, "task_info": task_info or {}, "n_objectives": n_objectives, "evaluations": 2 * len(curve),
        "failures": failures, "final_value": curve[-1], "regret": None, "hv_regret": hv_regret,
        "curve": {"evals": [2 * (i + 1) for i in range(len(curve))], "best": curve},
        "losses": losses if losses is not None else [[v] for v in curve for _ in range(2)],
        "overhead_s": 0.001, "wall_s": 1.0, "eval_s": 0.5, "error": error,
    }


def fill(url: str, rows: list[dict[str, Any]]) -> str:
    store = HpoStore(url)
    store.add_environment(ENV)
    for r in rows:
        store.add_result(r)
    store.close()
    return url


def toy_rows(date: str = "2026-11-01", good_final: float = 0.1) -> list[dict[str, Any]]:
    """One task with optimum 0; random draws with median 1.0; `good` ends at good_final, `bad` at 0.8."""
    rows = []
    for seed in range(4):
        rows.append(row(task="bowl", seed=seed, method="random", curve=[1.5, 0.9], date=date,
                        task_info={"optimum": 0.0}, losses=[[1.5], [0.5], [1.0]]))
        rows.append(row(task="bowl", seed=seed, method="automl:good", curve=[0.5, good_final], date=date,
                        task_info={"optimum": 0.0}))
        rows.append(row(task="bowl", seed=seed, method="bad", curve=[1.2, 0.8], date=date, task_info={"optimum": 0.0},
                        failures=1))
    return rows


def test_normalised_score_ranks_and_wins_follow_their_definitions(tmp_path: Path) -> None:
    rows = fill(f"sqlite:///{tmp_path / 'r.db'}", toy_rows())
    from automl_bench.leaderboard.store import open_results

    groups, notes = build_groups(open_results(rows)[0])
    assert notes == [] and len(groups) == 1
    table = {r.method: r for r in groups[0].methods}
    # Bayesmark: (best - optimum) / (median random draw - optimum) = 0.1 / 1.0 -> 100 * (1 - 0.1) = 90.
    assert table["automl:good"].score == pytest.approx((90.0, 90.0, 90.0))
    assert table["bad"].score[0] == pytest.approx(20.0)
    assert table["random"].score[0] == pytest.approx(10.0)
    assert [r.method for r in groups[0].methods] == ["automl:good", "bad", "random"]
    assert (table["automl:good"].rank, table["bad"].rank, table["random"].rank) == (1.0, 2.0, 3.0)
    assert (table["automl:good"].wins, table["bad"].wins) == (4, 0)
    assert table["bad"].failed_evals == 4
    assert table["automl:good"].provider == "automl==1.0"


def test_critical_difference_matches_demsars_table() -> None:
    # Demšar (2006), Table 5(a): q_0.05 = 2.343 for 3 methods, 3.164 for 10.
    assert critical_difference([1, 2, 3], 10) == pytest.approx(2.343 * (3 * 4 / 60) ** 0.5, abs=1e-3)
    assert critical_difference(list(range(10)), 25) == pytest.approx(3.164 * (10 * 11 / 150) ** 0.5, abs=1e-3)


def test_a_score_that_leaves_its_previous_interval_is_flagged(tmp_path: Path) -> None:
    noisy = []
    for date, finals in (("2026-11-01", [0.1, 0.12, 0.08, 0.11]), ("2026-11-02", [0.6, 0.62, 0.58, 0.61]),
                         ("2026-11-03", [0.6, 0.63, 0.57, 0.6])):
        for seed, final in enumerate(finals):
            noisy.append(row(task="bowl", seed=seed, method="automl:good", curve=[0.9, final], date=date,
                             task_info={"optimum": 0.0}))
            noisy.append(row(task="bowl", seed=seed, method="random", curve=[1.5, 0.9 + 0.01 * seed], date=date,
                             task_info={"optimum": 0.0}, losses=[[1.5], [0.5], [1.0]]))
    url = fill(f"sqlite:///{tmp_path / 'n.db'}", noisy)
    from automl_bench.leaderboard.store import open_results

    groups, _ = build_groups(open_results(url)[0])
    flags = [(p.date, p.method) for p in groups[0].flags]
    assert flags == [("2026-11-02", "automl:good")]  # the drop; the next night stays within the new interval
    md = render_markdown(groups, [])
    assert "2026-11-02 automl:good: " in md and "left its previous interval" in md


def test_suite_versions_are_kept_apart_and_say_so(tmp_path: Path) -> None:
    rows = toy_rows() + [dict(r, suite_version=2) for r in toy_rows(good_final=0.5)]
    url = fill(f"sqlite:///{tmp_path / 'v.db'}", rows)
    from automl_bench.leaderboard.store import open_results

    groups, notes = build_groups(open_results(url)[0])
    assert [(g.suite, g.version) for g in groups] == [("toy", 2), ("toy", 1)]
    assert {r.method: r.score[0] for r in groups[0].methods}["automl:good"] == pytest.approx(50.0)
    assert {r.method: r.score[0] for r in groups[1].methods}["automl:good"] == pytest.approx(90.0)
    assert any("versions 1, 2" in n and "never compared" in n for n in notes)
    assert "never compared" in render_markdown(groups, notes)


def test_multi_objective_tasks_report_hypervolume_regret(tmp_path: Path) -> None:
    info = {"max_hypervolume": 0.8, "reference": [1.1, 1.1]}
    rows = []
    for seed in range(3):
        for method, hv in (("random", 0.4), ("automl:mo", 0.6)):
            rows.append(row(task="zdt", seed=seed, method=method, curve=[hv / 2, hv], n_objectives=2,
                            task_info=info, hv_regret=0.8 - hv,
                            losses=[[0.1 * i, 1 - 0.1 * i] for i in range(4)]))
    url = fill(f"sqlite:///{tmp_path / 'mo.db'}", rows)
    from automl_bench.leaderboard.store import open_results

    groups, _ = build_groups(open_results(url)[0])
    table = {r.method: r for r in groups[0].methods}
    assert table["automl:mo"].hv_regret is not None and table["automl:mo"].hv_regret[0] == pytest.approx(0.2)
    assert table["automl:mo"].score[0] == pytest.approx(100 * (1 - 0.2 / 0.8))
    page = render_html(groups, [])
    assert "Pareto fronts found: zdt" in page


def test_names_from_the_store_are_escaped(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"
    rows = [dict(r, method=evil if r["method"] == "bad" else r["method"]) for r in toy_rows()]
    url = fill(f"sqlite:///{tmp_path / 'e.db'}", rows)
    from automl_bench.leaderboard.store import open_results

    groups, notes = build_groups(open_results(url)[0])
    assert evil not in render_html(groups, notes)
    assert evil not in render_markdown(groups, notes)


def test_a_store_written_by_an_older_runner_is_read_without_changing_it(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = fill(f"sqlite:///{tmp_path / 'old.db'}", toy_rows())
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # an older store: a nullable column added since is missing
        conn.exec_driver_sql("ALTER TABLE hpo_results DROP COLUMN peer_of")
    assert cli(["leaderboard", url, "--out", str(tmp_path / "lb")]) == 0
    assert "automl:good" in (tmp_path / "lb" / "leaderboard.md").read_text()
    with engine.connect() as conn:
        assert "peer_of" not in {c["name"] for c in sa.inspect(conn).get_columns("hpo_results")}
    engine.dispose()


def test_leaderboard_bad_stores_exit_2_with_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    assert cli(["leaderboard", str(tmp_path / "missing.db"), "--out", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()  # a leaderboard never creates a store
    (tmp_path / "junk.db").write_text("not a database")
    assert cli(["leaderboard", str(tmp_path / "junk.db"), "--out", out]) == 2
    assert "cannot open the results store" in capsys.readouterr().err
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    HpoStore(empty).close()
    assert cli(["leaderboard", empty, "--out", out]) == 2
    assert "holds no benchmark results" in capsys.readouterr().err
    assert cli(["leaderboard", "nosuchdriver://x/y", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "cannot open the results store" in err and "Traceback" not in err


def test_bench_bad_input_exits_2_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("version: 1\nbudget: {iterations: 1, batch: 2}\nseeds: 1\ntasks: [branin]\n"
                     "methods: [random, optuna:tpee]\n")
    assert cli(["bench", str(suite), "--dry-run"]) == 2
    assert "optuna:tpee" in capsys.readouterr().err
    suite.write_text("version: 1\nbudget: {iterations: 1, batch: 2}\nseeds: 1\ntasks: [branim]\nmethods: [random]\n")
    assert cli(["bench", str(suite), "--dry-run"]) == 2
    assert "unknown task 'branim'" in capsys.readouterr().err
    assert cli(["bench", "nosuchsuite"]) == 2
    err = capsys.readouterr().err
    assert "unknown suite 'nosuchsuite'" in err and "Traceback" not in err
    assert cli(["bench", "nightly", "--methods", "automl:nope", "--dry-run"]) == 2
    assert "'automl:nope' is not a method of any suite in plan 'nightly'" in capsys.readouterr().err
    bad_store = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    assert cli(["bench", "smoke", "--methods", "random", "--tasks", "branin", "--store", bad_store]) == 2
    assert "cannot open the results store" in capsys.readouterr().err


def test_bench_nightly_dry_run_lists_its_suites(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["bench", "nightly", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for suite in ("s1", "s3", "r1"):
        assert re.search(rf"^{suite} v\d+: \d+ runs", out, re.M)
    assert "raytune:" not in out.split("\n")[0]  # the Ray Tune peers are weekly only


HALTON = """
from scipy.stats import qmc
from automl import Searcher, SearcherSpec, hookimpl


class Halton(Searcher):
    def __init__(self, space, objectives, *, seed=0):
        super().__init__(space, objectives, seed=seed)
        self.engine = qmc.Halton(d=len(space), seed=seed)

    def suggest(self, number):
        return self.space.from_unit(dict(zip(self.space, self.engine.random(1)[0])))


@hookimpl
def automl_register_searchers():
    return [SearcherSpec("halton", Halton, description="a third-party searcher")]
"""


@pytest.mark.slow
def test_the_nightly_command_on_a_tiny_budget_with_a_third_party_searcher(tmp_path: Path) -> None:
    """What .github/workflows/nightly.yml runs, on a tiny budget, with a third-party plugin installed."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "thirdparty_halton.py").write_text(textwrap.dedent(HALTON))
    info = site / "halton_search-2.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: halton-search\nVersion: 2.0.0\n")
    (info / "entry_points.txt").write_text("[automl]\nhalton = thirdparty_halton\n")
    suite = tmp_path / "tiny.yaml"
    suite.write_text("version: 1\nbudget: {iterations: 2, batch: 2}\nseeds: 2\ntasks: [branin, "
                     "{name: zdt1, options: {dims: 3}, label: zdt1-3d}]\n"
                     "methods: [random, automl:random, automl:halton, optuna:tpe]\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    store = f"sqlite:///{tmp_path / 'bench.db'}"

    def automl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "automl.cli", *args], capture_output=True, text=True,
                              timeout=300, env=env, cwd=tmp_path)

    tiny = ("--iterations", "1", "--batch", "2", "--seeds", "0", "--store", store)
    nightly = automl("bench", "nightly", *tiny, "--methods", "random,automl:random", "--tasks",
                     "branin,dtlz2,kNN-wine-nll")
    assert nightly.returncode == 0, nightly.stderr[-3000:]
    # Progress numbers every run of the plan's suites: [1/N] .. [N/N], N the runs the suite headers announce.
    total = sum(int(n) for n in re.findall(r"^suite \S+ v\d+: .* = (\d+) runs", nightly.stdout, re.M))
    progress = [(int(k), int(n)) for k, n in re.findall(r"^\[(\d+)/(\d+) +\d+s\]", nightly.stdout, re.M)]
    assert total >= 3 and progress == [(k, total) for k in range(1, total + 1)]
    third = automl("bench", str(suite), "--store", store)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "automl:halton" in third.stdout
    board = automl("leaderboard", store, "--out", str(tmp_path / "site-out"))
    assert board.returncode == 0, board.stderr[-3000:]
    md = (tmp_path / "site-out" / "leaderboard.md").read_text()
    for suite_name in ("s1", "s3", "r1", "tiny"):
        assert f"## {suite_name} v" in md
    halton = re.search(r"^\| automl:halton \| halton-search==2\.0\.0 \| [\d.]+", md, re.M)
    assert halton is not None  # a third-party searcher sits in the table like a built-in one, with its package
    stored = HpoStore(store)
    envs = stored.environments()
    assert len(envs) == 4  # one record per suite run: the plan's three and the tiny suite
    assert envs[-1]["cpus"] >= 1 and "automl" in envs[-1]["packages"]


@pytest.mark.slow
@needs_chromium
def test_the_leaderboard_page_renders_in_chromium(tmp_path: Path) -> None:
    rows = toy_rows("2026-11-01") + toy_rows("2026-11-02", good_final=0.3)
    url = fill(f"sqlite:///{tmp_path / 'c.db'}", rows)
    assert cli(["leaderboard", url, "--out", str(tmp_path / "lb")]) == 0
    page = tmp_path / "lb" / "index.html"
    dom = assert_rendered(page, tmp_path, ["plot-0", "plot-1", "plot-2"])
    assert "Critical difference" in dom and "Trend across nights" in dom


@pytest.mark.slow
def test_the_documentation_site_builds_strict_with_the_leaderboard(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs_gen_files")
    pytest.importorskip("mkdocs_click")
    url = fill(f"sqlite:///{tmp_path / 'docs.db'}", toy_rows())
    env = {**os.environ, "AUTOML_LEADERBOARD_STORE": url, "DISABLE_MKDOCS_2_WARNING": "true"}
    site = tmp_path / "site"
    result = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    board = (site / "benchmarks" / "leaderboard" / "index.html").read_text()
    assert re.search(r"<td>automl:good</td>\s*<td>automl==1.0</td>\s*<td>90.0</td>", board)
    cli_page = (site / "reference" / "cli" / "index.html").read_text()
    from automl.cli import main

    for name in main.commands:
        assert f"automl {name}" in cli_page
    schema_page = (site / "reference" / "spec-schema" / "index.html").read_text()
    assert "max_failures" in schema_page and "BudgetSection" in schema_page
    hooks_page = (site / "reference" / "hooks" / "index.html").read_text()
    assert "automl_search_end" in hooks_page and "automl_register_searchers" in hooks_page
