"""Real CSVs: every column kind read, checked, fitted and exported (no Ray: the trainer is driven directly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sk_helpers import MakeTrial, run_all, table_splits

import automl
from automl.plugin import DataError, SpecError, Table, TrialError, check_table, load_csv

N = 300


def messy_frame(*, dates: bool = True) -> pd.DataFrame:
    """One column of every kind a real CSV has, and a target that depends on several of them."""
    rng = np.random.default_rng(0)
    size = rng.normal(size=N)
    colour = rng.choice(["red", "green", "blue"], N).astype(object)
    colour[rng.choice(N, 30, replace=False)] = None  # text with missing values
    frame = pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + N),  # integer ID: dropped
        "ref": [f"R{i:05d}" for i in rng.permutation(N)],  # string ID: dropped
        "size": size,
        "colour": colour,
        "city": [f"city{i}" for i in rng.integers(0, 120, N)],  # high cardinality
        "member": rng.choice([True, False], N),  # booleans
        "newsletter": rng.choice(["True", "False", ""], N),  # booleans with missing values
        "answer": rng.choice(["yes", "no"], N),  # words: a category
        "weight": [str(round(v, 2)) for v in rng.normal(70, 10, N)],  # numbers as text, with junk below
        "comment": [f"the customer wrote message {i} about the order" for i in range(N)],  # free text: dropped
    })
    frame.loc[[5, 17], "weight"] = "?"
    if dates:
        frame["signup"] = pd.date_range("2020-01-01", periods=N, freq="3D").strftime("%Y-%m-%d")
        frame.loc[7, "signup"] = ""
    score = size + (frame["colour"] == "red") + frame["member"] * 0.5
    frame["label"] = np.where(score > 0.5, "good", "bad")
    return frame


def read(tmp_path: Path, frame: pd.DataFrame) -> Table:
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    table = load_csv({"path": path, "target": "label"})
    check_table(table, "classification")
    return table


def test_every_column_kind_is_read_and_noted(tmp_path: Path) -> None:
    table = read(tmp_path, messy_frame())
    X = table.X
    assert "customer_id" not in X and "ref" not in X and "comment" not in X
    assert pd.api.types.is_datetime64_any_dtype(X["signup"]) and X["signup"].isna().sum() == 1
    assert X["newsletter"].dtype == float and set(X["newsletter"].dropna()) == {0.0, 1.0}
    assert X["weight"].dtype == float and X["weight"].isna().sum() == 2
    assert X["member"].dtype == bool and not pd.api.types.is_numeric_dtype(X["answer"])
    notes = "\n".join(table.notes)
    for column in ("customer_id", "ref", "comment", "signup", "newsletter", "weight", "city"):
        assert f"'{column}'" in notes


@pytest.mark.parametrize("dates, suffix", [(False, ".onnx"), (True, ".skops")])
def test_fit_export_and_the_export_predicts_the_same(tmp_path: Path, make_trial: MakeTrial, dates: bool,
                                                     suffix: str) -> None:
    data = table_splits(read(tmp_path, messy_frame(dates=dates)), "classification")
    trainer = make_trial({"model": "forest", "n_estimators": 20}, {"export": "auto"}, data=data)
    run_all(trainer)
    assert trainer.evaluate("valid")["accuracy"] > 0.6
    # High cardinality stays bounded: 120 cities take MAX_CATEGORIES one-hot columns, not 120.
    from automl_sklearn.preprocess import MAX_CATEGORIES

    width = trainer.pipeline_.named_steps["prep"].transform(data.valid.X).shape[1]
    assert width <= 3 + MAX_CATEGORIES + 4 + 2 + 2 + (5 if dates else 0)
    # ONNX where skl2onnx converts the preprocessing (a missing string is a category of its own);
    # date features have no ONNX converter, so that table falls back to skops.
    path = trainer.export(trainer.context.trial_dir)
    assert path.suffix == suffix
    unseen = data.test.X.copy()
    unseen.loc[unseen.index[:5], "city"] = "atlantis"  # never seen in training
    np.testing.assert_array_equal(trainer.load_predictor(path)(unseen), trainer.pipeline_.predict(unseen))


def test_onnx_export_of_dates_fails_with_the_reason(tmp_path: Path, make_trial: MakeTrial) -> None:
    data = table_splits(read(tmp_path, messy_frame()), "classification")
    trainer = make_trial({"model": "tree"}, {"export": "onnx"}, data=data)
    run_all(trainer)
    with pytest.raises(TrialError, match="DateFeatures|export: onnx"):
        trainer.export(trainer.context.trial_dir)


def test_validate_notes_and_refusals_name_the_column(tmp_path: Path) -> None:
    messy_frame().to_csv(tmp_path / "rows.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: classification\ndata: {csv: rows.csv, target: label}\ntrainer: {name: sklearn}\n"
                    "space: {model: {type: choice, values: [tree]}}\n")
    plan = automl.validate(spec)
    assert any("'customer_id'" in note and "dropped" in note for note in plan.notes)

    frame = messy_frame()
    frame["empty"] = np.nan
    frame.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(DataError, match="'empty'"):
        automl.validate(spec)

    (tmp_path / "rows.csv").write_text("a,b,a,label\n" + "1,2,3,x\n" * 20)
    with pytest.raises(SpecError, match=r"duplicate column names: 'a' at columns 1, 3"):
        automl.validate(spec)

    pd.DataFrame({"label": ["x", "y"] * 10}).to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(SpecError, match="no feature column: its only column is the target 'label'"):
        automl.validate(spec)


def test_default_space_fits_a_real_csv(tmp_path: Path, make_trial: MakeTrial) -> None:
    """Every starting point of the default space trains and exports on the messy table."""
    from automl_sklearn.spaces import default_space

    from automl.plugin import summarize

    table = read(tmp_path, messy_frame())
    data = table_splits(table, "classification")
    proposal = default_space("classification", {}, summarize(table, "classification"))
    for number, config in enumerate(proposal.start):
        trainer = make_trial(config, data=data, number=number)
        run_all(trainer)
        path = trainer.export(trainer.context.trial_dir)
        np.testing.assert_array_equal(trainer.load_predictor(path)(data.test.X), trainer.pipeline_.predict(data.test.X))
