"""Subcommands added by installed packages (the ``automl.commands`` entry points, :mod:`automl.commands`).

The fixture packages of ``tests/fixtures/plugins/command-*`` are installed through real entry points by
the ``fixture_plugins`` fixture (tests/conftest.py): nothing is pip-installed and nothing is patched.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from automl.cli import run as cli
from automl.plugin import COMMAND_GROUP
from tests.conftest import ROOT, PluginSite


def test_a_package_adds_a_command(fixture_plugins: Callable[..., PluginSite],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    fixture_plugins("command-hello")
    assert cli(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert cli(["--help"]) == 0
    out = capsys.readouterr()
    assert "hello" in out.out and "Greet NAME (a plugin command)." in out.out
    assert out.err == ""


def test_a_plugin_commands_error_is_one_line_and_exit_2(fixture_plugins: Callable[..., PluginSite],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    fixture_plugins("command-hello")
    assert cli(["hello", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: nobody to greet"


def test_a_disabled_package_adds_no_command(fixture_plugins: Callable[..., PluginSite],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fixture_plugins("command-hello")
    assert cli(["--disable-plugin", "fixture-command-hello", "hello", "world"]) == 2
    assert "No such command 'hello'" in capsys.readouterr().err


def test_a_command_that_cannot_load_is_one_warning_and_the_rest_work(
    fixture_plugins: Callable[..., PluginSite], capsys: pytest.CaptureFixture[str]
) -> None:
    fixture_plugins("command-hello", "command-broken")
    assert cli(["hello", "world"]) == 0  # only the command that runs is imported
    out = capsys.readouterr()
    assert out.out == "hello world\n" and out.err == ""
    assert cli(["--help"]) == 0
    out = capsys.readouterr()
    assert "hello" in out.out and "crash" not in out.out and "notacommand" not in out.out
    assert out.err.splitlines() == [
        "warning: the command 'crash' of fixture-command-broken 0.1.0 failed to load: RuntimeError: the command's "
        "module is broken",
        "warning: the command 'notacommand' of fixture-command-broken 0.1.0 is not a click command "
        "(fixture_command_broken.plain:command is a function)",
    ]
    assert cli(["crash"]) == 2
    assert capsys.readouterr().err.strip() == ("error: the command 'crash' of fixture-command-broken 0.1.0 failed to "
                                               "load: RuntimeError: the command's module is broken")


def test_a_command_named_like_a_core_or_another_packages_command_is_refused(
    fixture_plugins: Callable[..., PluginSite], capsys: pytest.CaptureFixture[str]
) -> None:
    fixture_plugins("command-hello", "command-clash")
    assert cli(["--help"]) == 0
    out = capsys.readouterr()
    assert sorted(out.err.splitlines()) == [
        "warning: the command 'hello' is refused: fixture-command-clash 0.1.0 and fixture-command-hello 0.1.0 both "
        "add it; disable one with AUTOML_DISABLE_PLUGINS=PACKAGE (or --disable-plugin PACKAGE)",
        "warning: the command 'search' of fixture-command-clash 0.1.0 is refused: automl has a core command of that "
        "name",
    ]
    assert cli(["search", "--help"]) == 0
    assert "Run the search described by SPEC" in capsys.readouterr().out  # the core's, not the plugin's
    assert cli(["hello"]) == 2
    assert "both add it" in capsys.readouterr().err
    # Disabling one of the two packages gives the name to the other.
    assert cli(["--disable-plugin", "fixture-command-clash", "hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"


def test_searching_imports_no_plugin_command(fixture_plugins: Callable[..., PluginSite]) -> None:
    fixture_plugins("command-hello", "command-broken")
    assert cli(["validate", "--help"]) == 0
    assert not [m for m in sys.modules if m.startswith("fixture_command")]


def test_automl_plugins_lists_the_commands_and_the_broken_ones(fixture_plugins: Callable[..., PluginSite],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    fixture_plugins("command-hello", "command-broken")
    assert cli(["plugins"]) == 0
    out = capsys.readouterr()
    assert "command hello: from fixture-command-hello 0.1.0" in out.out.splitlines()
    broken = [line for line in out.err.splitlines() if "fixture-command-broken" in line]
    assert broken == [
        "broken: the command 'crash' of fixture-command-broken 0.1.0 failed to load: RuntimeError: the command's "
        "module is broken",
        "broken: the command 'notacommand' of fixture-command-broken 0.1.0 is not a click command "
        "(fixture_command_broken.plain:command is a function)",
    ]


def test_the_documented_command_example_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    section = doc.split("## Adding commands", 1)[1].split("\n## ", 1)[0]
    entry = re.search(r'\[project\.entry-points\."automl\.commands"\]\n(\S+) = "(\S+)"', section)
    code = re.search(r"```python\n# automl_hello/cli.py\n(.*?)```", section, re.S)
    assert entry is not None and code is not None
    site = tmp_path / "site"
    (site / "automl_hello").mkdir(parents=True)
    (site / "automl_hello" / "__init__.py").write_text("")
    (site / "automl_hello" / "cli.py").write_text(code.group(1))
    info = site / "automl_hello-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: automl-hello\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{COMMAND_GROUP}]\n{entry.group(1)} = {entry.group(2)}\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        assert cli(["hello", "world"]) == 0
        assert capsys.readouterr().out == "hello world\n"
        assert cli(["hello", " "]) == 2
        assert capsys.readouterr().err.strip() == "error: give a name"
    finally:
        sys.modules.pop("automl_hello.cli", None)
        sys.modules.pop("automl_hello", None)
