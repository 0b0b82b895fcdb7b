"""automl-bench's in-process multi-fidelity methods (``rungs:SEARCHER+SCHEDULER``) and the issue-20 figure."""

from __future__ import annotations

import pytest

pytest.importorskip("automl_bench")
pytest.importorskip("automl_optuna")

from automl_bench.base import BenchmarkError, Trace  # noqa: E402
from automl_bench.engine_methods import make_engine_method  # noqa: E402
from automl_bench.engine_tasks import make_engine_task  # noqa: E402
from automl_bench.mf_figure import cost_to_target, figure  # noqa: E402


def test_a_rung_method_spends_the_budget_stops_trials_and_is_deterministic() -> None:
    task = make_engine_task("s2-branin", {})
    method = make_engine_method("rungs:bohb+hyperband")
    first = method.run(task, iterations=6, batch=1, seed=1)
    again = method.run(task, iterations=6, batch=1, seed=1)
    assert first.extra is not None and first.curve is not None
    assert first.extra["cost_spent"] == 6 * 27 and first.extra["stopped"] > 0 and first.extra["completed"] >= 1
    assert first.curve == again.curve and first.losses == again.losses
    fifo = make_engine_method("rungs:random+fifo").run(task, iterations=6, batch=1, seed=1)
    assert fifo.extra is not None and fifo.extra["stopped"] == 0 and fifo.extra["completed"] == 6


def test_cost_to_target_reads_the_best_completed_curve() -> None:
    trace = Trace(curve={"evals": [27, 40, 90], "best": [5.0, 2.0, 1.0], "x": "cumulative budget steps"})
    assert cost_to_target(trace, 2.0) == 40 and cost_to_target(trace, 0.5) is None


def test_rung_methods_refuse_what_they_cannot_run() -> None:
    with pytest.raises(BenchmarkError, match="rungs:SEARCHER"):
        make_engine_method("rungs:bohb")
    with pytest.raises(BenchmarkError, match="in-process"):
        make_engine_method("rungs:random+asha").check(make_engine_task("r3-digits-mlp", {}))


def test_the_figure_has_a_row_per_method_and_the_speedup_against_full_budget_random() -> None:
    text = figure(["s2-branin"], ["rungs:random+fifo", "rungs:random+asha"], [0], 5)
    assert "| rungs:random+fifo |" in text and "| rungs:random+asha |" in text and "top 5% =" in text


def test_a_rung_method_with_promotion_type_asha_resumes_paused_trials() -> None:
    task = make_engine_task("s2-hartmann3", {})
    method = make_engine_method("rungs:random+asha", {"scheduler": {"type": "promotion"}})
    first = method.run(task, iterations=6, batch=1, seed=2)
    assert first.extra is not None and first.extra["cost_spent"] == 6 * 27
    assert first.extra["resumed"] > 0 and first.extra["completed"] >= 1
    # Every trial ends completed or stopped (paused ones never promoted count as stopped).
    assert first.extra["completed"] + first.extra["stopped"] in (first.extra["trials"], first.extra["trials"] - 1)
    assert method.run(task, iterations=6, batch=1, seed=2).curve == first.curve
    stopping = make_engine_method("rungs:random+asha").run(task, iterations=6, batch=1, seed=2)
    assert stopping.extra is not None and stopping.extra["resumed"] == 0
