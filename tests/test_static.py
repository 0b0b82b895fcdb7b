"""The code stays lint- and type-clean: ruff over every tree, mypy over the core, each plugin and benchmarks/;
no core function is over 60 lines (a short allow-list says why for each exception).

The settings live in pyproject.toml ([tool.ruff], [tool.mypy]; benchmarks/ has a looser mypy profile there).
mypy keeps its cache in .mypy_cache, so a repeat run takes seconds; a cold one checks the libraries' types too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

RUFF_TREES = ["automl", "plugins", "benchmarks", "tests"]


def plugin_packages() -> list[str]:
    """The import package of each first-party plugin (``plugins/automl-x/automl_x``); their tests stay out."""
    return sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("plugins/*/automl_*") if (p / "__init__.py").is_file())


# One mypy run per tree: a plugin package is named by its directory, whose parent is its source root.
MYPY_TREES = {"core": ["automl"], "plugins": plugin_packages(), "benchmarks": ["benchmarks"]}


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(result.args)}\n{result.stdout}{result.stderr}"[-20000:]


@pytest.mark.parametrize("tree", RUFF_TREES)
def test_ruff_is_clean(tree: str) -> None:
    result = _run([str(BIN / "ruff"), "check", tree])
    assert result.returncode == 0, _report(result)


def test_every_plugin_package_is_type_checked() -> None:
    # A plugin whose package the glob misses would go unchecked; one missing from mypy_path is
    # unresolvable to mypy from the other trees (editable installs are import hooks mypy cannot follow).
    plugins = sorted(p.name for p in ROOT.glob("plugins/*") if (p / "pyproject.toml").is_file())
    assert sorted(Path(p).parent.name for p in MYPY_TREES["plugins"]) == plugins
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    roots = sorted(Path(p).name for p in config["mypy_path"])
    assert roots == plugins, "pyproject.toml [tool.mypy] mypy_path must list plugins/<name> of every plugin"


@pytest.mark.parametrize("tree", list(MYPY_TREES))
def test_mypy_is_clean(tree: str) -> None:
    result = _run([str(BIN / "mypy"), *MYPY_TREES[tree]])
    assert result.returncode == 0, _report(result)


#: The longest a function in the core may be (lines from ``def`` to its last line, docstring included).
MAX_FUNCTION_LINES = 60

#: Core functions allowed over the limit, each with the reason it is not split (yet).
LONG_FUNCTIONS: dict[str, str] = {}


def long_functions(root: Path = ROOT / "automl", limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``path:name`` -> lines of every function (methods and nested functions too) in ``root`` over ``limit``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found[f"{path.relative_to(root.parent)}:{node.name}"] = lines
    return found


def test_no_core_function_is_over_60_lines() -> None:
    found = long_functions()
    over = {name: lines for name, lines in found.items() if name not in LONG_FUNCTIONS}
    assert not over, f"core functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {over}"
    stale = sorted(set(LONG_FUNCTIONS) - set(found))
    assert not stale, f"no longer over {MAX_FUNCTION_LINES} lines: remove from LONG_FUNCTIONS: {stale}"


def test_the_length_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def short():\n    pass\n\n\nclass C:\n    def long(self):\n{body}")
    assert long_functions(tmp_path) == {f"{tmp_path.name}/long.py:long": MAX_FUNCTION_LINES + 1}
