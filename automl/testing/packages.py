"""The package check: a plugin distribution loads without its optional libraries and registers what it says.

``automl`` loads every installed plugin for every command, so a plugin's entry-point module must
import without the heavy or optional libraries it uses (import them when a trial needs them, with
:func:`automl.plugin.lazy_import`, which names the package to install). :func:`check_package`
imports the distribution's entry points in a fresh interpreter with those libraries blocked (an
import of one raises ``ModuleNotFoundError`` and ``find_spec`` finds nothing, as if it were not installed), calls its registry hooks,
and compares the names with the ones registered with everything installed and with
:data:`~automl.plugin.KNOWN_PROVIDERS` (the first-party names the engine suggests installing).

Use it in a test, or subclass :class:`PackageConformance`::

    from automl.testing import PackageConformance

    class TestPackage(PackageConformance):
        package = "automl-myplugin"
        optional = ("mylib",)       # default: every requirement the core does not already need
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

__all__ = ["KINDS", "PackageConformance", "PackageReport", "check_package", "optional_libraries"]

#: Registry hooks and the kind each registers (the keys of ``KNOWN_PROVIDERS``, plus schedulers).
KINDS: dict[str, str] = {
    "automl_register_searchers": "searcher",
    "automl_register_trainers": "trainer",
    "automl_register_datasets": "dataset",
    "automl_register_compressors": "compressor",
    "automl_register_schedulers": "scheduler",
}

# Run in a fresh interpreter: block the libraries, import the entry points, call the registry hooks.
_PROBE = r"""
import importlib.abc, importlib.metadata as md, json, sys, traceback
blocked, dist, kinds = json.loads(sys.argv[1])

class Hide(importlib.abc.MetaPathFinder):
    # Wraps each finder: a blocked module is not found, so `import` raises ModuleNotFoundError and
    # importlib.util.find_spec returns None, exactly as when it is not installed.
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None
    def find_distributions(self, *args, **kwargs):
        find = getattr(self.finder, "find_distributions", None)
        return find(*args, **kwargs) if find else ()
    def invalidate_caches(self):
        if hasattr(self.finder, "invalidate_caches"):
            self.finder.invalidate_caches()

sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
out = {"errors": [], "names": {}, "loaded": 0}
for ep in md.entry_points(group="automl"):
    if not ep.dist or ep.dist.name != dist:
        continue
    out["loaded"] += 1
    try:
        module = ep.load()
    except BaseException as exc:
        out["errors"].append(f"entry point {ep.name} = {ep.value}: " + traceback.format_exception_only(type(exc), exc)[-1].strip())
        continue
    for hook, kind in kinds.items():
        function = getattr(module, hook, None)
        if function is None:
            continue
        try:
            records = function() or []
            out["names"].setdefault(kind, []).extend(str(r.name) for r in records)
        except BaseException as exc:
            out["errors"].append(f"{ep.name}.{hook}(): " + traceback.format_exception_only(type(exc), exc)[-1].strip())
print("AUTOML-PROBE " + json.dumps(out))
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(dist: str) -> set[str]:
    names = set()
    for line in md.requires(dist) or []:
        if "extra ==" in line:
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.add(_norm(match.group(1)))
    return names


def optional_libraries(dist: str) -> list[str]:
    """Import names of the libraries ``dist`` requires beyond what the core (and other automl packages) need."""
    own = _requirement_names(dist)
    core = _requirement_names("automl") | {"automl"}
    extra = {r for r in own - core if not r.startswith("automl")}
    modules = []
    for module, dists in md.packages_distributions().items():
        if module.startswith("_") or module.endswith(".py"):
            continue
        if any(_norm(d) in extra for d in dists):
            modules.append(module)
    return sorted(set(modules))


@dataclass
class PackageReport:
    """What :func:`check_package` found.

    Attributes:
        package: The distribution checked.
        blocked: The import names blocked.
        names: Names registered with the libraries blocked, by kind.
        installed: Names registered with everything installed, by kind.
        problems: One line per problem; empty when the package passes.
    """

    package: str
    blocked: list[str]
    names: dict[str, list[str]] = field(default_factory=dict)
    installed: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _installed_names(dist: str) -> dict[str, list[str]]:
    from automl.plugin import get_plugin_manager

    pm = get_plugin_manager()
    registries = {"searcher": pm.searchers, "trainer": pm.trainers, "dataset": pm.datasets,
                  "compressor": pm.compressors, "scheduler": pm.schedulers}
    names: dict[str, list[str]] = {}
    for kind, registry in registries.items():
        for name, owner in registry.owners.items():
            if owner.package == dist:
                names.setdefault(kind, []).append(name)
    return {k: sorted(v) for k, v in names.items()}


def check_package(dist: str, *, optional: Iterable[str] | None = None, timeout: float = 120.0) -> PackageReport:
    """Check a plugin distribution: entry points, import without ``optional`` libraries, names.

    Args:
        dist: The distribution name (``automl-optuna``).
        optional: Import names to block (default: :func:`optional_libraries`).
        timeout: Seconds the probe interpreter may take.

    Returns:
        The report; ``report.problems`` is empty when the package passes.
    """
    from automl.plugin import KNOWN_PROVIDERS

    try:
        md.distribution(dist)
    except md.PackageNotFoundError:
        return PackageReport(dist, [], problems=[f"{dist} is not installed"])
    blocked = sorted(optional) if optional is not None else optional_libraries(dist)
    report = PackageReport(dist, blocked)
    eps = [ep for ep in md.entry_points(group="automl") if ep.dist and _norm(ep.dist.name) == _norm(dist)]
    if not eps:
        report.problems.append(f"{dist} declares no entry point in the 'automl' group")
        return report
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([blocked, eps[0].dist.name, KINDS])],  # type: ignore[union-attr]
                          capture_output=True, text=True, timeout=timeout)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("AUTOML-PROBE ")), None)
    if line is None:
        report.problems.append(f"the import probe died (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
        return report
    probe = json.loads(line.removeprefix("AUTOML-PROBE "))
    if not probe["loaded"]:
        report.problems.append(f"the import probe found no entry point of {dist}")
    report.names = {k: sorted(v) for k, v in probe["names"].items()}
    for error in probe["errors"]:
        report.problems.append(f"without {', '.join(blocked) or 'nothing blocked'}: {error}")
    report.installed = _installed_names(eps[0].dist.name)  # type: ignore[union-attr]
    for kind in sorted(set(report.installed) | set(report.names)):
        lost = sorted(set(report.installed.get(kind, [])) - set(report.names.get(kind, [])))
        if lost and not probe["errors"]:
            report.problems.append(f"without {', '.join(blocked)} the {kind}(s) {lost} are not registered: register "
                                   "every name and say which package to install when one is used")
    first_party = any(_norm(p) == _norm(dist) for names in KNOWN_PROVIDERS.values() for p in names.values())
    for kind, providers in KNOWN_PROVIDERS.items():
        advertised = sorted(n for n, p in providers.items() if _norm(p) == _norm(dist))
        registered = set(report.installed.get(kind, []))
        missing = [n for n in advertised if n not in registered]
        if missing:
            report.problems.append(f"KNOWN_PROVIDERS names {dist} for the {kind}(s) {missing}, which it does not register")
        if first_party:
            unlisted = sorted(registered - set(providers))
            if unlisted:
                report.problems.append(f"{dist} registers the {kind}(s) {unlisted}, missing from KNOWN_PROVIDERS "
                                       "(the engine cannot name the package when they are not installed)")
    return report


class PackageConformance:
    """The package check as pytest tests; subclass it in a ``Test*`` class and set :attr:`package`.

    Attributes:
        package: The distribution name.
        optional: Import names of the libraries it must load without (None: every requirement
            the core does not already need, see :func:`optional_libraries`).
    """

    package: ClassVar[str] = ""
    optional: ClassVar[tuple[str, ...] | None] = None

    _reports: ClassVar[dict[tuple[str, tuple[str, ...] | None], PackageReport]] = {}

    def report(self) -> PackageReport:
        assert self.package, f"{type(self).__name__} must set `package` to a distribution name"
        key = (self.package, self.optional)
        if key not in self._reports:
            self._reports[key] = check_package(self.package, optional=self.optional)
        return self._reports[key]

    def test_registers_through_entry_points(self) -> None:
        report = self.report()
        bad = [p for p in report.problems if "entry point in" in p or "not installed" in p]
        assert not bad, bad[0]
        assert report.installed, f"{self.package} registers nothing with everything installed"

    def test_imports_without_optional_libraries(self) -> None:
        report = self.report()
        if not report.blocked:
            pytest.skip(f"{self.package} requires nothing beyond the core")
        bad = [p for p in report.problems if p.startswith("without") or p.startswith("the import probe")]
        assert not bad, "\n".join(bad)

    def test_names_match_known_providers(self) -> None:
        bad = [p for p in self.report().problems if "KNOWN_PROVIDERS" in p]
        assert not bad, "\n".join(bad)
