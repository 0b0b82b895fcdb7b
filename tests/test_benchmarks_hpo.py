"""The searcher benchmark runner (automl-bench, plugins/automl-bench): problems, hypervolume, suites, store, report."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from automl_bench.base import BenchmarkError, Trace
from automl_bench.cli import main
from automl_bench.methods import make_method
from automl_bench.problems import SYNTHETIC, dtlz2, make_problem, zdt1, zdt2, zdt3
from automl_bench.scoring import average_ranks, bayesmark_normalise, run_figures
from automl_bench.store import STORE_ENV, HpoStore, default_store, git_commit
from automl_bench.suite import load_suite
from click.testing import CliRunner

from automl.builtin.searchers import RandomSearcher
from automl.pareto import hypervolume

# -- problems ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["branin", "hartmann3", "hartmann6"])
def test_single_objective_problems_reach_their_known_minimum(name: str) -> None:
    problem = make_problem(name)
    assert problem.optimum is not None
    for x in problem.minimisers:  # type: ignore[attr-defined]
        value = problem.evaluate(dict(zip(problem.space, x, strict=True)))[0]
        assert value == pytest.approx(problem.optimum, abs=1e-5)
    # The published minimum is a lower bound: no random point goes below it.
    rng = np.random.default_rng(0)
    values = [problem.evaluate(problem.space.sample(rng))[0] for _ in range(2000)]
    assert min(values) >= problem.optimum - 1e-6
    assert max(values) > problem.optimum + 0.1  # and the function is not flat


@pytest.mark.parametrize(("fn", "front", "max_hv"), [
    (zdt1, lambda f1: 1 - np.sqrt(f1), 0.87667),
    (zdt2, lambda f1: 1 - f1**2, 0.54333),
    (zdt3, lambda f1: 1 - np.sqrt(f1) - f1 * np.sin(10 * np.pi * f1), 1.33176),
])
def test_zdt_pareto_set_lies_on_the_front_with_the_known_hypervolume(fn, front, max_hv) -> None:  # noqa: ANN001
    x1 = np.linspace(0, 1, 2001)
    points = np.array([fn(np.array([a] + [0.0] * 29)) for a in x1])
    np.testing.assert_allclose(points[:, 1], front(points[:, 0]), atol=1e-12)
    hv = hypervolume(points, [1.1, 1.1])
    assert hv < max_hv + 1e-5
    assert hv == pytest.approx(max_hv, abs=1e-3)
    # Leaving the Pareto set (x2 > 0) moves every point off the front, upwards.
    off = np.array([fn(np.array([a, 0.3] + [0.0] * 28)) for a in x1])
    assert np.all(off[:, 1] > points[:, 1])


@pytest.mark.parametrize(("m", "max_hv"), [(2, 0.42460), (3, 0.80740)])
def test_dtlz2_front_is_the_unit_sphere_with_the_known_hypervolume(m: int, max_hv: float) -> None:
    def front(n: int) -> np.ndarray:
        grid = np.linspace(0, 1, n)
        angles = [[a] for a in grid] if m == 2 else [[a, b] for a in grid for b in grid]
        return np.array([dtlz2(np.array(a + [0.5] * 10), m) for a in angles])

    coarse, fine = front(20 if m == 3 else 200), front(40 if m == 3 else 400)
    np.testing.assert_allclose(np.sum(fine**2, axis=1), 1.0)
    hv_coarse, hv_fine = hypervolume(coarse, [1.1] * m), hypervolume(fine, [1.1] * m)
    assert hv_coarse < hv_fine < max_hv
    # The sampled front's shortfall halves when the grid doubles: extrapolate to the limit.
    assert 2 * hv_fine - hv_coarse == pytest.approx(max_hv, abs=2e-3)


def test_problem_registry_errors_name_the_valid_choices() -> None:
    with pytest.raises(BenchmarkError, match=r"unknown task 'branim'.*Did you mean 'branin'"):
        make_problem("branim")
    with pytest.raises(BenchmarkError, match=r"has no option 'dim'; valid options: dims"):
        make_problem("zdt1", {"dim": 3})
    with pytest.raises(BenchmarkError, match=r"dims must be an integer >= 2"):
        make_problem("zdt1", {"dims": 1})
    assert len(make_problem("zdt2", {"dims": 7}).space) == 7
    assert set(SYNTHETIC) >= {"branin", "hartmann3", "hartmann6", "zdt1", "zdt2", "zdt3", "dtlz2"}


def test_bayesmark_task_is_a_deterministic_cross_validated_loss() -> None:
    problem = make_problem("DT-iris-nll")
    config = problem.space.sample(np.random.default_rng(3))
    first, again = problem.evaluate(config), problem.evaluate(config)
    assert first == again and first[0] > 0
    acc = make_problem("kNN-wine-acc").evaluate({"n_neighbors": 5, "p": 2})[0]
    assert 0.0 <= acc < 0.2  # 1 - accuracy of a 5-NN on standardised wine
    mse = make_problem("linear-diabetes-mse").evaluate({"alpha": 1.0})[0]
    assert 0.3 < mse < 1.0  # standardised target: ridge explains part of the variance


# -- hypervolume cross-check ----------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_agrees_with_optuna(m: int) -> None:
    # Optuna 5 exposes no public hypervolume function: optuna._hypervolume.compute_hypervolume
    # (its WFG implementation, used by its samplers and plot_hypervolume_history) is the one to compare.
    from optuna._hypervolume import compute_hypervolume

    rng = np.random.default_rng(m)
    for _ in range(5):
        points = rng.random((40, m))
        reference = np.full(m, 1.1)
        assert hypervolume(points, reference) == pytest.approx(compute_hypervolume(points, reference), rel=1e-9)


def test_run_figures_track_the_best_value_and_hypervolume_per_batch() -> None:
    branin = make_problem("branin")
    trace = Trace(losses=[[5.0], None, [1.0], [3.0], [0.5]])
    figures = run_figures(branin, trace, batch=2)
    assert figures["curve"] == {"evals": [2, 4, 5], "best": [5.0, 1.0, 0.5]}
    assert figures["final_value"] == 0.5 and figures["regret"] == pytest.approx(0.5 - 0.397887)
    zdt = make_problem("zdt1", {"dims": 3})
    trace = Trace(losses=[[0.2, 0.9], [0.9, 0.2], [2.0, 2.0]])
    figures = run_figures(zdt, trace, batch=2)
    expected = hypervolume(np.array([[0.2, 0.9], [0.9, 0.2]]), [1.1, 1.1])
    assert figures["final_value"] == pytest.approx(expected)
    assert figures["hv_regret"] == pytest.approx(0.87667 - expected)


def test_bayesmark_normalisation_and_ranks() -> None:
    assert bayesmark_normalise(0.2, opt=0.2, clip=0.8) == 0.0
    assert bayesmark_normalise(0.8, opt=0.2, clip=0.8) == 1.0
    assert bayesmark_normalise(5.0, opt=0.2, clip=0.8) == 1.0  # worse than a random draw: clipped
    assert bayesmark_normalise(0.5, opt=0.2, clip=0.8) == pytest.approx(0.5)
    assert bayesmark_normalise(0.3, opt=0.3, clip=0.3) == 0.0
    ranks = average_ranks({"a": {1: 0.1, 2: 0.5}, "b": {1: 0.2, 2: 0.5}, "c": {1: 0.3, 2: 0.1, 3: 9.0}})
    assert ranks == {"a": 1.75, "b": 2.25, "c": 2.0}  # block 3 is not shared; ties share the mean rank


# -- methods -------------------------------------------------------------------------------------


def test_automl_method_drives_the_searcher_built_by_the_plugin_manager() -> None:
    problem = make_problem("hartmann3")
    trace = make_method("automl:random").run(problem, iterations=3, batch=4, seed=7)
    searcher = RandomSearcher(problem.space, list(problem.objectives), seed=7)
    expected = [problem.evaluate(searcher.suggest(n)) for n in range(12)]
    assert trace.losses == expected
    assert trace.suggestions == 12 and trace.failures == 0 and trace.overhead_s is not None


@pytest.mark.parametrize("name", ["optuna:tpe", "hyperopt:tpe", "nevergrad:de", "random"])
def test_peers_are_reproducible_for_a_seed_and_respect_the_budget(name: str) -> None:
    problem = make_problem("branin")
    method = make_method(name)
    a = method.run(problem, iterations=3, batch=3, seed=1)
    b = method.run(problem, iterations=3, batch=3, seed=1)
    c = method.run(problem, iterations=3, batch=3, seed=2)
    assert len(a.losses) == 9 and a.losses == b.losses and a.losses != c.losses


def test_method_errors_name_the_valid_choices() -> None:
    with pytest.raises(BenchmarkError, match=r"unknown method 'optuna:tpee'.*Did you mean 'optuna:tpe'"):
        make_method("optuna:tpee")
    with pytest.raises(BenchmarkError, match=r"has no option 'n_startup'; valid options: .*n_startup_trials"):
        make_method("optuna:tpe", {"n_startup": 3})
    with pytest.raises(BenchmarkError, match=r"unknown searcher 'no-such'"):
        make_method("automl:no-such")
    with pytest.raises(BenchmarkError, match=r"single-objective and task 'zdt1' has 2 objectives"):
        make_method("hyperopt:tpe").check(make_problem("zdt1"))


@pytest.mark.slow
def test_raytune_peer_runs_through_tuner(ray_session: None) -> None:
    problem = make_problem("branin")
    trace = make_method("raytune:optuna").run(problem, iterations=2, batch=2, seed=0)
    assert len(trace.losses) == 4 and trace.failures == 0
    assert all(v is not None and v[0] >= problem.optimum for v in trace.losses)  # type: ignore[operator]


# -- runner, store, report -------------------------------------------------------------------------


def test_smoke_suite_appends_rows_skips_stored_ones_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Others commit in the same tree: pin the commit, or HEAD may move between the two runs
    # (and a new commit rightly gets rows of its own).
    monkeypatch.setattr("automl_bench.runner.git_commit", lambda: ("0" * 40, False))
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    runner = CliRunner()
    suite = load_suite("smoke", seeds=[0])
    expected = sum(1 for _ in suite.runs())
    result = runner.invoke(main, ["run", "smoke", "--seeds", "0", "--store", url])
    assert result.exit_code == 0, result.output
    assert f"stored {expected} rows" in result.output

    rows = HpoStore(url).results()
    assert len(rows) == expected
    assert {r["method"] for r in rows} == {m.label for m in suite.methods}
    assert all(r["evaluations"] == suite.evaluations and r["error"] is None for r in rows)
    assert all(len(r["curve"]["evals"]) == suite.iterations for r in rows)
    assert {r["suite_version"] for r in rows} == {1} and len({r["env_id"] for r in rows}) == 1
    assert all((r["regret"] is None) == (r["task"] != "branin") for r in rows)
    assert all((r["hv_regret"] is not None) == (r["task"] == "zdt1-4d") for r in rows)

    again = runner.invoke(main, ["run", "smoke", "--seeds", "0", "--store", url])
    assert again.exit_code == 0 and f"stored 0 rows, skipped {expected}" in again.output
    assert len(HpoStore(url).results()) == expected  # append-only: nothing added, nothing replaced

    out = tmp_path / "report.md"
    report = runner.invoke(main, ["report", "--store", url, "--out", str(out)])
    assert report.exit_code == 0, report.output
    text = out.read_text()
    for label in [m.label for m in suite.methods] + ["branin", "zdt1-4d", "DT-iris-nll"]:
        assert label in text
    assert "Bayesmark score" in text and "Wrapper parity" in text and "avg rank" in text


def test_the_default_store_follows_the_working_directory_not_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert default_store(tmp_path) == f"sqlite:///{tmp_path / 'automl-bench.db'}"
    (tmp_path / "benchmarks" / "hpo").mkdir(parents=True)  # the root of an automl checkout
    assert default_store(tmp_path) == f"sqlite:///{tmp_path / 'benchmarks' / 'results' / 'hpo.db'}"
    monkeypatch.setenv(STORE_ENV, "sqlite:///elsewhere.db")
    assert default_store(tmp_path) == "sqlite:///elsewhere.db"


def test_the_commit_is_the_checkouts_only_at_its_root(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == ("unknown", False)
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("a source tree without git (an sdist) has no commit")
    commit, _ = git_commit(root)
    assert len(commit) == 40 and int(commit, 16) >= 0


def test_store_is_append_only_per_key(tmp_path: Path) -> None:
    store = HpoStore(f"sqlite:///{tmp_path / 'x.db'}")
    env = store.add_environment({"created_at": 0.0, "commit": "c", "dirty": False, "python": "3", "platform": "p",
                                 "cpu": "cpu", "cpus": 2, "threads": {}, "packages": {}, "command": "test"})
    key = {"date": "2026-01-01", "commit": "c", "suite": "s", "suite_version": 1, "task": "t", "seed": 0,
           "method": "m", "budget": 4}
    row = {**key, "created_at": 0.0, "batch": 2, "env_id": env, "method_name": "m", "method_options": {},
           "method_version": "v", "peer_of": None, "task_info": {}, "n_objectives": 1, "evaluations": 4,
           "failures": 0, "final_value": 1.0, "regret": None, "hv_regret": None, "curve": {"evals": [], "best": []},
           "losses": [], "overhead_s": 0.001, "wall_s": 0.1, "eval_s": 0.05, "error": None}
    assert not store.has_result(key)
    store.add_result(row)
    assert store.has_result(key)
    # Resuming skips what ran today even after HEAD moved; --rerun asks about this commit only.
    assert store.has_result({**key, "commit": "later"}, ignore=("commit",))
    assert not store.has_result({**key, "commit": "later"})
    with pytest.raises(sa.exc.IntegrityError):
        store.add_result(row)
    store.add_result({**row, "date": "2026-01-02"})  # the next night's row sits beside it
    assert len(store.results()) == 2


def test_an_older_store_gains_the_new_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    HpoStore(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a store written before eval_errors existed
        conn.execute(sa.text("ALTER TABLE hpo_results DROP COLUMN eval_errors"))
    assert "eval_errors" not in {c["name"] for c in sa.inspect(engine).get_columns("hpo_results")}
    HpoStore(url).close()
    assert "eval_errors" in {c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("hpo_results")}


@pytest.mark.parametrize("url", ["not a url", "sqlite:////no/such/directory/hpo.db", "nosuchdialect://x"])
def test_a_store_that_cannot_be_opened_is_a_clear_error(url: str) -> None:
    result = CliRunner().invoke(main, ["report", "--store", url])
    assert result.exit_code == 2
    assert f"cannot open the results store {url!r}" in result.output and "Traceback" not in result.output


BAD_SUITES = {
    "unknown method": ("methods: [random, optuna:tpee]", r"methods.1: unknown method 'optuna:tpee'. Did you mean 'optuna:tpe'"),
    "unknown task": ("tasks: [branim]", r"tasks.0: unknown task 'branim'. Did you mean 'branin'"),
    "unknown field": ("seedz: 3", r"seedz: Extra inputs are not permitted; valid fields here: version"),
    "bad seeds": ("seeds: -2", r"seeds: give a count"),
    "bad option": ("methods: [{name: optuna:tpe, options: {n_startup: 3}}]", r"has no option 'n_startup'"),
    "bad entry field": ("methods: [{name: random, optionz: {}}]", r"methods.0.optionz: Extra inputs.*valid fields: name"),
    "objectives": ("tasks: [zdt1]\nmethods: [hyperopt:tpe]", r"single-objective .* restrict the method with `tasks"),
    "restriction": ("methods: [{name: random, tasks: [nope]}]", r"methods.0.tasks: 'nope' is not a task"),
    "not yaml": ("tasks: [branin\n", r"not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_a_bad_suite_file_is_a_clear_error(case: str, tmp_path: Path) -> None:
    override, message = BAD_SUITES[case]
    base = {"version": "version: 1", "budget": "budget: {iterations: 1, batch: 1}", "seeds": "seeds: 1",
            "tasks": "tasks: [branin]", "methods": "methods: [random]"}
    key = override.split(":", 1)[0]
    text = "\n".join([v for k, v in base.items() if k != key] + [override])
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    result = CliRunner().invoke(main, ["run", str(path), "--store", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(path) in result.output
    import re

    assert re.search(message, result.output), result.output


def test_missing_version_and_unknown_suite_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "nover.yaml"
    path.write_text("budget: {iterations: 1}\nseeds: 1\ntasks: [branin]\nmethods: [random]\n")
    with pytest.raises(BenchmarkError, match=r"nover.yaml: version: Field required"):
        load_suite(path)
    with pytest.raises(BenchmarkError, match=r"unknown suite 'nope': give a suite file or one of .*smoke"):
        load_suite("nope")
    assert not math.isnan(load_suite("smoke").evaluations)
