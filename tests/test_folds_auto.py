"""``data.folds: auto``: k-fold cross-validation for tables small for the wall time, the split otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import automl
from automl.errors import SpecError
from automl.plan import AUTO_FOLDS_CELLS_PER_HOUR, AUTO_REPEATS, AUTO_REPEATS_MAX_ROWS

SPEC = """
task: {task}
data: {{{data}}}
trainer: {{name: {trainer}}}
{extra}
"""


def plan_for(write_spec: Callable[..., Path], *, task: str = "classification", data: str = "dataset: iris",
             trainer: str = "sklearn", extra: str = "budget: {wall_time: 60s}") -> automl.Plan:
    return automl.validate(write_spec(SPEC.format(task=task, data=data, trainer=trainer, extra=extra)))


def test_a_small_table_under_a_wall_time_is_cross_validated(write_spec: Callable[..., Path]) -> None:
    plan = plan_for(write_spec)
    assert plan.folds == 5
    assert any("5-fold cross-validation" in note for note in plan.notes)
    data = plan.load_data()
    assert data is not None and data.folds == 5


def test_without_a_wall_time_the_validation_split_stays(write_spec: Callable[..., Path]) -> None:
    plan = plan_for(write_spec, extra="budget: {trials: 5}")
    assert plan.folds == 0 and not any("folds" in note for note in plan.notes)


def test_a_table_large_for_the_wall_time_keeps_the_validation_split(write_spec: Callable[..., Path],
                                                                     tmp_path: Path) -> None:
    # 60 s allows 10M / 60 cells; this table has twice that many.
    cells = 2 * AUTO_FOLDS_CELLS_PER_HOUR * 60 // 3600
    rows, cols = cells // 20, 20
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, cols)), columns=[f"x{i}" for i in range(cols)])
    frame["y"] = rng.integers(0, 2, rows)
    frame.to_csv(tmp_path / "big.csv", index=False)
    plan = plan_for(write_spec, data=f"csv: {tmp_path / 'big.csv'}, target: y, test: 0")
    assert plan.folds == 0
    assert any("validation split" in note and "large" in note for note in plan.notes)
    # The same table under an hour's wall time is small enough.
    assert plan_for(write_spec, data=f"csv: {tmp_path / 'big.csv'}, target: y, test: 0",
                    extra="budget: {wall_time: 1h}").folds == 5


def test_a_rare_class_lowers_the_folds(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=100), "y": ["a"] * 97 + ["b"] * 3})
    frame.to_csv(tmp_path / "rare.csv", index=False)
    plan = plan_for(write_spec, data=f"csv: {tmp_path / 'rare.csv'}, target: y, test: 0")
    assert plan.folds == 3
    assert plan.load_data() is not None  # the split accepts the folds it was given


def test_explicit_folds_win(write_spec: Callable[..., Path]) -> None:
    assert plan_for(write_spec, data="dataset: iris, folds: 0").folds == 0
    assert plan_for(write_spec, data="dataset: iris, folds: 3").folds == 3
    assert plan_for(write_spec, data="dataset: iris, folds: null").folds == 0


def test_a_trainer_that_does_not_cross_validate_keeps_the_split(write_spec: Callable[..., Path]) -> None:
    pytest.importorskip("automl_torch")
    plan = plan_for(write_spec, data="dataset: digits", trainer="torch",
                    extra="budget: {wall_time: 60s}\nspace: {lr: {type: float, low: 0.001, high: 0.1, log: true}}")
    assert plan.folds == 0


@pytest.mark.parametrize("folds", ["1", "-2", "five"])
def test_a_bad_folds_value_names_the_field(write_spec: Callable[..., Path], folds: str) -> None:
    with pytest.raises(SpecError) as err:
        plan_for(write_spec, data=f"dataset: iris, folds: {folds}")
    assert "folds" in str(err.value)


def test_a_small_table_under_a_long_wall_time_repeats_its_folds(write_spec: Callable[..., Path]) -> None:
    plan = plan_for(write_spec, extra="budget: {wall_time: 300s}")
    assert (plan.folds, plan.repeats) == (5, AUTO_REPEATS)
    assert any(note.startswith(f"data.repeats auto: {AUTO_REPEATS} rounds") for note in plan.notes)
    data = plan.load_data()
    assert data is not None and (data.folds, data.repeats) == (5, AUTO_REPEATS)
    # Under a minute: one round, and no note about it.
    short = plan_for(write_spec)
    assert short.repeats == 1 and not any("repeats" in note for note in short.notes)
    # Given, it is taken as given; without folds there is nothing to repeat.
    assert plan_for(write_spec, data="dataset: iris, repeats: 2").repeats == 2
    assert plan_for(write_spec, data="dataset: iris, repeats: 1", extra="budget: {wall_time: 300s}").repeats == 1
    unfolded = plan_for(write_spec, data="dataset: iris, folds: 0", extra="budget: {wall_time: 300s}")
    assert unfolded.repeats == 1 and unfolded.load_data().repeats == 1  # type: ignore[union-attr]


def test_a_table_above_the_row_limit_keeps_one_round(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    rows = int(AUTO_REPEATS_MAX_ROWS * 1.2)
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=rows), "y": rng.integers(0, 2, rows)}).to_csv(tmp_path / "t.csv", index=False)
    plan = plan_for(write_spec, data=f"csv: {tmp_path / 't.csv'}, target: y, test: 0", extra="budget: {wall_time: 300s}")
    assert (plan.folds, plan.repeats) == (5, 1)


@pytest.mark.parametrize("repeats", ["0", "-1", "three"])
def test_a_bad_repeats_value_names_the_field(write_spec: Callable[..., Path], repeats: str) -> None:
    with pytest.raises(SpecError) as err:
        plan_for(write_spec, data=f"dataset: iris, repeats: {repeats}")
    assert "repeats" in str(err.value)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_resume_keeps_the_folds_its_run_started_with(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    """The wall time may change on resume; the folds ``auto`` chose must not (trials would not compare)."""
    text = SPEC.format(task="classification", data="dataset: iris, validation: 0.3, test: 0.2", trainer="sklearn",
                       extra="space: {model: {type: choice, values: [linear]}}\nensemble: {enabled: false}\n"
                             "budget: BUDGET")
    first = automl.search(write_spec(text.replace("BUDGET", "{trials: 2}")), out=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["folds"] == 0
    # Under a wall time a new run of this spec would cross-validate, 3 rounds; the resumed one keeps the split.
    timed = text.replace("BUDGET", "{trials: 3, wall_time: 1h}")
    assert (automl.validate(write_spec(timed)).folds, automl.validate(write_spec(timed)).repeats) == (5, 3)
    resumed = automl.search(write_spec(timed), out=tmp_path / "run", resume=True)
    rows = {t.number: t.metrics.get("train_rows") for t in resumed.trials() if t.status == "completed"}
    assert sorted(rows) == [0, 1, 2], [(t.number, t.status, t.error) for t in resumed.trials()]
    assert len(set(rows.values())) == 1, rows  # the third trial saw as many rows as the first two
    assert json.loads((tmp_path / "run" / "run.json").read_text())["folds"] == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["repeats"] == 1
    assert first.run_id == resumed.run_id
