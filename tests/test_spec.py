from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from automl.errors import SpecError
from automl.spec import load_spec, parse_duration, spec_json_schema

GOOD = """
task: classification
data: {dataset: iris}
trainer: {name: sklearn}
space:
  model: {type: choice, values: [knn, tree]}
  n_neighbors: {type: int, low: 1, high: 10, when: {model: knn}}
objectives:
  - {metric: accuracy, mode: max}
  - {metric: latency_ms, mode: min}
constraints: ["latency_ms <= 5"]
budget: {trials: 4, wall_time: 10m}
"""


def error_of(write_spec: Callable[[str], Path], text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        automl.validate(write_spec(text))
    return info.value


def test_a_good_spec_validates_into_a_plan(write_spec: Callable[[str], Path]) -> None:
    plan = automl.validate(write_spec(GOOD))
    assert [o.metric for o in plan.objectives] == ["accuracy", "latency_ms"]
    assert plan.spec.budget.wall_time == 600
    assert plan.measured
    assert str(plan.constraints[0]) == "latency_ms <= 5"


def test_missing_file() -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec("/nonexistent/spec.yaml")


def test_yaml_syntax_error_has_line_and_column(write_spec: Callable[[str], Path]) -> None:
    err = error_of(write_spec, "task: classification\nspace: [1, 2\n")
    assert err.line == 3 and err.column is not None
    assert "YAML syntax error" in str(err)


def test_misspelled_key_has_field_line_and_suggestion(write_spec: Callable[[str], Path]) -> None:
    err = error_of(write_spec, GOOD.replace("budget: {trials: 4", "budget: {trails: 4"))
    assert err.field == "budget.trails"
    assert err.line == 11
    assert "did you mean 'trials'" in str(err)


def test_misspelled_parameter_key_suggests_within_the_parameter_type(write_spec: Callable[[str], Path]) -> None:
    err = error_of(write_spec, GOOD.replace("low: 1, high: 10", "low: 1, hihg: 10"))
    assert err.field == "space.n_neighbors.hihg"
    assert "did you mean 'high'" in str(err)


@pytest.mark.parametrize(
    "old, new, field, words",
    [
        ("low: 1, high: 10", "low: 10, high: 1", "space.n_neighbors", "greater than high"),
        ("{trials: 4", "{trials: -2", "budget.trials", "greater than 0"),
        ("values: [knn, tree]}", "values: [knn, tree]}\n  C: {type: float, low: 0, high: 1, log: true}", "space.C",
         "log scale needs low > 0"),
        ("mode: max}", "}", "objectives[0].mode", "required"),
        ("wall_time: 10m", "wall_time: soon", "budget.wall_time", "not a duration"),
        ('"latency_ms <= 5"', '"latency_ms is small"', "constraints", "not a constraint"),
        ("type: choice", "type: category", "space.model", "float, int or choice"),
    ],
)
def test_wrong_type_or_range_points_at_the_field(
    write_spec: Callable[[str], Path], old: str, new: str, field: str, words: str
) -> None:
    assert old in GOOD
    err = error_of(write_spec, GOOD.replace(old, new, 1))
    assert err.field is not None and err.field.startswith(field)
    assert words in str(err)
    assert err.line is not None


@pytest.mark.parametrize(
    "old, new, field, words",
    [
        ("name: sklearn", "name: sklaern", "trainer.name", "Did you mean 'sklearn'"),
        ("trainer: {name: sklearn}", "trainer: {name: xgboost}", "trainer.name", "pip install automl-xgboost"),
        ("dataset: iris", "dataset: mnist", "data.dataset", "available:"),
        ("metric: accuracy", "metric: auc_roc", "objectives[0].metric", "it reports:"),
        ('"latency_ms <= 5"', '"memory_mb <= 5"', "constraints[0]", "does not report"),
        ("n_neighbors: {type", "n_neigbours: {type", "space.n_neigbours", "is not a parameter of any model"),
    ],
)
def test_names_the_plugins_do_not_know_are_refused(
    write_spec: Callable[[str], Path], old: str, new: str, field: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automl import plugins

    # A first-party name whose package is not installed here.
    monkeypatch.setitem(plugins.KNOWN_PROVIDERS["trainer"], "xgboost", "automl-xgboost")
    err = error_of(write_spec, GOOD.replace(old, new, 1))
    assert err.field == field
    assert words in str(err)


def test_unknown_searcher_option_lists_the_valid_ones(write_spec: Callable[[str], Path]) -> None:
    err = error_of(write_spec, GOOD + "searcher: {name: grid, options: {shufle: true}}\n")
    assert err.field == "searcher.options.shufle"
    assert "valid options: shuffle" in str(err)


def test_grid_over_a_continuous_float_is_refused_before_the_run(write_spec: Callable[[str], Path]) -> None:
    text = GOOD.replace("values: [knn, tree]}", "values: [linear]}\n  C: {type: float, low: 0.1, high: 1}")
    text = text.replace("  n_neighbors: {type: int, low: 1, high: 10, when: {model: knn}}\n", "")
    err = error_of(write_spec, text + "searcher: {name: grid}\n")
    assert "'C' has no finite grid" in str(err)


def test_missing_csv_column_and_file(write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a,b,label\n1,2,x\n")
    text = GOOD.replace("data: {dataset: iris}", "data: {csv: rows.csv, target: lable}")
    err = error_of(write_spec, text)
    assert err.field == "data.csv" and "no column 'lable'" in str(err) and "label" in str(err)
    err = error_of(write_spec, GOOD.replace("data: {dataset: iris}", "data: {csv: missing.csv, target: y}"))
    assert "does not exist" in str(err)


def test_spec_must_be_a_mapping(write_spec: Callable[[str], Path]) -> None:
    assert "YAML mapping" in str(error_of(write_spec, "- just\n- a list\n"))


def test_several_errors_are_all_listed(write_spec: Callable[[str], Path]) -> None:
    err = error_of(write_spec, GOOD.replace("{trials: 4", "{trials: 0").replace("low: 1, high: 10", "low: 5, high: 1"))
    assert "also" in str(err)


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2h") == 7200 and parse_duration(5) == 5
    with pytest.raises(ValueError):
        parse_duration("-1m")


def test_json_schema_describes_every_top_level_field() -> None:
    schema = spec_json_schema()
    json.dumps(schema)
    assert {"task", "data", "trainer", "searcher", "space", "objectives", "budget", "resources"} <= set(schema["properties"])


def test_import_paths_resolve_with_one_clear_message() -> None:
    from automl.importpath import import_callable

    assert import_callable("json:dumps") is import_callable("json.dumps")
    assert import_callable("os.path:join").__name__ == "join"
    for path, words in [("nodots", "write an import path"), ("no_such_mod_xyz:f", "cannot import module"),
                        ("json:lods", "did you mean 'loads'"), ("math:pi", "is a float, not a function")]:
        with pytest.raises(ValueError, match=words):
            import_callable(path, what="function")
