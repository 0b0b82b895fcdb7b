"""Finding plugins: built-ins from a list, the rest through the ``automl`` entry points.

Built-in plugins go through the same hooks as third-party ones (the pytest pattern).
A plugin that fails to import is remembered with its reason and shown by
``automl plugins``; it never stops the engine unless the spec asks for what it provides.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from automl import hookspecs
from automl.errors import PluginError

__all__ = ["BUILTIN_PLUGINS", "PluginInfo", "PluginManager", "get_plugin_manager"]

#: Modules of the core's own plugins, registered through the same hooks as any other.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "automl.builtin.searchers",
    "automl.builtin.schedulers",
    "automl.builtin.datasets",
    "automl.builtin.function_trainer",
    "automl.builtin.store",
)

#: Names the first-party plugin packages provide, so a missing one can be named.
KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "searcher": {
        **{n: "automl-optuna" for n in ("tpe", "optuna-tpe", "gp", "optuna-gp", "cmaes", "nsga2", "nsga3", "qmc")},
        **{n: "automl-hyperopt" for n in ("hyperopt-tpe", "hyperopt-atpe", "hyperopt-anneal")},
        **{n: "automl-nevergrad" for n in ("ngopt", "oneplusone", "de", "pso", "ng-cma")},
        **{n: "automl-flaml" for n in ("cfo", "blendsearch")},
    },
    "trainer": {"sklearn": "automl-sklearn", "torch": "automl-torch"},
    "dataset": {
        n: "automl-sklearn"
        for n in ("iris", "digits", "wine", "breast_cancer", "diabetes", "california_housing", "linnerud")
    },
    "compressor": {n: "automl-compress" for n in ("prune", "quantize", "distill", "lowrank", "onnx")},
}

DISABLE_ENV = "AUTOML_DISABLE_PLUGINS"
T = TypeVar("T")


@dataclass
class PluginInfo:
    """One plugin as ``automl plugins`` shows it."""

    name: str
    package: str
    version: str
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    builtin: bool = False


@dataclass
class Registry(Generic[T]):
    """Records of one kind by name, each with the plugin that registered it."""

    kind: str
    records: dict[str, T]
    owners: dict[str, PluginInfo]
    failed: list[PluginInfo]

    def names(self) -> list[str]:
        return sorted(self.records)

    def get(self, name: str) -> T:
        """The record called ``name``.

        Raises:
            PluginError: Naming the valid choices, a close match, and the package to
                install or the import error when a plugin providing it is known.
        """
        if name in self.records:
            return self.records[name]
        msg = f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or '(none)'}"
        close = difflib.get_close_matches(name, self.records, n=1)
        if close:
            msg += f". Did you mean {close[0]!r}?"
        package = KNOWN_PROVIDERS.get(self.kind, {}).get(name)
        if package:
            broken = [p for p in self.failed if p.package == package or p.name == package.removeprefix("automl-")]
            if broken:
                msg += f". {package} is installed but failed to load: {broken[0].error}"
            else:
                msg += f". {name!r} is provided by the package {package}: pip install {package}"
        raise PluginError(msg)


class PluginManager:
    """The engine's pluggy manager plus the registries built from it.

    Args:
        disabled: Plugin names (entry-point names or built-in module names) not to load;
            the ``AUTOML_DISABLE_PLUGINS`` environment variable (comma-separated) adds to it.
        entry_points: Load third-party plugins from the ``automl`` entry-point group.
    """

    def __init__(self, disabled: Iterable[str] = (), *, entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        env = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        self.disabled = set(disabled) | set(env)
        self.infos: dict[str, PluginInfo] = {}
        for module in BUILTIN_PLUGINS:
            short = module.rsplit(".", 1)[-1]
            if module in self.disabled or short in self.disabled:
                continue
            self._register(module, importlib.import_module(module), _core_version(), "automl", builtin=True)
        if entry_points:
            self._load_entry_points()
        # A hook implementation whose name matches no hookspec is a typo: fail loudly.
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements an unknown hook: {exc}") from exc
        self._cache: dict[str, Registry[Any]] = {}

    def _register(self, name: str, plugin: object, version: str, package: str, builtin: bool = False) -> None:
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            self.infos[name] = PluginInfo(name, package, version, error=str(exc), builtin=builtin)
            return
        self.infos[name] = PluginInfo(name, package, version, builtin=builtin)

    def _load_entry_points(self) -> None:
        for ep in md.entry_points(group=hookspecs.PROJECT):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if ep.name in self.disabled or dist in self.disabled:
                continue
            if ep.name in self.infos:
                other = self.infos[ep.name].package
                raise PluginError(f"two plugins are named {ep.name!r}: from {other} and from {dist}")
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the engine down
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self.infos[ep.name] = PluginInfo(ep.name, dist, version, error=last)
                continue
            self._register(ep.name, plugin, version, dist)

    # -- registries -------------------------------------------------------------------

    def _collect(self, hook_name: str, kind: str) -> Registry[Any]:
        if kind in self._cache:
            return self._cache[kind]
        records: dict[str, Any] = {}
        owners: dict[str, PluginInfo] = {}
        hook = getattr(self.pm.hook, hook_name)
        # Called one implementation at a time so each record is attributed to its plugin.
        for impl in reversed(hook.get_hookimpls()):
            info = self.infos[impl.plugin_name]
            try:
                answered: Sequence[Any] = impl.function() or ()
            except Exception as exc:
                info.error = f"{hook_name} raised {type(exc).__name__}: {exc}"
                continue
            for record in answered:
                if record.name in records:
                    first = owners[record.name]
                    raise PluginError(
                        f"two plugins register the {kind} {record.name!r}: "
                        f"{first.package} ({first.name}) and {info.package} ({info.name}); "
                        f"disable one with --disable-plugin NAME"
                    )
                records[record.name] = record
                owners[record.name] = info
                info.provides.setdefault(kind, []).append(record.name)
        failed = [i for i in self.infos.values() if i.error]
        self._cache[kind] = Registry(kind, records, owners, failed)
        return self._cache[kind]

    @property
    def searchers(self) -> Registry[Any]:
        return self._collect("automl_register_searchers", "searcher")

    @property
    def trainers(self) -> Registry[Any]:
        return self._collect("automl_register_trainers", "trainer")

    @property
    def schedulers(self) -> Registry[Any]:
        return self._collect("automl_register_schedulers", "scheduler")

    @property
    def datasets(self) -> Registry[Any]:
        return self._collect("automl_register_datasets", "dataset")

    @property
    def compressors(self) -> Registry[Any]:
        return self._collect("automl_register_compressors", "compressor")

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or not, with what it provides."""
        # Building the registries fills each plugin's ``provides``.
        _ = (self.searchers, self.schedulers, self.trainers, self.datasets, self.compressors)
        for impl in self.pm.hook.automl_open_store.get_hookimpls():
            what = getattr(impl.plugin, "STORE_URLS", "results store")
            self.infos[impl.plugin_name].provides.setdefault("store", [what])
        return sorted(self.infos.values(), key=lambda i: (not i.builtin, i.name))

    def version_of(self, kind: str, name: str) -> str:
        """``package==version`` of the plugin providing ``name``."""
        registry: Registry[Any] = self._collect(
            {"searcher": "automl_register_searchers", "trainer": "automl_register_trainers",
             "dataset": "automl_register_datasets", "compressor": "automl_register_compressors",
             "scheduler": "automl_register_schedulers"}[kind],
            kind,
        )
        info = registry.owners.get(name)
        return f"{info.package}=={info.version}" if info else "?"

    def open_store(self, url: str) -> Any:
        store = self.pm.hook.automl_open_store(url=url)
        if store is None:
            raise PluginError(f"no plugin can open the store {url!r}")
        return store

    def notify(self, name: str, **kwargs: Any) -> None:
        getattr(self.pm.hook, name)(**kwargs)


def _core_version() -> str:
    try:
        return md.version("automl")
    except md.PackageNotFoundError:
        return "0+unknown"


_default: dict[tuple[str, ...], PluginManager] = {}


def get_plugin_manager(disabled: Iterable[str] = ()) -> PluginManager:
    """A process-wide manager per set of disabled plugins (loading entry points costs time)."""
    key = tuple(sorted(set(disabled) | {n for n in os.environ.get(DISABLE_ENV, "").split(",") if n}))
    if key not in _default:
        _default[key] = PluginManager(disabled)
    return _default[key]


def lazy_import(module: str, package: str) -> Callable[[], Any]:
    """Import ``module`` when first needed, saying which package to install when it is missing."""

    def load() -> Any:
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise PluginError(f"{module} is not installed: pip install {package}") from exc

    return load
