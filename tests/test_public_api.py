"""The declared plugin API: first-party plugins and benchmarks import the core only through it.

Allowed: ``automl`` (its ``__all__``), ``automl.plugin`` (its ``__all__``) and ``automl.testing``
with its submodules (the conformance kits). Anything else is a private module that may change
without notice, so a first-party plugin using it would hide what an outside author cannot do.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

import automl
import automl.plugin

ROOT = Path(__file__).resolve().parents[1]
#: The first-party plugins, the benchmarks, and the test suite's plugin packages (written as an outside author would).
GUARDED = ("plugins", "benchmarks", "tests/fixtures/plugins")


def _allowed_module(module: str) -> bool:
    return module in ("automl", "automl.plugin") or module == "automl.testing" or module.startswith("automl.testing.")


def core_imports_outside_the_api(path: Path) -> list[str]:
    """``file:line: what`` for each import of the core that is not through the public API."""
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "automl" and not _allowed_module(alias.name):
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "automl":
                continue
            names = [a.name for a in node.names]
            if not _allowed_module(node.module):
                found.append(f"{where}:{node.lineno}: from {node.module} import {', '.join(names)}")
                continue
            public = {"automl": automl.__all__, "automl.plugin": automl.plugin.__all__}.get(node.module)
            if public is not None:
                # `from automl import engine` would reach a private module through the package.
                private = [n for n in names if n != "*" and n not in public]
                if private:
                    found.append(f"{where}:{node.lineno}: from {node.module} import {', '.join(private)} "
                                 f"(not in {node.module}.__all__)")
    return found


def guarded_files() -> list[Path]:
    return sorted(p for d in GUARDED for p in (ROOT / d).rglob("*.py")
                  if not any(part.startswith(".") or part in ("build", "__pycache__") for part in p.parts))


def test_plugins_and_benchmarks_import_the_core_only_through_its_public_api() -> None:
    files = guarded_files()
    assert len(files) > 50  # the walk found the plugins' and benchmarks' sources
    offenders = [line for path in files for line in core_imports_outside_the_api(path)]
    assert not offenders, ("import these from automl.plugin (or automl / automl.testing) instead:\n"
                           + "\n".join(offenders))


def test_the_guard_catches_private_imports(tmp_path: Path) -> None:
    bad = ROOT / "plugins" / "_guard_probe.py"  # under ROOT: the report names paths relative to it
    bad.write_text("import automl.engine\nfrom automl.data import Table\nfrom automl import engine, Run\n"
                   "from automl.plugin import Table as T, _LAZY\nfrom automl.testing.searchers import drive\n"
                   "def f():\n    from automl.engine import _start_ray\n")
    try:
        found = core_imports_outside_the_api(bad)
    finally:
        bad.unlink()
    assert found == [
        "plugins/_guard_probe.py:1: import automl.engine",
        "plugins/_guard_probe.py:2: from automl.data import Table",
        "plugins/_guard_probe.py:3: from automl import engine (not in automl.__all__)",
        "plugins/_guard_probe.py:4: from automl.plugin import _LAZY (not in automl.plugin.__all__)",
        "plugins/_guard_probe.py:7: from automl.engine import _start_ray",
    ]


@pytest.mark.parametrize("name", automl.plugin.__all__)
def test_every_name_of_the_plugin_api_resolves(name: str) -> None:
    assert getattr(automl.plugin, name) is not None


def test_every_name_of_the_top_level_resolves() -> None:
    assert [n for n in automl.__all__ if getattr(automl, n, None) is None] == []


def test_the_plugin_api_is_documented() -> None:
    doc = automl.plugin.__doc__ or ""
    undocumented = [n for n in automl.plugin.__all__ if f"`{n}`" not in doc and f":data:`{n}`" not in doc]
    assert undocumented == []


def test_the_version_is_the_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert automl.__version__ == project["version"]


def test_no_submodule_of_automl_shadows_a_public_name() -> None:
    # Importing automl.X sets the package's attribute X to the submodule: a module automl/report.py replaced the
    # function automl.report (the loop trainer's call) once anything imported it ("'module' object is not callable").
    import importlib
    import pkgutil

    import automl

    modules = {m.name for m in pkgutil.iter_modules(automl.__path__)}
    clash = sorted(set(automl.__all__) & modules)
    assert not clash, f"automl/{clash[0]}.py would shadow automl.{clash[0]} once imported"
    for name in sorted(modules):
        importlib.import_module(f"automl.{name}")
    assert callable(automl.report) and callable(automl.should_stop)
