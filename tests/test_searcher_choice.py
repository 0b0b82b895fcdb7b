"""``searcher: auto`` (the default) and ``budget.trials`` left out: what a spec that names neither gets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from automl.errors import SpecError

BASE = """
task: classification
data: {dataset: iris}
trainer: {name: sklearn}
"""


def test_a_wall_time_search_with_one_objective_gets_one_cost_aware_search_per_model(
        write_spec: Callable[[str], Path]) -> None:
    pytest.importorskip("flaml")
    for wall_time in ("30s", "299s", "5m"):
        plan = automl.validate(write_spec(BASE + f"budget: {{wall_time: {wall_time}}}\n"), data=False)
        assert plan.searcher.name == "learners", wall_time
        assert any(note.startswith("searcher auto: learners") and "one cost-aware search per model" in note
                   for note in plan.notes)
        assert plan.trial_count >= 10_000  # the wall time ends it, not a count


def test_without_a_wall_time_or_with_several_objectives_auto_stays_random(write_spec: Callable[[str], Path]) -> None:
    plan = automl.validate(write_spec(BASE), data=False)
    assert plan.searcher.name == "random" and plan.trial_count == 20
    two = BASE + ("budget: {wall_time: 30s}\nobjectives: [{metric: accuracy, mode: max}, "
                  "{metric: latency_ms, mode: min}]\n")
    assert automl.validate(write_spec(two), data=False).searcher.name == "random"


def test_a_named_searcher_and_an_explicit_trial_count_are_kept(write_spec: Callable[[str], Path]) -> None:
    plan = automl.validate(write_spec(BASE + "searcher: {name: random}\nbudget: {wall_time: 30s, trials: 7}\n"),
                           data=False)
    assert plan.searcher.name == "random" and plan.trial_count == 7
    assert not any(note.startswith("searcher auto") for note in plan.notes)


def test_without_flaml_auto_takes_the_next_installed_and_says_what_it_skipped(
        write_spec: Callable[[str], Path]) -> None:
    plan = automl.validate(write_spec(BASE + "budget: {wall_time: 30s}\n"), data=False,
                           disabled_plugins=("flaml",))
    expected = "tpe" if "tpe" in automl.plugins.get_plugin_manager(("flaml",)).searchers.names() else "random"
    assert plan.searcher.name == expected
    note = next(n for n in plan.notes if n.startswith("searcher auto"))
    assert all(f"{name} not installed" in note for name in ("learners", "blendsearch", "cfo"))


def test_options_without_a_searcher_name_are_refused_at_the_field(write_spec: Callable[[str], Path]) -> None:
    with pytest.raises(SpecError, match="searcher options need a searcher name") as info:
        automl.validate(write_spec(BASE + "searcher: {options: {n_startup: 3}}\n"), data=False)
    assert "searcher.options" in str(info.value)


def test_progress_counts_trials_without_a_total_when_only_the_wall_time_bounds_them() -> None:
    from automl.cli import _Progress
    from automl.plan import UNBOUNDED_TRIALS
    from automl.recorder import Counts

    progress = _Progress()
    progress.counts = Counts(total=UNBOUNDED_TRIALS, done=13, running=2)
    assert progress.text().startswith("trials 13 done, 2 running")
    progress.counts = Counts(total=20, done=13)
    assert progress.text().startswith("trials 13/20 done")
