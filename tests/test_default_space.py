"""A spec without `space:`: the trainer's default space, its starting points, and the data behind it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import automl
from automl.cli import run as cli
from automl.data import DataSummary, Table, check_table, load_csv, summarize
from automl.errors import DataError, SpecError

AUTO = """
task: {task}
data: {{dataset: {dataset}}}
trainer: {{name: sklearn}}
{extra}
"""


def auto_spec(write_spec: Callable[..., Path], task: str = "classification", dataset: str = "breast_cancer",
              extra: str = "") -> Path:
    return write_spec(AUTO.format(task=task, dataset=dataset, extra=extra))


@pytest.mark.parametrize("task, dataset, metric", [("classification", "breast_cancer", "accuracy"),
                                                   ("regression", "diabetes", "r2")])
def test_default_space_for_both_tasks(write_spec: Callable[..., Path], task: str, dataset: str, metric: str) -> None:
    plan = automl.validate(auto_spec(write_spec, task, dataset))
    assert plan.space_source == "trainer"
    models = list(plan.space["model"].values)
    assert {"forest", "extra_trees", "linear", "knn"} <= set(models)
    # QDA classifies only; it comes last, after the models whose order follows FLAML's costs.
    assert (models[-1] == "qda") == (task == "classification") and ("qda" in models) == (task == "classification")
    assert not {"voting", "stacking", "bagging"} & set(models)  # still searchable, just not by default
    # Every model's parameters exist only under that model.
    assert all(p.when == {"model": (name.split("__")[0],)} for name, p in plan.space.items() if name != "model")
    # The objective defaults to the trainer's first metric.
    assert [(o.metric, o.mode) for o in plan.objectives] == [(metric, "max")]
    # One starting point per model, cheapest first, each a complete config of the space.
    assert [c["model"] for c in plan.start] == models
    assert all(plan.space.contains(c) for c in plan.start)
    forest = next(c for c in plan.start if c["model"] == "forest")
    assert forest["forest__n_estimators"] == 4 and forest["forest__max_leaf_nodes"] == 4
    assert plan.summary is not None and plan.summary.rows == len(plan.load_table().y)


def test_space_auto_is_the_default_and_ranges_follow_the_rows(write_spec: Callable[..., Path]) -> None:
    auto = automl.validate(auto_spec(write_spec, extra="space: auto"))
    assert auto.space_source == "trainer" and list(auto.space) == list(automl.validate(auto_spec(write_spec)).space)
    rows = auto.summary.rows
    assert auto.space["forest__n_estimators"].high == min(2048, rows)
    assert auto.space["knn__n_neighbors"].high == rows // 2


def test_a_spec_with_a_space_has_no_starting_points(write_spec: Callable[..., Path]) -> None:
    plan = automl.validate(auto_spec(write_spec, extra="space: {model: {type: choice, values: [tree]}}"))
    assert plan.space_source == "spec" and plan.start == [] and plan.summary is None


def test_boosting_models_come_first_when_installed(write_spec: Callable[..., Path]) -> None:
    from automl_sklearn import models

    plan = automl.validate(auto_spec(write_spec))
    present = [m for m in ("lgbm", "xgboost") if m in models.MODELS and m not in getattr(models, "MISSING", {})]
    assert list(plan.space["model"].values)[: len(present)] == present


def test_a_missing_library_leaves_its_model_out_with_a_note(write_spec: Callable[..., Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_sklearn import models

    monkeypatch.setattr(models, "MISSING", {**getattr(models, "MISSING", {}), "forest": "pip install imaginary-forest"},
                        raising=False)
    plan = automl.validate(auto_spec(write_spec))
    assert "forest" not in plan.space["model"].values and "forest__n_estimators" not in plan.space
    assert all(c["model"] != "forest" for c in plan.start)
    assert any("'forest'" in note and "pip install imaginary-forest" in note for note in plan.notes)


def test_the_trainer_description_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_sklearn import models, plugin

    monkeypatch.setattr(models, "MISSING", {"lgbm": "pip install lightgbm"}, raising=False)
    assert "not available: lgbm (pip install lightgbm)" in plugin._description()
    monkeypatch.setattr(models, "MISSING", {}, raising=False)
    assert "not available" not in plugin._description()


def test_knn_only_on_small_data() -> None:
    from automl_sklearn.spaces import SMALL_ROWS, default_space

    small = default_space("classification", {}, DataSummary(rows=500, columns=4, classes=2))
    large = default_space("classification", {}, DataSummary(rows=SMALL_ROWS + 1, columns=4, classes=2))
    assert "knn" in small.space["model"]["values"] and "knn" not in large.space["model"]["values"]
    assert any("knn" in note for note in large.notes)


def test_a_fixed_model_gets_its_own_parameters_only(write_spec: Callable[..., Path]) -> None:
    def fixed(model: str) -> Path:
        return write_spec(AUTO.format(task="classification", dataset="iris", extra="").replace(
            "{name: sklearn}", f"{{name: sklearn, params: {{model: {model}}}}}"))

    plan = automl.validate(fixed("extra_trees"))
    assert "model" not in plan.space and all(n.startswith("extra_trees__") for n in plan.space)
    assert len(plan.start) == 1 and plan.space.contains(plan.start[0])
    with pytest.raises(SpecError, match="no default space"):
        automl.validate(fixed("svm"))


def test_a_trainer_without_a_default_space_names_space_and_trainer(write_spec: Callable[..., Path]) -> None:
    path = write_spec("trainer: {name: function, params: {function: 'math:sqrt'}}\n"
                      "objectives: [{metric: loss, mode: min}]\n")
    with pytest.raises(SpecError) as info:
        automl.validate(path)
    assert info.value.field == "space" and "'function'" in str(info.value) and "default space" in str(info.value)


@pytest.mark.parametrize("space, words", [("space: {}", "space is empty"), ("space: everything", "or `auto`")])
def test_an_empty_or_misspelled_space_is_refused(write_spec: Callable[..., Path], space: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        automl.validate(auto_spec(write_spec, extra=space))


def test_validate_prints_the_default_space(write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["validate", str(auto_spec(write_spec))]) == 0
    out = capsys.readouterr().out
    assert "space (trainer sklearn):" in out
    assert "forest__n_estimators: int 4.." in out and "(when model=forest)" in out
    assert "starting points: " in out
    given = auto_spec(write_spec, extra="space: {model: {type: choice, values: [tree]}}")
    assert cli(["validate", str(given)]) == 0
    assert "space (" not in capsys.readouterr().out  # the spec's own space is printed only on request
    assert cli(["validate", "--show-space", str(given)]) == 0
    assert "model: choice [tree]" in capsys.readouterr().out


# -- the data behind it ---------------------------------------------------------------


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "colour": rng.choice(["red", "blue"], n),
                         "label": rng.choice(["a", "b"], n)})


def test_a_csv_with_duplicate_columns_is_refused_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("x,colour,x,label\n" + "\n".join(f"{i},red,{i},{'ab'[i % 2]}" for i in range(20)) + "\n")
    with pytest.raises(ValueError, match=r"duplicate column names: 'x' at columns 1, 3 \(pandas would rename"):
        load_csv({"path": path, "target": "label"})
    frame = _frame()
    with pytest.raises(DataError, match=r"duplicate column names \['x'\]"):
        check_table(Table(pd.concat([frame[["x"]], frame[["x", "colour"]]], axis=1), frame["label"], "t"),
                    "classification")


def test_a_table_without_feature_columns_is_refused(tmp_path: Path) -> None:
    frame = _frame()
    with pytest.raises(DataError, match="no feature column: only the target 'label'"):
        check_table(Table(frame[[]], frame["label"], "t"), "classification")
    with pytest.raises(DataError, match=r"no usable feature column: \['key'\]"):
        check_table(Table(pd.DataFrame({"key": [f"k{i}" for i in range(60)]}), frame["label"], "t"), "classification")


def test_summary_counts_the_column_kinds(tmp_path: Path) -> None:
    frame = _frame()
    frame["city"] = [f"c{i % 55}" for i in range(len(frame))]
    frame["day"] = pd.date_range("2024-01-01", periods=len(frame)).strftime("%Y-%m-%d")
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = load_csv({"path": tmp_path / "t.csv", "target": "label"})
    check_table(table, "classification")
    summary = summarize(table, "classification")
    assert summary == DataSummary(rows=60, columns=4, numeric=("x",), categorical=("colour",),
                                  high_cardinality=("city",), datetime=("day",), classes=2)


def test_the_shipped_tabular_auto_spec_validates() -> None:
    plan = automl.validate(Path(__file__).resolve().parents[1] / "searchspaces" / "tabular-auto.yaml")
    assert plan.space_source == "trainer" and plan.start
    notes = "\n".join(plan.notes)
    for column in ("customer_id", "last_message", "signup", "monthly_spend", "newsletter", "country"):
        assert f"'{column}'" in notes


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_search_without_space_or_objectives(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = auto_spec(write_spec, dataset="iris", extra="budget: {trials: 4}\nensemble: {enabled: false}")
    models = set(automl.validate(path).space["model"].values)
    run = automl.search(path, out=tmp_path / "run")
    trials = run.trials()
    assert len(trials) == 4 and all(t["status"] == "completed" for t in trials), [t.get("error") for t in trials]
    assert all(t["config"]["model"] in models and "accuracy" in t["metrics"] for t in trials)
    assert [o.metric for o in run.objectives()] == ["accuracy"]


def test_automl_plugins_says_which_models_lack_their_library(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from automl_sklearn import models

    from automl import plugins as registry

    monkeypatch.setattr(models, "MISSING", {"lgbm": "pip install lightgbm"}, raising=False)
    monkeypatch.setattr(registry, "_default", {})  # a fresh manager asks the trainers again
    assert cli(["plugins"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "trainer sklearn: scikit-learn pipelines" in out
    assert "not available: lgbm (pip install lightgbm)" in out
