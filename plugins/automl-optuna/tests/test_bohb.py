"""The bohb searcher: one study per budget, the model on the highest budget with enough results."""

from __future__ import annotations

import statistics

import pytest
from automl_optuna.bohb import BOHBSearcher

from automl.plugin import Float, Objective, RungResult, SearchSpace, TrialOutcome

SPACE = SearchSpace([Float("x", low=0.0, high=1.0), Float("y", low=0.0, high=1.0)])


def loss(config: dict, budget: int) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2 + 1.0 / budget


def test_the_model_moves_to_the_highest_budget_with_enough_results() -> None:
    searcher = BOHBSearcher(SPACE, [Objective("loss", "min")], seed=0, min_points=4)
    assert searcher.model_budget() is None
    for n in range(6):
        config = searcher.suggest(n)
        assert config is not None
        searcher.observe_rung(RungResult(n, config, 1, {"loss": loss(config, 1)}, 9))
        searcher.observe_rung(RungResult(n, config, 1, {"loss": 0.0}, 9))  # told twice: recorded once
        if n < 4:
            searcher.observe_rung(RungResult(n, config, 3, {"loss": loss(config, 3)}, 9))
            searcher.observe(TrialOutcome(n, config, "completed", {"loss": loss(config, 9)}, 9, 9))
        else:
            searcher.observe(TrialOutcome(n, config, "stopped", {"loss": loss(config, 1)}, 1, 9))
    assert searcher._counts == {1: 6, 3: 4, 9: 4}
    assert searcher.model_budget() == 9
    # A stopped trial never counts at the full budget, and no trial stays running in a model's study.
    assert all(t.state.is_finished() for study in searcher._models.values() for t in study.trials)


def test_several_objectives_share_each_budgets_study_and_a_missing_one_is_not_recorded() -> None:
    objectives = [Objective("loss", "min"), Objective("score", "max")]
    searcher = BOHBSearcher(SPACE, objectives, seed=1, min_points=2)
    for n in range(4):
        config = searcher.suggest(n)
        assert config is not None
        searcher.observe_rung(RungResult(n, config, 1, {"loss": loss(config, 1), "score": config["x"]}, 3))
        searcher.observe_rung(RungResult(n, config, 2, {"loss": loss(config, 2)}, 3))  # no score: not recorded
    assert searcher._counts == {1: 4}
    assert len(searcher._models[1].directions) == 2 and searcher.model_budget() == 1
    assert SPACE.contains(searcher.suggest(4) or {})


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="random_fraction"):
        BOHBSearcher(SPACE, [Objective("loss", "min")], random_fraction=1.5)
    with pytest.raises(ValueError, match="min_points"):
        BOHBSearcher(SPACE, [Objective("loss", "min")], min_points=0)
    assert BOHBSearcher(SPACE, [Objective("loss", "min")]).min_points == 10


def test_a_gaussian_process_per_budget_proposes_near_the_low_budget_optimum() -> None:
    searcher = BOHBSearcher(SPACE, [Objective("loss", "min")], seed=0, min_points=8, random_fraction=0.0,
                            model="gp")
    drawn = []
    for n in range(8):  # no budget has enough results yet: drawn at random
        config = searcher.suggest(n)
        assert config is not None
        drawn.append(config)
        searcher.observe_rung(RungResult(n, config, 1, {"loss": loss(config, 1)}, 9))
        searcher.observe(TrialOutcome(n, config, "stopped", {"loss": loss(config, 1)}, 1, 9))
    assert searcher.model_budget() == 1
    assert type(searcher._models[1].sampler).__name__ == "GPSampler"
    proposed = []
    for n in range(8, 16):
        config = searcher.suggest(n)
        assert config is not None and SPACE.contains(config)
        assert searcher._source[n] == 1  # the budget-1 GP proposed it
        proposed.append(config)
        searcher.observe_rung(RungResult(n, config, 1, {"loss": loss(config, 1)}, 9))
    # The GP's proposals sit far nearer the optimum (0.3, 0.7) than the random ones it learnt from (on seeds 0-7
    # the median squared distance was 0.06-0.43 for the random draws, 0.0002-0.002 for the proposals).
    def median_distance(configs: list[dict]) -> float:
        return statistics.median((c["x"] - 0.3) ** 2 + (c["y"] - 0.7) ** 2 for c in configs)
    assert median_distance(proposed) < median_distance(drawn) / 10


def test_the_model_option_is_checked_and_an_older_searcher_keeps_tpe() -> None:
    with pytest.raises(ValueError, match="model must be one of tpe, gp, got 'kde'"):
        BOHBSearcher(SPACE, [Objective("loss", "min")], model="kde")
    searcher = BOHBSearcher(SPACE, [Objective("loss", "min")], seed=0, min_points=2)
    del searcher.__dict__["model"]  # as a searcher pickled before the option existed
    for n in range(3):
        config = searcher.suggest(n)
        assert config is not None
        searcher.observe_rung(RungResult(n, config, 1, {"loss": loss(config, 1)}, 9))
    assert type(searcher._models[1].sampler).__name__ == "TPESampler"
