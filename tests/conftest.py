"""Fixtures of the tests/ directory: the small plugin packages of ``tests/fixtures/plugins`` installed into
the test session through real entry points.

Installing one writes what pip would: the package directory and a ``NAME-VERSION.dist-info`` with
``METADATA`` and ``entry_points.txt`` (read from the package's own ``pyproject.toml``), in a temporary
directory put first on ``sys.path`` for this test, and on ``PYTHONPATH`` for the subprocesses it starts
(:meth:`PluginSite.env`). ``importlib.metadata.entry_points(group="automl")`` then finds them as it finds
any installed plugin; the virtual environment is never changed, and the registry is never patched.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PLUGINS = Path(__file__).resolve().parent / "fixtures" / "plugins"

# The run-signing key of the test run (automl/trust.py): a fresh one in a temporary directory, never the user's
# own ~/.config/automl/key. Set before any test starts Ray, so its workers sign with the same key.
os.environ.setdefault("AUTOML_KEY_FILE", str(Path(tempfile.mkdtemp(prefix="automl-test-key-")) / "key"))


@dataclass(frozen=True)
class PluginSite:
    """A directory on the import path holding installed fixture plugin packages."""

    path: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a subprocess that sees the same plugins (and the repository's test helpers)."""
        paths = [str(self.path), str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}


def install_fixture_plugin(site: Path, name: str) -> str:
    """Install ``tests/fixtures/plugins/NAME`` into ``site`` as pip would lay it out; returns its distribution name."""
    src = FIXTURE_PLUGINS / name
    pyproject = tomllib.loads((src / "pyproject.toml").read_text())
    project = pyproject["project"]
    for package in pyproject["tool"]["setuptools"]["packages"]:
        shutil.copytree(src / package, site / package, ignore=shutil.ignore_patterns("__pycache__"),
                        dirs_exist_ok=True)
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project["entry-points"]  # `automl` (hooks), `automl.commands` (subcommands)
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) for group, entries in groups.items()))
    return str(project["name"])


def _forget_plugins() -> None:
    """Drop the process-wide plugin managers and the fixture modules, so the next test loads afresh."""
    from automl import plugins

    plugins._default.clear()
    for module in [m for m in sys.modules if m.startswith("fixture_")]:
        del sys.modules[module]


@pytest.fixture
def fixture_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., PluginSite]]:
    """``fixture_plugins("raising-result", "recorder")`` installs those packages of ``tests/fixtures/plugins``
    for this test (in-process and, through :meth:`PluginSite.env`, its subprocesses)."""
    site = tmp_path / "plugin-site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _forget_plugins()

    def install(*names: str) -> PluginSite:
        for name in names:
            install_fixture_plugin(site, name)
        _forget_plugins()
        return PluginSite(site)

    yield install
    _forget_plugins()
