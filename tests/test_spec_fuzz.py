"""A seeded spec fuzzer: mutations of the shipped specs and the known hostile cases through ``automl validate``.

Each case is validated in-process with the data left unread (``automl.validate(..., data=False)``); a case
ends either in a plan or in one :class:`~automl.errors.AutoMLError` (exit 2 in the CLI). Anything else is a
traceback and fails the test with the case that caused it. Every case must finish: none may hang.
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import automl
from automl.cli import run as cli
from automl.errors import AutoMLError

ROOT = Path(__file__).resolve().parents[1]
SEED = 17
MUTATIONS = 300

#: Values a mutation puts somewhere in a spec: wrong types, non-finite and huge numbers, odd strings.
NASTY_VALUES: list[Any] = [
    math.nan, math.inf, -math.inf, 2**32, 2**64, -(2**70), 1e308, -1e308, 5e-324, 0, -1, 1.5, True, None,
    "", " ", "1e30", "nan", "10x", "../../etc/passwd", "ü\u202e🙂\u0000"[:3], "x" * 5000, [], {}, [1, [2, [3]]],
    {"type": "float"}, {"low": math.nan}, ["a", "a"],
]


def _known_cases() -> dict[str, str | bytes]:
    """The hostile and careless specs of issue 17 (and their relatives)."""
    trainer = "trainer: {name: function, params: {function: 'json:dumps', metrics: {loss: min}}}\n"
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
    )
    cases: dict[str, str | bytes] = {
        "billion laughs": laughs + trainer,
        "billion laughs in a known field": trainer + "budget: &b {trials: 5}\n" + laughs.replace("a:", "space:", 1),
        "recursive alias": trainer + "searcher: &s {name: random, options: {again: *s}}\n",
        "recursive alias in a sequence": "a: &a [*a]\n" + trainer,
        "2000-deep flow nesting": trainer + "searcher: {name: random, options: {x: " + "[" * 2000 + "]" * 2000 + "}}\n",
        "2000-deep block nesting": trainer + "searcher:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(2000)),
        "deep nesting through aliases": trainer + "".join(
            f"x{i}: &x{i} [[[[[[[[[[{'*x' + str(i - 1) if i else '1'}]]]]]]]]]]\n" for i in range(12)),
        "duplicate keys": trainer + "budget:\n  trials: 5\n  trials: 500\n",
        "duplicate top-level section": trainer + "seed: 1\nseed: 2\n",
        "empty file": "",
        "only a comment": "# nothing\n",
        "a scalar": "42\n",
        "a list": "- trainer\n- searcher\n",
        "two documents": trainer + "---\n" + trainer,
        "binary junk": bytes(random.Random(SEED).randrange(256) for _ in range(2000)),
        "NUL bytes": b"trainer:\x00 {name: function}\n",
        "invalid UTF-8": b"name: \xff\xfe\n" + trainer.encode(),
        "python tag": trainer + "name: !!python/object/apply:os.system ['echo pwned']\n",
        "unicode everywhere": trainer + "name: \u00fc\u202e\U0001f642\nspace:\n  \u00e9t\u00e9: {type: float, low: 0, high: 1}\n",
        "seed 1e30": trainer + "seed: 1e30\n",
        "seed 1.0e+30": trainer + "seed: 1.0e+30\n",
        "seed 2**32": trainer + f"seed: {2**32}\n",
        "seed 2**70": trainer + f"seed: {2**70}\n",
        "searcher seed 2**40": trainer + f"searcher: {{seed: {2**40}}}\n",
        "seed a string": trainer + "seed: lots\n",
        "trials a float": trainer + "budget: {trials: 2.5}\n",
        "huge int bound": trainer + f"space: {{x: {{type: int, low: 0, high: {10**30}}}}}\n",
        "float range too wide": trainer + "space: {x: {type: float, low: -1.0e+308, high: 1.0e+308}}\n",
        "tab indentation": "trainer:\n\tname: function\n",
        "unclosed flow": "trainer: {name: function\n",
        "unknown tag": trainer + "name: !custom x\n",
        "a date as name": trainer + "name: 2024-01-01\n",
        "binary scalar": trainer + "name: !!binary aGVsbG8=\n",
        "a set": trainer + "constraints: !!set {a, b}\n",
    }
    for value in (".nan", ".inf", "-.inf"):
        cases.update({
            f"{value} in a space bound": trainer + f"space: {{x: {{type: float, low: {value}, high: 1}}}}\n",
            f"{value} in a grid": trainer + f"space: {{x: {{type: float, low: 0, high: 1, grid: [0.5, {value}]}}}}\n",
            f"{value} as a choice value": trainer + f"space: {{x: {{type: choice, values: [1, {value}]}}}}\n",
            f"{value} trial_timeout": trainer + f"budget: {{trial_timeout: {value}}}\n",
            f"{value} wall_time": trainer + f"budget: {{wall_time: {value}}}\n",
            f"{value} target": trainer + f"budget: {{target: {value}}}\n",
            f"{value} reference": trainer + f"objectives: [{{metric: loss, mode: min, reference: {value}}}]\n",
            f"{value} in trainer params": trainer.replace("metrics:", f"lr: {value}, metrics:"),
            f"{value} cpu": trainer + f"resources: {{cpu: {value}}}\n",
            f"{value} validation": trainer + f"data: {{dataset: digits, validation: {value}}}\n",
        })
    for bound in ("1e999", "-1e999", "1e308"):
        cases[f"constraint bound {bound}"] = trainer + f"constraints: ['loss <= {bound}']\n"
    return cases


def _shipped() -> dict[str, dict[str, Any]]:
    """The shipped example specs as data, their relative data paths made absolute (the cases live elsewhere)."""
    out = {}
    for path in sorted((ROOT / "searchspaces").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for key in ("csv", "parquet"):
            if isinstance(data.get("data"), dict) and key in data["data"]:
                data["data"][key] = str((path.parent / data["data"][key]).resolve())
        out[path.stem] = data
    return out


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in ``data`` (the root excluded)."""
    out = []
    if isinstance(data, dict):
        items: list[tuple[Any, Any]] = list(data.items())
    elif isinstance(data, list):
        items = list(enumerate(data))
    else:
        return out
    for key, value in items:
        out.append((*path, key))
        out.extend(_paths(value, (*path, key)))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _mutate_data(rng: random.Random, data: dict[str, Any]) -> str:
    doc = copy.deepcopy(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = rng.choice(paths)
        parent, key = _parent(doc, path), path[-1]
        kind = rng.randrange(6)
        if kind <= 2:
            parent[key] = copy.deepcopy(rng.choice(NASTY_VALUES))
        elif kind == 3:
            del parent[key]
        elif kind == 4 and isinstance(parent, dict):  # a misspelt or unknown key
            parent[str(key)[:-1] + rng.choice("xs_") if str(key) else "x"] = parent.pop(key)
        else:  # a number nudged past its bound
            value = parent[key]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parent[key] = rng.choice((-value, value * 10**6, value - 1, value + 0.5))
            else:
                parent[key] = [value]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _mutate_text(rng: random.Random, text: str) -> str | bytes:
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(6)
    i = rng.randrange(len(lines))
    if kind == 0:  # truncated
        return text[: rng.randrange(len(text))]
    if kind == 1:  # a line twice: usually a duplicate key
        return "".join(lines[: i + 1] + lines[i:])
    if kind == 2:  # lines swapped
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines)
    if kind == 3:  # indentation broken
        lines[i] = rng.choice(("", " ", "\t", "    ")) + lines[i].lstrip()
        return "".join(lines)
    if kind == 4:  # YAML punctuation dropped in
        at = rng.randrange(len(text))
        return text[:at] + rng.choice(("*x", "&a ", "!!python/name:os.system ", "{", "]", ": ", "- ", "<<: ", "%")) + text[at:]
    raw = bytearray(text.encode())
    for _ in range(rng.randrange(1, 8)):  # bytes flipped
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw)


def _cases() -> dict[str, str | bytes]:
    rng = random.Random(SEED)
    shipped = _shipped()
    texts = {name: yaml.safe_dump(data, sort_keys=False) for name, data in shipped.items()}
    names = sorted(shipped)
    cases: dict[str, str | bytes] = {f"shipped {name}": text for name, text in texts.items()}
    cases.update(_known_cases())
    for n in range(MUTATIONS):
        name = rng.choice(names)
        if rng.random() < 0.6:
            cases[f"mutation {n} of {name} (data)"] = _mutate_data(rng, shipped[name])
        else:
            cases[f"mutation {n} of {name} (text)"] = _mutate_text(rng, texts[name])
    return cases


def _outcome(check: Callable[[Path], Any], path: Path) -> str:
    """``ok``, ``clean`` (one AutoMLError with exit code 2) or ``traceback: ...``."""
    try:
        check(path)
    except AutoMLError as exc:
        return "clean" if exc.exit_code == 2 and str(exc) else f"traceback: {exc!r} (exit {exc.exit_code})"
    except Exception as exc:  # the finding this test looks for
        return f"traceback: {type(exc).__name__}: {exc}"[:500]
    return "ok"


def test_the_fuzzed_and_hostile_specs_give_a_plan_or_one_clear_error(tmp_path: Path) -> None:
    cases = _cases()
    assert len(cases) >= MUTATIONS + 60
    counts: Counter[str] = Counter()
    tracebacks = []
    for n, (name, content) in enumerate(cases.items()):
        path = tmp_path / f"case{n}.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        outcome = _outcome(lambda p: automl.validate(p, data=False), path)
        counts[outcome.split(":")[0]] += 1
        if outcome.startswith("traceback"):
            tracebacks.append(f"{name}: {outcome}")
    print(f"\nspec fuzzer: {len(cases)} tried, {counts['ok']} valid, {counts['clean']} clean errors, "
          f"{counts['traceback']} tracebacks, 0 hangs (every case finished)")
    assert not tracebacks, "\n".join(tracebacks)
    assert counts["clean"] > len(cases) // 2  # the mutations do break specs (the fuzzer is not idle)
    for name in ("shipped quickstart", "shipped torch-mlp-digits"):  # the unmutated shipped specs validate
        assert _outcome(lambda p: automl.validate(p, data=False), _write(tmp_path, cases[name])) == "ok"


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "one.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize("name", ["billion laughs", "recursive alias", "2000-deep flow nesting", "2000-deep block nesting",
                                  "duplicate keys", "seed 2**32", ".nan trial_timeout", "binary junk", "empty file"])
def test_the_cli_answers_a_hostile_spec_with_one_error_and_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _known_cases()[name])
    assert cli(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert str(path) in err  # the file is named (with the line where one is known)


def test_a_huge_spec_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(11 * 2**20)  # sparse: nothing is written, and reading it would be the bug
    with pytest.raises(AutoMLError, match="larger than 10,485,760 bytes"):
        automl.validate(path, data=False)
