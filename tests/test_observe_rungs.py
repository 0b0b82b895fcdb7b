"""Searchers that learn from every rung: the driver side of ``Searcher.observe_rung`` (issue 20).

The adapter is driven here as Ray Tune drives it (``suggest``, ``on_trial_result`` for a trial that
goes on, ``on_trial_complete``), without Ray; one slow test runs a BOHB search under ASHA end to end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import automl
from automl.engine import SEARCHER_STATE
from automl.interfaces import Objective, RungResult, Searcher, TrialOutcome
from automl.searcher_adapter import SearcherAdapter
from automl.space import Float, SearchSpace
from automl.trial_job import BUDGET, FINAL, NUMBER

SPACE = SearchSpace([Float("x", low=0.0, high=1.0)])
LOSS = [Objective("loss", "min")]


class Recording(Searcher):
    """Suggests x = number / 10 and records every call it gets."""

    def __init__(self, space: SearchSpace, objectives: list[Objective], *, seed: int = 0) -> None:
        super().__init__(space, objectives, seed=seed)
        self.calls: list[tuple[str, int, int, str]] = []

    def suggest(self, number: int) -> dict[str, Any] | None:
        return {"x": number / 10}

    def observe(self, outcome: TrialOutcome) -> None:
        self.calls.append(("observe", outcome.number, outcome.budget, outcome.status))

    def observe_rung(self, result: RungResult) -> None:
        self.calls.append(("rung", result.number, result.budget, repr(dict(result.values))))


class Plain(Searcher):
    """An older searcher: no observe_rung."""

    def suggest(self, number: int) -> dict[str, Any] | None:
        return {"x": 0.5}


def result(budget: int, loss: float, *, final: bool = False) -> dict[str, Any]:
    return {BUDGET: budget, "loss": loss, "time_total_s": 1.0, **({FINAL: True} if final else {})}


def adapter(searcher: Searcher) -> SearcherAdapter:
    return SearcherAdapter(searcher, max_budget=9, milestones=(1, 3))


def test_rung_results_are_told_once_at_the_milestones_and_a_stopped_trial_is_stopped() -> None:
    searcher = Recording(SPACE, LOSS)
    a = adapter(searcher)
    assert a.suggest("t0")[NUMBER] == 0 and a.suggest("t1")[NUMBER] == 1
    for budget in (1, 2, 3):  # trial 0 goes on through both rungs, then completes
        a.on_trial_result("t0", result(budget, 1.0 / budget))
    a.on_trial_result("t0", result(1, 0.5))  # a restored step reported again: not told twice
    a.on_trial_complete("t0", result(9, 0.1, final=True))
    # Trial 1 is stopped at the first rung: Tune tells the search algorithm nothing for that result, the adapter
    # tells the rung result from the trial's last result, then the stopped outcome at that budget.
    a.on_trial_complete("t1", result(1, 2.0))
    assert searcher.calls == [
        ("rung", 0, 1, "{'loss': 1.0}"), ("rung", 0, 3, f"{{'loss': {1 / 3!r}}}"), ("observe", 0, 9, "completed"),
        ("rung", 1, 1, "{'loss': 2.0}"), ("observe", 1, 1, "stopped"),
    ]
    assert a.rungs_told == {(0, 1), (0, 3), (1, 1)}


def test_a_failed_trial_and_a_searcher_without_observe_rung_get_no_rung_result() -> None:
    searcher = Recording(SPACE, LOSS)
    a = adapter(searcher)
    a.suggest("t0")
    a.on_trial_complete("t0", result(1, 2.0), error=True)
    assert searcher.calls == [("observe", 0, 1, "failed")]
    plain = Plain(SPACE, LOSS)
    assert not plain.observes_rungs and searcher.observes_rungs
    b = adapter(plain)
    b.suggest("t0")
    b.on_trial_result("t0", result(1, 1.0))
    b.on_trial_complete("t0", result(3, 1.0))
    assert b.rungs_told == set()
    # Without a rung scheduler (no milestones) nothing is a rung result.
    c = SearcherAdapter(Recording(SPACE, LOSS), max_budget=9)
    c.suggest("t0")
    c.on_trial_result("t0", result(1, 1.0))
    assert c.strategy.calls == []  # type: ignore[attr-defined]


def test_start_points_and_reissued_trials_are_told_their_rungs_too() -> None:
    searcher = Recording(SPACE, LOSS)
    a = SearcherAdapter(searcher, max_budget=9, milestones=(1, 3), start=[{"x": 0.25}])
    assert a.suggest("t0") == {"x": 0.25, NUMBER: 0}
    a.on_trial_result("t0", result(1, 0.7))
    assert searcher.calls == [("rung", 0, 1, "{'loss': 0.7}")]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_bohb_under_asha_learns_from_every_rung(write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    pytest.importorskip("automl_optuna")
    path = write_spec("""
trainer:
  name: function
  params: {function: "tests.fixtures.objectives:fidelity", metrics: {loss: min, cost: min}, steps: 9}
space:
  x: {type: float, low: 0, high: 1}
objectives:
  - {metric: loss, mode: min}
searcher: {name: bohb, options: {min_points: 3}}
scheduler: {name: asha, options: {grace_period: 1, reduction_factor: 3}}
budget: {trials: 12}
seed: 3
""")
    run = automl.search(path, out=tmp_path / "run")
    trials = run.trials()
    assert Counter(t["status"] for t in trials)["stopped"] > 0
    # Every trial that reached a rung (1 or 3 steps) is in that budget's model; the completed ones at 9.
    at_rung: Mapping[int, set[int]] = {m: {int(s["number"]) for s in run.steps() if s["step"] == m} for m in (1, 3)}
    state = SearcherAdapter.load_state(run.dir / SEARCHER_STATE)
    assert state is not None
    bohb = state["strategy"]
    assert {b for _, b in state["rungs_told"]} == {1, 3}
    assert bohb._counts[1] == len(at_rung[1]) == len(trials)
    assert bohb._counts[3] == len(at_rung[3])
    assert bohb._counts[9] == sum(t["status"] == "completed" for t in trials)
    assert bohb.model_budget() in (1, 3, 9)
