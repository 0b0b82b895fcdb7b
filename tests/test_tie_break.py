"""``Objective.tie_broken``: the value a searcher ranks on, ties of a coarse metric broken by a loss."""

from __future__ import annotations

import math

import pytest

from automl.plugin import Objective

ACCURACY = Objective("accuracy", "max")


def test_equal_accuracies_are_ordered_by_log_loss() -> None:
    better = ACCURACY.tie_broken({"accuracy": 0.7, "log_loss": 0.50})
    worse = ACCURACY.tie_broken({"accuracy": 0.7, "log_loss": 0.61})
    assert better is not None and worse is not None
    assert worse < better <= 0.7


@pytest.mark.parametrize("rows", [10, 750, 1_000_000])
def test_a_step_of_accuracy_is_never_reordered(rows: int) -> None:
    # One more row right out of ``rows`` beats any log loss, even an infinite-looking one.
    higher = ACCURACY.tie_broken({"accuracy": 0.5 + 1 / rows, "log_loss": 1e9})
    lower = ACCURACY.tie_broken({"accuracy": 0.5, "log_loss": 0.0})
    assert higher is not None and lower is not None and higher > lower


def test_a_minimised_objective_moves_up_and_rmse_breaks_ties_without_log_loss() -> None:
    mae = Objective("mae", "min")
    assert mae.tie_broken({"mae": 2.0, "rmse": 3.0}) > mae.tie_broken({"mae": 2.0, "rmse": 1.0}) > 2.0


def test_the_objective_itself_and_missing_or_odd_values() -> None:
    assert Objective("log_loss", "min").tie_broken({"log_loss": 0.4}) == 0.4  # not broken by itself
    assert ACCURACY.tie_broken({"accuracy": 0.8}) == 0.8  # nothing to break ties with
    assert ACCURACY.tie_broken({"log_loss": 0.3}) is None
    assert ACCURACY.tie_broken({"accuracy": math.nan, "log_loss": 0.3}) is None
    assert ACCURACY.tie_broken({"accuracy": 0.8, "log_loss": math.inf}) == 0.8
    assert ACCURACY.tie_broken({"accuracy": True}) is None
