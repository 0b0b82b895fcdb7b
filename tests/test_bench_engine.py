"""The engine suites of ``automl bench`` (S2, R2, R3): searcher+scheduler methods run through ``automl.search``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from automl_bench.base import BenchmarkError, Trace
from automl_bench.engine_tasks import EngineMethod, OptunaPrunerPeer, load_reference, make_engine_task, trials_for
from automl_bench.leaderboard.board import build_groups
from automl_bench.methods import make_method
from automl_bench.plans import resolve, run_bench
from automl_bench.store import HpoStore
from automl_bench.suite import load_suite

from automl.cli import run as cli


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("suite", ["s2", "r2", "r3"])
def test_the_engine_suite_files_load_and_every_method_runs_every_task(suite: str) -> None:
    loaded = load_suite(suite)
    assert loaded.version >= 1 and loaded.tasks and loaded.methods
    for task in loaded.tasks:
        assert getattr(task.problem, "engine", False)
    assert sum(1 for _ in loaded.runs()) == len(loaded.tasks) * len(loaded.methods) * len(loaded.seeds)


def test_nightly_runs_s2_and_a_small_r2_and_r3_is_weekly_only() -> None:
    nightly = {s.name: s for s in resolve("nightly")}
    weekly = {s.name for s in resolve("weekly")}
    assert {"s2", "r2"} <= set(nightly) and "r3" not in nightly
    assert {"s2", "r2", "r3"} <= weekly
    assert len(nightly["r2"].tasks) == 1 and len(nightly["r2"].seeds) == 1


@pytest.mark.parametrize(("body", "message"), [
    ("tasks: [s2-branin]\nmethods: [automl:tpe+nope]", r"methods\.0: method 'automl:tpe\+nope': .*nope"),
    ("tasks: [s2-branin]\nmethods: [automl:nope+asha]", r"methods\.0: method 'automl:nope\+asha': .*nope"),
    ("tasks: [s2-branin]\nmethods: [optuna:tpe]", r"task 's2-branin' runs through the whole engine"),
    ("tasks: [branin]\nmethods: [automl:tpe+asha]", r"runs the whole engine: it runs engine tasks"),
    ("tasks: [s2-nope]\nmethods: [automl:tpe+asha]", r"tasks\.0: unknown task 's2-nope'"),
    ("tasks: [{name: r2-digits, options: {reference_version: 99}}]\nmethods: [automl:tpe+fifo]",
     r"reference points version 99, but .*r2\.yaml is at version 1: .*bump the suite's version"),
    ("tasks: [r2-digits]\nmethods: [automl:tpe+fifo]", r"give options\.reference_version"),
    ("tasks: [{name: r3-digits-mlp, options: {epochs: 0}}]\nmethods: [automl:tpe+asha]", r"epochs must be"),
    ("tasks: [{name: r3-digits-mlp, options: {depth: 3}}]\nmethods: [automl:tpe+asha]",
     r"has no option 'depth'; valid options: epochs, target"),
    ("tasks: [s2-branin]\nmethods: [{name: automl:tpe+asha, options: {scheduler: {grace: 2}}}]",
     r"the scheduler has no option 'grace'"),
    ("tasks: [s2-branin]\nmethods: [optuna:tpe+bogus]", r"PRUNER one of sha, hyperband, median, nop"),
    ("tasks: [{name: r2-iris, options: {reference_version: 1}}]\nmethods: [optuna:tpe+sha]",
     r"runs the S2 tasks .* in-process, not 'r2-iris'"),
])
def test_a_bad_engine_suite_is_a_clear_error(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", f"version: 1\nbudget: {{iterations: 1, batch: 2}}\nseeds: 1\n{body}\n")
    with pytest.raises(BenchmarkError, match=message):
        load_suite(path)


def test_the_cli_says_so_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.yaml", "version: 1\nbudget: {iterations: 1, batch: 2}\nseeds: 1\n"
                                       "tasks: [s2-branin]\nmethods: [automl:tpe+nope]\n")
    assert cli(["bench", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "automl:tpe+nope" in err and "Traceback" not in err


def test_the_r2_reference_is_read_from_the_versioned_file() -> None:
    ref = load_reference("r2-digits", 1)
    task = make_engine_task("r2-digits", {"reference_version": 1})
    assert task.reference == (1.0, 1.0, 1.0)
    # Losses are the objectives over the frozen reference: the reference point itself scores 1 in each.
    at_ref = task.loss({"accuracy": 1 - ref["error"], "latency_ms": ref["latency_ms"], "size_bytes": ref["size_bytes"]})
    assert at_ref == pytest.approx([1.0, 1.0, 1.0])
    assert task.describe()["reference_point"] == ref and task.describe()["reference_version"] == 1


def test_early_stopping_gets_enough_trials_to_spend_the_same_cost() -> None:
    assert trials_for(10, 27, "fifo", {}) == 10
    # Rungs 1, 3, 9, 27 with reduction factor 3: 3 steps per trial on average, so 9x the trials.
    assert trials_for(10, 27, "asha", {"grace_period": 1, "reduction_factor": 3}) == 90
    assert trials_for(10, 1, "asha", {}) == 10


def test_optuna_pruner_peer_spends_exactly_the_cost_and_counts_only_full_fidelity_trials() -> None:
    task = make_engine_task("s2-branin", {})
    peer = make_method("optuna:tpe+sha")
    assert isinstance(peer, OptunaPrunerPeer)
    trace = peer.run(task, iterations=3, batch=2, seed=0, trace=Trace())
    assert trace.extra is not None and trace.curve is not None
    assert trace.extra["cost_spent"] == 6 * task.max_steps == trace.curve["evals"][-1]
    assert trace.extra["completed"] == len(trace.losses) and trace.extra["stopped"] > 0
    bests = [b for b in trace.curve["best"] if b is not None]
    assert bests == sorted(bests, reverse=True) and bests[-1] == min(v[0] for v in trace.losses)
    again = peer.run(task, iterations=3, batch=2, seed=0, trace=Trace())
    assert again.losses == trace.losses
    hyperband = [make_method("optuna:random+hyperband").run(task, iterations=3, batch=2, seed=0) for _ in range(2)]
    assert hyperband[0].losses == hyperband[1].losses and hyperband[0].curve == hyperband[1].curve


def test_engine_method_names_its_parts_and_fills_scheduler_defaults() -> None:
    method = make_method("automl:tpe+asha")
    assert isinstance(method, EngineMethod)
    assert method.scheduler_options == {"grace_period": 1, "reduction_factor": 3}
    assert make_method("automl:random+fifo").scheduler_options == {}  # type: ignore[attr-defined]
    promotion = make_method("automl:random+asha", {"scheduler": {"type": "promotion"}})
    assert promotion.scheduler_options == {"grace_period": 1, "reduction_factor": 3,  # type: ignore[attr-defined]
                                           "type": "promotion"}


TINY = {
    "s2.yaml": """\
        version: 1
        budget: {iterations: 1, batch: 2}
        seeds: [0]
        tasks: [s2-branin]
        methods:
          - automl:random+fifo
          - automl:random+asha
          - {name: automl:random+asha, options: {scheduler: {type: promotion}}, label: automl:random+asha-promotion}
          - optuna:tpe+sha
        """,
    "r2.yaml": """\
        version: 1
        budget: {iterations: 1, batch: 2}
        seeds: [0]
        tasks: [{name: r2-iris, options: {reference_version: 1, steps: 2}}]
        methods: [automl:tpe+moasha]
        """,
    "r3.yaml": """\
        version: 1
        budget: {iterations: 1, batch: 2}
        seeds: [0]
        tasks: [{name: r3-digits-mlp, options: {epochs: 3, target: 0.3}}]
        methods: [automl:random+fifo]
        """,
}


@pytest.mark.slow
def test_s2_r2_r3_run_through_the_engine_into_the_store_and_the_leaderboard(
    tmp_path: Path, ray_session: None,
) -> None:
    suites = [load_suite(write(tmp_path, name, text)) for name, text in TINY.items()]
    store = f"sqlite:///{tmp_path / 'bench.db'}"
    lines: list[str] = []
    result = run_bench(suites, store, command="test", echo=lines.append)
    assert result.stored == 6 and sum(s.crashed for s in result.summaries) == 0, lines
    rows = {(r["suite"], r["method"]): r for r in HpoStore(store).results()}
    for (suite, method), r in rows.items():
        extra = r["extra"]
        budget_steps = {"s2": 2 * 27, "r2": 2 * 2, "r3": 2 * 3}[suite]
        assert extra["cost_budget"] == budget_steps and extra["cost_spent"] <= budget_steps
        assert r["curve"]["evals"] == sorted(r["curve"]["evals"]) and r["curve"]["evals"][-1] <= budget_steps
        assert r["failures"] == 0 and r["evaluations"] == len(r["losses"]) <= extra["completed"]
        if method.startswith("automl:"):
            assert extra["trials"] >= 2 and extra["completed"] + extra["stopped"] + extra["failed"] == extra["trials"]
    assert rows[("s2", "automl:random+fifo")]["regret"] > 0  # regret of the best full-fidelity value
    for asha in ("automl:random+asha", "automl:random+asha-promotion"):  # early stopping: more trials, same cost
        assert rows[("s2", asha)]["extra"]["trials"] > rows[("s2", "automl:random+fifo")]["extra"]["trials"]
    r2 = rows[("r2", "automl:tpe+moasha")]
    # The final value is the share of the frozen reference box that the run's trials dominate. Whether a trial
    # falls inside the box depends on its measured latency (a loaded machine measures more than the frozen 20 ms),
    # so what is checked is the relation that holds whatever the load: each loss vector divides its objectives by
    # the reference, the value is in [0, 1], is 0 exactly when no trial is inside, and is at least the box any one
    # inside trial dominates on its own.
    ok = [v for v in r2["losses"] if v is not None]
    assert r2["n_objectives"] == 3 and ok and all(len(v) == 3 and min(v) >= 0 for v in ok)
    inside = [v for v in ok if max(v) < 1]
    assert 0 <= r2["final_value"] <= 1 and (r2["final_value"] > 0) == bool(inside)
    for v in inside:
        assert r2["final_value"] >= (1 - v[0]) * (1 - v[1]) * (1 - v[2]) - 1e-12
    r3 = rows[("r3", "automl:random+fifo")]["extra"]
    assert r3["target"] == 0.3 and (r3["time_to_target_s"] is None or r3["time_to_target_s"] > 0)

    groups, _ = build_groups(HpoStore(store).results())
    by_suite = {g.suite: g for g in groups}
    assert by_suite["s2"].kinds == {"s2-branin": "log10 regret"}
    assert by_suite["r2"].kinds == {"r2-iris": "hypervolume"}
    assert by_suite["r3"].kinds == {"r3-digits-mlp": "bayesmark"}
    for g in groups:
        assert {c.method for c in g.costs} == {m.method for m in g.methods}
    assert cli(["leaderboard", store, "--out", str(tmp_path / "lb")]) == 0
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    for suite in ("s2", "r2", "r3"):
        assert re.search(rf"^## {suite} v1, 2 full-trial equivalents of cost$", md, re.M)
    assert "Cost and early stopping" in md and "| automl:random+asha |" in md
    assert "cumulative budget steps" in (tmp_path / "lb" / "index.html").read_text()
