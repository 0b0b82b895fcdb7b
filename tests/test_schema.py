"""``automl schema``: the spec's JSON Schema with the installed plugins' names and options."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from automl.cli import run as cli
from automl.schema import plugin_schema

ROOT = Path(__file__).resolve().parents[1]


def _schema(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert cli([*args, "schema"] if args and args[0].startswith("--disable") else ["schema", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_names_from_installed_plugins_are_enums(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("automl_optuna")
    schema = _schema(capsys)
    defs = schema["$defs"]
    searcher = defs["SearcherSection"]["properties"]["name"]
    assert "tpe" in searcher["enum"] and "random" in searcher["enum"]  # a plugin's and a built-in one
    described = dict(zip(searcher["enum"], searcher["enumDescriptions"], strict=True))
    assert described["tpe"].endswith("(automl-optuna)")
    assert "function" in defs["TrainerSection"]["properties"]["name"]["enum"]
    assert "fifo" in defs["SchedulerSection"]["properties"]["name"]["enum"]
    dataset = next(a for a in defs["DataSection"]["properties"]["dataset"]["anyOf"] if a.get("type") == "string")
    assert "csv" in dataset["enum"]


def test_a_third_party_plugin_name_appears(fixture_plugins: Callable[..., object],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fixture_plugins("extra-searcher")  # installed through a real entry point (tests/conftest.py)
    searcher = _schema(capsys)["$defs"]["SearcherSection"]["properties"]["name"]
    described = dict(zip(searcher["enum"], searcher["enumDescriptions"], strict=True))
    assert described["fixture-random"] == "random draws (test fixture) (fixture-extra-searcher)"


def test_a_disabled_plugin_leaves_the_enums(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("automl_optuna")
    names = _schema(capsys, "--disable-plugin", "optuna")["$defs"]["SearcherSection"]["properties"]["name"]["enum"]
    assert "tpe" not in names and "random" in names


def test_options_are_listed_per_name(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("automl_optuna")
    schema = _schema(capsys)
    cases = {c["if"]["properties"]["name"]["const"]: c["then"]["properties"]["options"]
             for c in schema["$defs"]["SearcherSection"]["allOf"]}
    assert "n_startup_trials" in cases["tpe"]["properties"]
    assert cases["grid"]["properties"]["shuffle"] == {"default": False}
    good = {"name": "s", "trainer": {"name": "function", "params": {"function": "m:f"}},
            "space": {"x": {"type": "float", "low": 0, "high": 1}},
            "searcher": {"name": "tpe", "options": {"n_startup_trials": 3}}}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError, match="n_startup"):
        jsonschema.validate({**good, "searcher": {"name": "tpe", "options": {"n_startup": 3}}}, schema)
    with pytest.raises(jsonschema.ValidationError, match="'nope' is not one of"):
        jsonschema.validate({**good, "searcher": {"name": "nope"}}, schema)


def test_every_example_spec_validates_against_the_schema() -> None:
    schema = plugin_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted((ROOT / "searchspaces").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_no_plugins_gives_the_shape_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert "enum" not in _schema(capsys, "--no-plugins")["$defs"]["SearcherSection"]["properties"]["name"]
