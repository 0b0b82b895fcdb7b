"""Bad input refused before any trial starts: spec values checked by scikit-learn, and bad data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import automl
from automl.plugin import AutoMLError, DataError, SpecError, cli

ROOT = Path(__file__).resolve().parents[3]
WriteSpec = Callable[..., Path]

HEAD = """\
task: classification
data: {dataset: iris}
trainer: {name: sklearn}
objectives: [{metric: accuracy, mode: max}]
"""


@pytest.mark.parametrize("name", ["quickstart", "tabular-classification", "tabular-regression"])
def test_shipped_specs_validate(name: str) -> None:
    plan = automl.validate(ROOT / "searchspaces" / f"{name}.yaml")
    assert plan.trainer.name == "sklearn"


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("C: {type: float, low: -1, high: 10, when: {model: svm}}",
         "space.C: low -1.0 is not valid for model 'svm': The 'C' parameter of SVC must be a float in the range (0.0, inf]"),
        ("svm__kernel: {type: choice, values: [rbf, cubic]}", "space.svm__kernel: value 'cubic' is not valid for model 'svm'"),
        ("n_estimators: {type: int, low: 0, high: 50}", "low 0 is not valid for model 'forest'"),
        ("hidden_units: {type: int, low: 0, high: 8}", "hidden_layers and hidden_units must be >= 1"),
        ("linear__l1_ratio: {type: float, low: 0, high: 2}", "high 2.0 is not valid for model 'linear'"),
        ("meta__C: {type: float, low: 0, high: 1}", "space.meta__C: low 0.0 is not valid for model 'linear'"),
        ("members: {type: choice, values: [forest+svm, forest+gbm]}", "members 'gbm': unknown model"),
        ("members: {type: choice, values: [forest+voting]}", "an ensemble cannot be a member"),
        ("scale: {type: choice, values: [standard, zscore]}", "'zscore' is not a scaler"),
        ("steps: {type: int, low: 1, high: 3}", "steps is a fixed setting"),
        ("n_neighbours: {type: int, low: 1, high: 5}", "'n_neighbours' is not a parameter of any model it can reach"),
        ("forest__gamma: {type: float, low: 0.1, high: 1}", "model 'forest' has no parameter 'gamma'"),
    ],
)
def test_out_of_range_or_unknown_values_are_refused_at_plan_time(
    write_spec: WriteSpec, space: str, message: str
) -> None:
    models = "[linear, svm, forest, knn, mlp, voting, stacking]"
    path = write_spec(HEAD + f"space:\n  model: {{type: choice, values: {models}}}\n  {space}\n")
    with pytest.raises(SpecError) as err:
        automl.validate(path)
    assert message in str(err.value)
    assert err.value.line is not None  # the message points into the file


def test_cli_validate_exits_2_with_the_message(write_spec: WriteSpec, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(HEAD + "space:\n  model: {type: choice, values: [svm]}\n  C: {type: float, low: -1, high: 1}\n")
    assert cli(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "The 'C' parameter of SVC" in err and "Traceback" not in err


def test_class_weight_is_refused_for_regression(write_spec: WriteSpec) -> None:
    text = HEAD.replace("classification", "regression").replace("iris", "diabetes").replace("accuracy", "r2")
    path = write_spec(text + "space:\n  model: {type: choice, values: [forest]}\n"
                             "  class_weight: {type: choice, values: [null, balanced]}\n")
    with pytest.raises(SpecError, match="class_weight is for classification"):
        automl.validate(path)


# -- bad data ------------------------------------------------------------------------------


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": rng.choice(["x", "y"], n)})


def _data_spec(write_spec: WriteSpec, data: str, task: str = "classification", metric: str = "accuracy") -> Path:
    return write_spec(
        f"task: {task}\ndata: {data}\ntrainer: {{name: sklearn, params: {{model: tree}}}}\n"
        f"space: {{max_depth: {{type: int, low: 1, high: 3}}}}\nobjectives: [{{metric: {metric}, mode: max}}]\n"
        "budget: {trials: 2}\n"
    )


BAD_DATA = {
    "missing target column": (lambda f: f, "{csv: rows.csv, target: lable}", "classification", "no column 'lable'"),
    "missing parquet column": (lambda f: f, "{parquet: rows.parquet, target: lable}", "classification", "no column 'lable'"),
    "non-numeric regression target": (lambda f: f, "{csv: rows.csv, target: label}", "regression", "is not numeric"),
    "single class": (lambda f: f.assign(label="x"), "{csv: rows.csv, target: label}", "classification", "single class"),
    "empty column": (lambda f: f.assign(b=np.nan), "{csv: rows.csv, target: label}", "classification", "entirely empty"),
    "more folds than rows of a class": (
        lambda f: f.assign(label=["rare"] * 4 + ["x"] * (len(f) - 4)), "{csv: rows.csv, target: label, folds: 5}",
        "classification", "fewer than 5 rows of class(es) 'rare': 3",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_refused_by_validate_and_the_cli(
    write_spec: WriteSpec, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    change, data, task, message = BAD_DATA[case]
    frame = change(_frame())
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    path = _data_spec(write_spec, data, task, "r2" if task == "regression" else "accuracy")
    with pytest.raises((SpecError, DataError)) as err:
        automl.validate(path)
    assert message in str(err.value)
    assert cli(["validate", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_bad_data_stops_a_search_before_any_trial(write_spec: WriteSpec, tmp_path: Path) -> None:
    _frame().assign(b=np.nan).to_csv(tmp_path / "rows.csv", index=False)
    path = _data_spec(write_spec, "{csv: rows.csv, target: label}")
    with pytest.raises(AutoMLError, match="entirely empty"):
        automl.search(path, out=tmp_path / "run")
    assert not (tmp_path / "run" / "trials").exists()


def test_parquet_source_loads_and_splits(write_spec: WriteSpec, tmp_path: Path) -> None:
    frame = _frame(90)
    frame.to_parquet(tmp_path / "rows.parquet")
    plan = automl.validate(_data_spec(write_spec, "{parquet: rows.parquet, target: label, folds: 3}"))
    data = plan.load_data()
    assert data.folds == 3 and list(data.train.X.columns) == ["a", "b"]
    assert len(data.train) + len(data.valid) + len(data.test) == 90
