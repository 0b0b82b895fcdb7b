"""Input limits of a spec (issue 17): the YAML loader's limits, finite numbers in range, linear validation,
and ``automl validate`` leaving user code unimported unless asked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import automl
from automl.cli import run as cli
from automl.errors import AutoMLError, SpecError
from automl.space import Choice, SearchSpace
from automl.spec import ChoiceParam, parse_spec
from automl.yaml_loader import YamlLimits, load_yaml

TRAINER = "trainer: {name: function, params: {function: 'json:dumps', metrics: {loss: min}}}\n"
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)


def _error(text: str, **kwargs: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "s.yaml", **kwargs)
    return info.value


def test_a_billion_laughs_is_refused_at_the_alias_that_expands_too_far() -> None:
    err = _error(TRAINER + LAUGHS)
    assert "expands (through its aliases) to more than 1,000,000 values" in err.message
    assert (err.file, err.line) == ("s.yaml", 7)  # `f:`, the first level past a million values


def test_the_alias_count_is_limited() -> None:
    err = _error(TRAINER + "a: &a 1\nb: [" + ", ".join(["*a"] * 6) + "]\n", limits=YamlLimits(max_aliases=5))
    assert "more than 5 aliases" in err.message and err.line == 3


@pytest.mark.parametrize("text, line", [
    ("a: &a [*a]\n", 1),
    ("searcher: &s\n  name: random\n  options: {again: *s}\n", 3),
])
def test_a_recursive_alias_is_one_error_at_the_alias(text: str, line: int) -> None:
    err = _error(TRAINER + text)
    assert "recursive alias" in err.message and err.line == line + 1


@pytest.mark.parametrize("text", [
    "x: " + "[" * 2000 + "]" * 2000 + "\n",
    "x:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(2000)),
    "".join(f"x{i}: &x{i} [[[[[[[[[[{'*x' + str(i - 1) if i else '1'}]]]]]]]]]]\n" for i in range(12)),
])
def test_deep_nesting_is_one_error_not_a_recursion_error(text: str) -> None:
    err = _error(TRAINER + text)
    assert "nest" in err.message and err.line is not None


def test_a_duplicate_key_names_both_lines() -> None:
    err = _error(TRAINER + "budget:\n  trials: 5\n  trials: 500\n")
    assert (err.line, err.column) == (4, 3)
    assert "duplicate key 'trials': also at line 3" in err.message


def test_a_merge_may_override_the_keys_it_brings_in() -> None:
    spec = parse_spec(TRAINER + "budget:\n  <<: {trials: 5, max_failures: 1}\n  trials: 7\n")
    assert (spec.budget.trials, spec.budget.max_failures) == (7, 1)


def test_the_size_limit() -> None:
    err = _error(TRAINER + "name: " + "x" * 200 + "\n", limits=YamlLimits(max_bytes=200))
    assert "larger than 200 bytes" in err.message


def test_loaded_values_are_safe_loads() -> None:
    data, node = load_yaml("a: [1, 2.5, x, null, true]\n")
    assert data == {"a": [1, 2.5, "x", None, True]} and node is not None
    assert load_yaml("") == (None, None)
    with pytest.raises(SpecError, match="could not determine a constructor"):
        load_yaml("a: !!python/object/apply:os.system ['true']\n")


@pytest.mark.parametrize("text, field", [
    ("space: {x: {type: float, low: .nan, high: 1}}", "space.x.low"),
    ("space: {x: {type: float, low: 0, high: .inf}}", "space.x.high"),
    ("space: {x: {type: float, low: 0, high: 1, grid: [0.5, -.inf]}}", "space.x.grid[1]"),
    ("budget: {trial_timeout: .inf}", "budget.trial_timeout"),
    ("budget: {wall_time: .nan}", "budget.wall_time"),
    ("budget: {target: -.inf}", "budget.target"),
    ("objectives: [{metric: loss, mode: min, reference: .inf}]", "objectives[0].reference"),
    ("searcher: {options: {x: .nan}}", "searcher.options.x"),
])
def test_a_non_finite_number_is_refused_naming_its_field(text: str, field: str) -> None:
    err = _error(TRAINER + text + "\n")
    assert err.field == field and "not a finite number" in err.message and err.line == 2


@pytest.mark.parametrize("text, field, words", [
    ("constraints: ['loss <= 1e999']", "constraints", "not a finite number"),
    ("seed: 4294967296", "seed", "less than 4294967296"),
    ("seed: 1.0e+30", "seed", "integer"),
    ("seed: 1e30", "seed", "integer"),
    ("searcher: {seed: 4294967296}", "searcher.seed", "less than 4294967296"),
    (f"space: {{x: {{type: int, low: 0, high: {2**63}}}}}", "space.x.high", "out of range"),
    ("space: {x: {type: float, low: -1.0e+308, high: 1.0e+308}}", "space.x", "too wide"),
    ("budget: {wall_time: 400d}", "budget.wall_time", "at most 365d"),
    ("budget: {trial_timeout: " + "9" * 400 + "s}", "budget.trial_timeout", "positive number of seconds"),
])
def test_numbers_out_of_range_are_refused_naming_their_field(text: str, field: str, words: str) -> None:
    err = _error(TRAINER + text + "\n")
    assert err.field == field and words in err.message


def test_the_largest_seed_is_accepted() -> None:
    assert parse_spec(TRAINER + f"seed: {2**32 - 1}\nsearcher: {{seed: {2**32 - 1}}}\n").seed == 2**32 - 1


def test_a_large_spec_validates() -> None:
    space = "".join(f"  p{i}: {{type: float, low: 0, high: 1, when: {{c: v{i % 50}}}}}\n" for i in range(2000))
    values = ", ".join(f"v{i}" for i in range(20000))
    spec = parse_spec(TRAINER + f"space:\n  c: {{type: choice, values: [{values}]}}\n" + space)
    assert len(spec.space or {}) == 2001


class _Value:
    """A hashable value that counts its equality tests."""

    compared = 0

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return hash(self.n)

    def __eq__(self, other: object) -> bool:
        _Value.compared += 1
        return isinstance(other, _Value) and other.n == self.n


def test_the_choice_uniqueness_check_is_linear() -> None:
    _Value.compared = 0
    values = [_Value(i) for i in range(2000)]
    ChoiceParam._unique(values)  # type: ignore[operator]  # the validator's function, called directly
    assert _Value.compared <= len(values)  # a pairwise check makes ~n**2 / 2 = 2,000,000
    with pytest.raises(ValueError, match="repeated: 7"):
        ChoiceParam._unique([1, 7, 2, 7])  # type: ignore[operator]


class _CountingWhen(dict):  # type: ignore[type-arg]
    """A condition mapping that counts how often it is read."""

    reads = 0

    def __iter__(self) -> Any:
        _CountingWhen.reads += 1
        return super().__iter__()


def test_ordering_a_chain_of_conditions_is_linear() -> None:
    n = 500
    params = [Choice("c0", {}, ("a", "b"))]
    params += [Choice(f"c{i}", _CountingWhen({f"c{i - 1}": ("a",)}), ("a", "b")) for i in range(1, n)]
    _CountingWhen.reads = 0
    space = SearchSpace(list(reversed(params)))  # children first: the worst order for a round-by-round sort
    assert list(space) == [f"c{i}" for i in range(n)]
    assert _CountingWhen.reads <= 10 * n  # rounds that each rescan the pending parameters read n**2 / 2


# -- validate and user code --------------------------------------------------------------------------------


def _function_spec(tmp_path: Path, module: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"trainer: {{name: function, params: {{function: '{module}:objective', metrics: {{loss: min}}}}}}\n"
                    "space: {x: {type: float, low: 0, high: 1}}\n")
    return path


def _user_package(tmp_path: Path, name: str) -> Path:
    """A package whose import (of the package or its module) leaves a marker file."""
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("import pathlib\npathlib.Path(__file__).with_name('IMPORTED_PKG').touch()\n")
    (package / "obj.py").write_text("import pathlib\npathlib.Path(__file__).with_name('IMPORTED').touch()\n"
                                    "def objective(config):\n    return {'loss': 0.0}\n")
    return package


@pytest.fixture
def clean_modules() -> Any:
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path[:] = path


def test_validate_finds_the_objective_module_without_importing_it(tmp_path: Path, clean_modules: None) -> None:
    package = _user_package(tmp_path, "userpkg_validate_a")
    plan = automl.validate(_function_spec(tmp_path, "userpkg_validate_a.obj"), data=False)
    assert plan.trainer.name == "function"
    assert not (package / "IMPORTED").exists() and not (package / "IMPORTED_PKG").exists()
    automl.validate(_function_spec(tmp_path, "userpkg_validate_a.obj"), data=False, import_code=True)
    assert (package / "IMPORTED").exists() and (package / "IMPORTED_PKG").exists()


def test_validate_without_import_still_refuses_a_missing_module(tmp_path: Path, clean_modules: None) -> None:
    _user_package(tmp_path, "userpkg_validate_b")
    for module in ("userpkg_validate_b.nothere", "no_such_package_xyz.obj"):
        with pytest.raises(AutoMLError, match=f"cannot find module '{module}'"):
            automl.validate(_function_spec(tmp_path, module), data=False)
    assert not (tmp_path / "userpkg_validate_b" / "IMPORTED_PKG").exists()


def test_validate_import_checks_the_function(tmp_path: Path, clean_modules: None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _user_package(tmp_path, "userpkg_validate_c")
    spec = _function_spec(tmp_path, "userpkg_validate_c.obj").read_text().replace(":objective", ":objectiv")
    (tmp_path / "spec.yaml").write_text(spec)
    assert cli(["validate", str(tmp_path / "spec.yaml")]) == 0  # the module exists; the function is not looked at
    assert cli(["validate", "--import", str(tmp_path / "spec.yaml")]) == 2
    assert "has no attribute 'objectiv'; did you mean 'objective'?" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40])
def test_a_seed_given_besides_the_spec_is_held_to_the_same_range(seed: int) -> None:
    from automl.engine import _override

    spec = automl.parse_spec("task: classification\ndata: {dataset: iris}\ntrainer: {name: sklearn}\n")
    with pytest.raises(AutoMLError, match=r"--seed must be in \[0, 2\*\*32\)"):
        _override(spec, None, seed)
    assert _override(spec, None, 2**32 - 1).seed == 2**32 - 1
