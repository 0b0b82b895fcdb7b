"""The code stays lint- and type-clean: ruff over every tree, mypy over the core, each plugin and benchmarks/.

The settings live in pyproject.toml ([tool.ruff], [tool.mypy]; benchmarks/ has a looser mypy profile there).
mypy keeps its cache in .mypy_cache, so a repeat run takes seconds; a cold one checks the libraries' types too.
"""

from __future__ import annotations

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
