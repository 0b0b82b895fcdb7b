"""Subcommands of ``automl`` that installed packages add through the ``automl.commands`` entry points.

A package adds ``automl NAME`` by naming a :class:`click.Command` in its metadata:

.. code-block:: toml

    [project.entry-points."automl.commands"]
    bench = "automl_bench.cli:bench"

Why an entry-point group and not a pluggy hook (the hooks of :mod:`automl.hookspecs`): a hook
is answered only once every plugin module is imported, which costs seconds (the trainers'
libraries), and ``automl --help`` or ``automl search`` must not pay that to learn the names of
a few extra commands. An entry point's name is in the package metadata, so listing the commands
imports nothing, and only the command that runs (or whose one-line help is shown) is imported.
This is how click applications take plugin commands (Flask's ``flask.commands`` group,
click-plugins).

The isolation rules of the engine's plugins hold here too: a command that cannot be loaded (its
module raises on import, the name is not a click command) is left out with one warning line and
every other command works; a name that a core command has, or that two packages give, is refused
with one line naming the package(s). ``--disable-plugin`` / ``AUTOML_DISABLE_PLUGINS`` with the
entry-point name or the distribution name leaves a command out.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

import click

__all__ = ["COMMAND_GROUP", "PluginCommands"]

#: The entry-point group a package names its ``automl`` subcommands in.
COMMAND_GROUP = "automl.commands"

_DISABLE_ENV = "AUTOML_DISABLE_PLUGINS"  # read here, not imported: automl.plugins loads pluggy and the records


@dataclass
class PluginCommands:
    """The ``automl.commands`` entry points, by command name, found without importing any of them.

    Args:
        core: The core's command names: a plugin command with one of them is refused.
        disabled: Entry-point or distribution names not to load (``AUTOML_DISABLE_PLUGINS`` adds to them).
    """

    core: Iterable[str]
    disabled: Iterable[str] = ()
    #: Loadable entry points by command name.
    entries: dict[str, md.EntryPoint] = field(init=False, default_factory=dict)
    #: Why a name is not a command: one line each (refused names, failed loads), by command name.
    problems: dict[str, str] = field(init=False, default_factory=dict)
    _loaded: dict[str, click.Command] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        core = set(self.core)
        env = {n.strip() for n in os.environ.get(_DISABLE_ENV, "").split(",") if n.strip()}
        disabled = set(self.disabled) | env
        claims: dict[str, list[md.EntryPoint]] = {}
        for ep in md.entry_points(group=COMMAND_GROUP):
            if ep.name in disabled or (ep.dist is not None and ep.dist.name in disabled):
                continue
            claims.setdefault(ep.name, []).append(ep)
        for name, eps in sorted(claims.items()):
            packages = " and ".join(sorted({_package(ep) for ep in eps}))
            if name in core:
                self.problems[name] = (f"the command {name!r} of {packages} is refused: automl has a core command of "
                                       f"that name")
            elif len({_package(ep) for ep in eps}) > 1:
                self.problems[name] = (f"the command {name!r} is refused: {packages} both add it; disable one with "
                                       f"{_DISABLE_ENV}=PACKAGE (or --disable-plugin PACKAGE)")
            else:
                self.entries[name] = eps[0]

    def names(self) -> list[str]:
        """The plugin commands' names (nothing is imported)."""
        return sorted(self.entries)

    def package(self, name: str) -> str:
        """``distribution version`` of the package adding the command ``name``."""
        return _package(self.entries[name])

    def load(self, name: str) -> click.Command | None:
        """The command ``name``, imported now; None (with the reason in :attr:`problems`) when it cannot be."""
        if name in self._loaded:
            return self._loaded[name]
        ep = self.entries.get(name)
        if ep is None:
            return None
        try:
            command = ep.load()
        except (Exception, SystemExit) as exc:  # a broken package must not take the other commands down
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self._fail(name, f"the command {name!r} of {_package(ep)} failed to load: {last}")
            return None
        if not isinstance(command, click.Command):
            self._fail(name, f"the command {name!r} of {_package(ep)} is not a click command ({ep.value} is a "
                             f"{type(command).__name__})")
            return None
        self._loaded[name] = command
        return command

    def _fail(self, name: str, message: str) -> None:
        del self.entries[name]
        self.problems[name] = message

    def load_all(self) -> dict[str, click.Command]:
        """Every command that loads, by name (for the help listing)."""
        loaded = {name: self.load(name) for name in self.names()}
        return {name: command for name, command in loaded.items() if command is not None}


def _package(ep: md.EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else ep.module
