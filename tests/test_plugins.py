"""Plugins are found through real entry points: each test installs a small distribution
(a ``.dist-info`` with ``entry_points.txt``, as pip writes it) on a temporary sys.path entry."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from automl.cli import run as cli
from automl.errors import PluginError
from automl.plugins import PluginManager

SEARCHER_PLUGIN = """
from automl import hookimpl, SearcherSpec
from automl.builtin.searchers import RandomSearcher

@hookimpl
def automl_register_searchers():
    return [SearcherSpec("{name}", RandomSearcher, description="test searcher")]
"""

Installer = Callable[..., None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Installer]:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install_dist(dist: str, module: str, code: str, entry: str | None = None) -> None:
        (site / f"{module}.py").write_text(textwrap.dedent(code))
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[automl]\n{entry or module} = {module}\n")

    yield install_dist
    for name in list(sys.modules):
        if name.startswith("thirdparty_"):
            del sys.modules[name]


def test_builtins_register_through_the_hooks() -> None:
    pm = PluginManager(entry_points=False)
    assert {"random", "grid"} <= set(pm.searchers.names())
    assert pm.searchers.owners["random"].builtin
    assert "csv" in pm.datasets.names()


def test_a_third_party_searcher_is_found_with_its_package_and_version(install: Installer) -> None:
    install("acme-search", "thirdparty_acme", SEARCHER_PLUGIN.format(name="acme"))
    pm = PluginManager()
    assert "acme" in pm.searchers.names()
    info = pm.searchers.owners["acme"]
    assert (info.package, info.version) == ("acme-search", "1.2.3")
    assert pm.version_of("searcher", "acme") == "acme-search==1.2.3"


def test_duplicate_names_fail_only_that_name_naming_both_packages(install: Installer) -> None:
    install("acme-search", "thirdparty_acme", SEARCHER_PLUGIN.format(name="random"))
    searchers = PluginManager().searchers  # building the registry does not raise (tests/test_plugin_isolation.py)
    assert "grid" in searchers.names() and "random" not in searchers.names()
    with pytest.raises(PluginError) as info:
        searchers.get("random")
    assert "'random'" in str(info.value) and "automl" in str(info.value) and "acme-search" in str(info.value)


def test_a_plugin_that_fails_to_import_is_reported_not_fatal(install: Installer) -> None:
    install("broken-plugin", "thirdparty_broken", "import not_a_real_module_xyz\n")
    pm = PluginManager()
    assert "random" in pm.searchers.names()
    broken = [p for p in pm.plugins() if p.package == "broken-plugin"]
    assert broken and "not_a_real_module_xyz" in (broken[0].error or "")


def test_a_misspelled_hook_is_reported_and_loads_nothing(install: Installer) -> None:
    code = "from automl import hookimpl\n\n@hookimpl\ndef automl_register_searcher():\n    return []\n"
    install("typo-plugin", "thirdparty_typo", code)
    pm = PluginManager()
    typo = [p for p in pm.plugins() if p.package == "typo-plugin"]
    assert typo and "unknown hook 'automl_register_searcher'" in (typo[0].error or "")
    assert "random" in pm.searchers.names()


def test_disable_by_argument_and_environment(install: Installer, monkeypatch: pytest.MonkeyPatch) -> None:
    install("acme-search", "thirdparty_acme", SEARCHER_PLUGIN.format(name="random"), entry="acme")
    assert "random" in PluginManager(disabled=["acme"]).searchers.names()  # no clash once disabled
    monkeypatch.setenv("AUTOML_DISABLE_PLUGINS", "acme, searchers")
    names = PluginManager().searchers.names()
    assert "random" not in names  # the built-in searchers module is disabled too


def test_unknown_name_lists_choices_and_the_package_to_install() -> None:
    registry = PluginManager(entry_points=False).searchers
    with pytest.raises(PluginError) as info:
        registry.get("nsga2")
    assert "available: grid, random" in str(info.value)
    assert "pip install automl-optuna" in str(info.value)
    with pytest.raises(PluginError, match="Did you mean 'random'"):
        registry.get("randon")


def test_cli_plugins_lists_the_broken_plugin(install: Installer, capsys: pytest.CaptureFixture[str]) -> None:
    install("broken-plugin", "thirdparty_broken2", "raise RuntimeError('boom at import')\n")
    from automl import plugins

    plugins._default.clear()
    assert cli(["plugins", "--json"]) == 0
    out = capsys.readouterr().out
    assert "broken-plugin" in out and "boom at import" in out
    plugins._default.clear()
