"""The ``learners`` searcher beyond the conformance kit: the split at the model choice, the learner
chosen by estimated cost for improvement, dropped learners, skipped trials, plain CFO without a
choice, and resume. In-process, no Ray (each test well under a second or two)."""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from automl_flaml.learners import FAIL_LIMIT, LearnersSearcher, branch_space, split_choice
from automl_flaml.plugin import searcher_specs

from automl.plugin import KNOWN_PROVIDERS, Choice, Float, Int, Objective, SearchSpace, TrialOutcome
from automl.testing import BOWL_SPACE, CONDITIONAL_SPACE
from automl.testing.searchers import assert_in_space

ACC = [Objective("accuracy", "max")]

SPACE = SearchSpace([
    Choice("model", values=("forest", "linear", "knn")),
    Int("forest__n_estimators", low=4, high=1000, log=True, when={"model": ("forest",)}),
    Float("forest__max_features", low=0.1, high=1.0, when={"model": ("forest",)}),
    Float("linear__C", low=1e-3, high=1e3, log=True, when={"model": ("linear",)}),
    Int("knn__n_neighbors", low=1, high=50, when={"model": ("knn",)}),
])


def _run(searcher: LearnersSearcher, evaluate: Any, n: int, first: int = 0) -> list[dict[str, Any]]:
    """Sequential trials; ``evaluate(config) -> (accuracy or None for a failure, seconds)``."""
    out = []
    for number in range(first, first + n):
        config = searcher.suggest(number)
        assert config is not None
        assert_in_space(searcher.space, config)
        accuracy, seconds = evaluate(config)
        status = "failed" if accuracy is None else "completed"
        values = {} if accuracy is None else {"accuracy": accuracy}
        searcher.observe(TrialOutcome(number, config, status, values, 1, 1, seconds))
        out.append(config)
    return out


def test_split_at_the_model_choice() -> None:
    assert split_choice(CONDITIONAL_SPACE) == "model"
    assert split_choice(BOWL_SPACE) is None
    svm = branch_space(CONDITIONAL_SPACE, "model", "svm")
    assert set(svm) == {"C", "kernel", "degree", "gamma", "tol"}
    assert svm["gamma"].when == {"kernel": ("rbf",)}  # the model condition is gone, the nested one kept
    assert set(branch_space(CONDITIONAL_SPACE, "model", "tree")) == {"depth", "tol"}


def test_registered() -> None:
    spec = next(s for s in searcher_specs() if s.name == "learners")
    assert spec.factory is LearnersSearcher and KNOWN_PROVIDERS["searcher"]["learners"] == "automl-flaml"
    assert set(spec.option_names()) == {"low_cost_partial_config", "gap_penalty"}


def _cheap_linear(config: Mapping[str, Any]) -> tuple[float | None, float]:
    """linear: 1 s, 0.80 to 0.90 as log C grows; forest: 20 s, 0.85 flat; knn: 2 s, 0.70."""
    if config["model"] == "linear":
        return 0.80 + 0.10 * SPACE["linear__C"].to_unit(config["linear__C"]), 1.0
    if config["model"] == "forest":
        return 0.85, 20.0
    return 0.70, 2.0


def test_every_learner_first_then_the_cheapest_improvement_most() -> None:
    configs = _run(LearnersSearcher(SPACE, ACC, seed=0), _cheap_linear, 40)
    assert {c["model"] for c in configs[:3]} == {"forest", "linear", "knn"}
    counts = Counter(c["model"] for c in configs)
    assert counts["linear"] > counts["forest"] + counts["knn"], counts


def test_a_flat_leader_loses_its_share() -> None:
    # forest leads early (0.85 against linear's start at 0.80) but never improves; linear climbs.
    searcher = LearnersSearcher(SPACE, ACC, seed=1)
    configs = _run(searcher, _cheap_linear, 60)
    late = Counter(c["model"] for c in configs[30:])
    assert late["forest"] < late["linear"], late
    assert searcher.eci["forest"] > searcher.eci["linear"]


def test_same_seed_same_learners() -> None:
    a = _run(LearnersSearcher(SPACE, ACC, seed=4), _cheap_linear, 25)
    b = _run(LearnersSearcher(SPACE, ACC, seed=4), _cheap_linear, 25)
    assert a == b


def test_a_learner_whose_trials_all_fail_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    def evaluate(config: Mapping[str, Any]) -> tuple[float | None, float]:
        return (None, 1.0) if config["model"] == "knn" else _cheap_linear(config)

    searcher = LearnersSearcher(SPACE, ACC, seed=0)
    with caplog.at_level("WARNING", logger="automl_flaml"):
        configs = _run(searcher, evaluate, 40)
    assert searcher.dropped == {"knn": f"its first {FAIL_LIMIT} trials all failed"}
    assert "knn" in caplog.text and "dropped" in caplog.text
    knn = [i for i, c in enumerate(configs) if c["model"] == "knn"]
    assert len(knn) == FAIL_LIMIT


def test_the_last_learner_is_never_dropped() -> None:
    searcher = LearnersSearcher(SPACE, ACC, seed=0)
    configs = _run(searcher, lambda c: (None, 1.0), 15)
    assert len(searcher.dropped) == 2 and len(configs) == 15


def test_start_points_in_flight_are_awaited() -> None:
    # The engine ran starting points 0-2 (one per model) before asking; only forest's has reported.
    searcher = LearnersSearcher(SPACE, ACC, seed=0)
    searcher.observe(TrialOutcome(0, {"model": "forest", "forest__n_estimators": 4, "forest__max_features": 0.5},
                                  "completed", {"accuracy": 0.8}, 1, 1, 1.0))
    assert searcher.suggest(3)["model"] == "forest"  # linear's and knn's first results are on their way
    searcher.observe(TrialOutcome(1, {"model": "linear", "linear__C": 1.0}, "completed", {"accuracy": 0.7}, 1, 1, 1.0))
    searcher.observe(TrialOutcome(2, {"model": "knn", "knn__n_neighbors": 1}, "completed", {"accuracy": 0.6}, 1, 1, 1.0))
    assert set(searcher.eci) == {"forest", "linear", "knn"}


def test_a_skipped_trial_sets_its_learner_aside() -> None:
    searcher = LearnersSearcher(SPACE, ACC, seed=0)
    _run(searcher, _cheap_linear, 6)
    config = searcher.suggest(6)
    assert config is not None
    # Not started for lack of time: stopped at budget 0, no values, as the engine tells it.
    searcher.observe(TrialOutcome(6, config, "stopped", {}, 0, 1, 0.0))
    assert searcher.suggest(7)["model"] != config["model"]


def test_no_model_choice_is_plain_cfo_and_a_fixed_learner_runs_once() -> None:
    searcher = LearnersSearcher(BOWL_SPACE, [Objective("loss", "min")], seed=0)
    assert searcher.split is None and len(searcher.learners) == 1
    fixed = SearchSpace([Choice("model", values=("a", "b")), Float("x", low=0.0, high=1.0, when={"model": ("a",)})])
    searcher = LearnersSearcher(fixed, ACC, seed=0)
    configs = _run(searcher, lambda c: (0.5 + 0.1 * c.get("x", 0.0), 1.0), 10)
    assert sum(c == {"model": "b"} for c in configs) == 1


def test_pickle_mid_search_continues_the_same() -> None:
    searcher = LearnersSearcher(SPACE, ACC, seed=2)
    _run(searcher, _cheap_linear, 12)
    pending = searcher.suggest(12)
    copy = pickle.loads(pickle.dumps(searcher))
    for s in (searcher, copy):
        assert pending is not None
        s.observe(TrialOutcome(12, pending, "completed", {"accuracy": 0.8}, 1, 1, 1.0))
    assert _run(searcher, _cheap_linear, 10, first=13) == _run(copy, _cheap_linear, 10, first=13)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="gap_penalty"):
        LearnersSearcher(SPACE, ACC, gap_penalty="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown parameter 'C'"):
        LearnersSearcher(SPACE, ACC, low_cost_partial_config={"C": 1.0})


def test_known_costs_are_summed_not_kept_and_an_unknown_cost_is_charged_their_mean() -> None:
    fixed = SearchSpace([Choice("model", values=("a", "b")), Float("x", low=0.0, high=1.0, when={"model": ("a",)})])
    searcher = LearnersSearcher(fixed, ACC, seed=0)
    b = searcher.learners[1]
    for number in range(3000):  # the fixed learner's outcomes: no CFO to tell, so fast
        searcher.observe(TrialOutcome(number, {"model": "b"}, "completed", {"accuracy": 0.5}, 1, 1, 1.0 + number % 3))
    assert b.total_s == 6000.0
    # Bounded memory over a long search: no per-trial list of costs in the searcher's state.
    assert not [name for name, v in vars(searcher).items() if isinstance(v, list) and len(v) >= 3000]
    searcher.observe(TrialOutcome(3000, {"model": "b"}, "completed", {"accuracy": 0.5}, 1, 1, None))
    assert b.total_s == 6002.0  # charged the mean known cost, 2 s
    # A searcher pickled by the earlier version (every known cost in a list) resumes with the same mean.
    state = pickle.loads(pickle.dumps({k: v for k, v in vars(searcher).items() if k not in ("_cost_sum", "_cost_count")}))
    old = LearnersSearcher.__new__(LearnersSearcher)
    old.__setstate__({**state, "_costs": [1.0, 2.0, 6.0]})
    old_b = old.learners[1]
    old.observe(TrialOutcome(3001, {"model": "b"}, "completed", {"accuracy": 0.5}, 1, 1, None))
    assert old_b.total_s == 6005.0
