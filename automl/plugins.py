"""Finding plugins: built-ins from a list, the rest through the ``automl`` entry points.

Built-in plugins go through the same hooks as third-party ones (the pytest pattern).
A faulty plugin never stops the engine unless the spec asks for what it provides (the
pytest pattern again: report the broken plugin, run the rest):

- one that fails to import, or implements a hook name no hookspec has (a typo), is
  remembered with its reason and loads nothing; ``automl plugins`` lists it;
- two plugins registering the same name fail only the specs that use that name;
- an observer hook (``automl_trial_result``, ``automl_search_end``) that raises is
  recorded (:class:`HookFailures`) and the search goes on, unless strict.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import logging
import os
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from automl import hookspecs
from automl.errors import AutoMLError, PluginError
from automl.interfaces import CompressorSpec, DatasetSpec, SchedulerSpec, SearcherSpec, TrainerSpec

__all__ = ["BUILTIN_PLUGINS", "HookFailure", "HookFailures", "PluginInfo", "PluginManager", "get_plugin_manager"]

log = logging.getLogger("automl")

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
        **{n: "automl-optuna" for n in ("tpe", "optuna-tpe", "gp", "optuna-gp", "cmaes", "nsga2", "nsga3", "qmc", "bohb")},
        **{n: "automl-hyperopt" for n in ("hyperopt-tpe", "hyperopt-atpe", "hyperopt-anneal")},
        **{n: "automl-nevergrad" for n in ("ngopt", "oneplusone", "de", "pso", "ng-cma")},
        **{n: "automl-flaml" for n in ("cfo", "blendsearch", "learners")},
    },
    "trainer": {"sklearn": "automl-sklearn", "torch": "automl-torch"},
    "dataset": {
        n: "automl-sklearn"
        for n in ("iris", "digits", "wine", "breast_cancer", "diabetes")
    },
    "compressor": {n: "automl-compress" for n in ("prune", "quantize", "distill", "lowrank", "onnx")},
}

DISABLE_ENV = "AUTOML_DISABLE_PLUGINS"
T = TypeVar("T")

#: Hooks that tell plugins what happened; :meth:`PluginManager.notify` calls them one implementation at a time.
OBSERVER_HOOKS: tuple[str, ...] = ("automl_trial_result", "automl_search_end")

#: The record class each registry hook returns, by kind.
RECORD_TYPES: dict[str, type] = {
    "searcher": SearcherSpec, "trainer": TrainerSpec, "scheduler": SchedulerSpec, "dataset": DatasetSpec,
    "compressor": CompressorSpec,
}

#: The registry hook of each kind of named record.
REGISTRY_HOOKS: dict[str, str] = {
    "searcher": "automl_register_searchers",
    "trainer": "automl_register_trainers",
    "scheduler": "automl_register_schedulers",
    "dataset": "automl_register_datasets",
    "compressor": "automl_register_compressors",
}


@dataclass
class PluginInfo:
    """One plugin as ``automl plugins`` shows it."""

    name: str
    package: str
    version: str
    provides: dict[str, list[str]] = field(default_factory=dict)
    #: Why nothing (or not everything) of this plugin loaded: an import error, an unknown hook name,
    #: a registration hook that raised.
    error: str | None = None
    builtin: bool = False
    #: Names this plugin registers that another plugin registers too (each such name is unusable).
    clashes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``package version (entry point NAME)``, or ``automl (built in, MODULE)``."""
        if self.builtin:
            return f"{self.package} (built in, {self.name})"
        return f"{self.package} {self.version} (entry point {self.name!r})"


@dataclass
class Registry(Generic[T]):
    """Records of one kind by name, each with the plugin that registered it."""

    kind: str
    records: dict[str, T]
    owners: dict[str, PluginInfo]
    failed: list[PluginInfo]
    #: Names registered by more than one plugin, with every plugin registering each: unusable until
    #: all but one are disabled.
    clashes: dict[str, list[PluginInfo]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.records)

    def clash_message(self, name: str) -> str:
        """Which plugins register ``name`` and how to disable one."""
        owners = self.clashes[name]
        outside = [o for o in owners if not o.builtin] or owners
        how = " or ".join(f"{DISABLE_ENV}={o.name} (or --disable-plugin {o.name})" for o in outside)
        return (f"two plugins register the {self.kind} {name!r}: {' and '.join(o.label for o in owners)}; "
                f"disable one to use the name: {how}")

    def get(self, name: str) -> T:
        """The record called ``name``.

        Raises:
            PluginError: Naming the valid choices, a close match, and the package to
                install or the import error when a plugin providing it is known.
        """
        if name in self.records:
            return self.records[name]
        if name in self.clashes:
            raise PluginError(self.clash_message(name))
        msg = f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or '(none)'}"
        close = difflib.get_close_matches(name, self.records, n=1)
        if close:
            msg += f". Did you mean {close[0]!r}?"
        package = KNOWN_PROVIDERS.get(self.kind, {}).get(name)
        if package:
            broken = [p for p in self.failed if p.package == package or p.name == package.removeprefix("automl-")]
            if broken:
                msg += f". {package} is installed but failed to load: {broken[0].error}"
                raise PluginError(msg)
            msg += f". {name!r} is provided by the package {package}: pip install {package}"
        # Any third-party plugin that did not load may be the one that provides the name.
        broken = [p for p in self.failed if not p.builtin]
        if broken:
            msg += ". Plugins that failed to load: " + "; ".join(f"{p.label}: {p.error}" for p in broken)
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
        #: Plugins not loaded because they are disabled, by name (a missing name's error says so).
        self.skipped: dict[str, PluginInfo] = {}
        for module in BUILTIN_PLUGINS:
            short = module.rsplit(".", 1)[-1]
            if module in self.disabled or short in self.disabled:
                self.skipped[module] = PluginInfo(module, "automl", _core_version(), builtin=True)
                continue
            self._register(module, importlib.import_module(module), _core_version(), "automl", builtin=True)
        if entry_points:
            self._load_entry_points()
        self._cache: dict[str, Registry[Any]] = {}
        self._observing = HookFailures()

    def _register(self, name: str, plugin: object, version: str, package: str, builtin: bool = False) -> None:
        """Register one plugin; one that pluggy refuses or that implements an unknown hook loads nothing."""
        info = PluginInfo(name, package, version, builtin=builtin)
        self.infos[name] = info
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            # pluggy's message spans lines (plugin and hook, the definition, what is wrong): one line here.
            info.error = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            return
        # A hook implementation whose name matches no hookspec is a typo (pluggy leaves it pending): the
        # plugin is unregistered whole, since half of it (its trainer without its searcher) would fail later
        # with a confusing "unknown searcher".
        unknown = sorted(c.name for c in self.pm.get_hookcallers(plugin) or () if not c.has_spec())
        if unknown:
            self.pm.unregister(plugin)
            info.error = "; ".join(self._unknown_hook(n) for n in unknown) + "; nothing from this plugin is loaded"

    def _unknown_hook(self, name: str) -> str:
        specs = [n for n in dir(hookspecs) if n.startswith(f"{hookspecs.PROJECT}_")]
        close = difflib.get_close_matches(name, specs, n=1)
        return f"unknown hook {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")

    def _load_entry_points(self) -> None:
        for ep in md.entry_points(group=hookspecs.PROJECT):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if ep.name in self.disabled or dist in self.disabled:
                self.skipped[ep.name] = PluginInfo(ep.name, dist, version)
                continue
            if ep.name in self.infos:  # an entry point name is a plugin's identity (and what disables it)
                other = self.infos[ep.name]
                key = f"{ep.name} ({dist})"
                self.infos[key] = PluginInfo(
                    key, dist, version, error=f"not loaded: the plugin name {ep.name!r} is taken by {other.label}; "
                                              f"disable one with {DISABLE_ENV}={dist} (or {other.package})")
                continue
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # a broken plugin must not take the engine down
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self.infos[ep.name] = PluginInfo(ep.name, dist, version, error=f"failed to import: {last}")
                continue
            self._register(ep.name, plugin, version, dist)

    # -- registries -------------------------------------------------------------------

    def _collect(self, hook_name: str, kind: str) -> Registry[Any]:
        if kind in self._cache:
            return self._cache[kind]
        records: dict[str, Any] = {}
        owners: dict[str, PluginInfo] = {}
        clashes: dict[str, list[PluginInfo]] = {}
        hook = getattr(self.pm.hook, hook_name)
        # Called one implementation at a time so each record is attributed to its plugin.
        for impl in reversed(hook.get_hookimpls()):
            info = self.infos[impl.plugin_name]
            try:
                answered: Sequence[Any] = list(impl.function() or ())
            except Exception as exc:
                info.error = f"{hook_name} raised {type(exc).__name__}: {exc}".splitlines()[0]
                continue
            wrong = [r for r in answered if not isinstance(r, RECORD_TYPES[kind])]
            if wrong:  # checked here: a bad record must not break every command later
                info.error = (f"{hook_name} returned a {type(wrong[0]).__name__}, not a "
                              f"{RECORD_TYPES[kind].__name__}; nothing of this kind from it is loaded")
                continue
            for record in answered:
                problem = record.signature_problem() if isinstance(record, SchedulerSpec) else None
                if problem:  # checked here, naming the plugin, rather than as a TypeError in every search using it
                    info.error = f"{kind} {record.name!r} is not loaded: {problem}"
                    continue
                info.provides.setdefault(kind, []).append(record.name)
                if record.name in owners:  # unusable, but only by the specs that ask for it
                    clashes.setdefault(record.name, [owners[record.name]]).append(info)
                    continue
                records[record.name] = record
                owners[record.name] = info
        registry: Registry[Any] = Registry(kind, records, owners, [], clashes)
        for name, infos in clashes.items():
            del records[name], owners[name]
            for info in infos:
                others = ", ".join(o.label for o in infos if o is not info)
                info.clashes.append(f"{kind} {name!r} is also registered by {others}")
        registry.failed = [i for i in self.infos.values() if i.error]
        self._cache[kind] = registry
        return registry

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
        for hook in OBSERVER_HOOKS:
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                hooks = self.infos[impl.plugin_name].provides.setdefault("hooks", [])
                if hook not in hooks:
                    hooks.append(hook)
        return sorted(self.infos.values(), key=lambda i: (not i.builtin, i.name))

    def clash_messages(self) -> list[str]:
        """One line per name that several plugins register: which plugins, and how to disable one."""
        return [registry.clash_message(name) for registry in map(self.registry, REGISTRY_HOOKS)
                for name in sorted(registry.clashes)]

    def registry(self, kind: str) -> Registry[Any]:
        """The registry of ``kind`` (``searcher``, ``trainer``, ``scheduler``, ``dataset``, ``compressor``)."""
        return self._collect(REGISTRY_HOOKS[kind], kind)

    def version_of(self, kind: str, name: str) -> str:
        """``package==version`` of the plugin providing ``name``."""
        info = self.registry(kind).owners.get(name)
        return f"{info.package}=={info.version}" if info else "?"

    def check_recorded(self, versions: Mapping[str, str], action: str) -> None:
        """Refuse to ``action`` a stored run whose plugins are not all usable now, naming what the run used.

        Args:
            versions: The run's recorded ``{"trainer:sklearn": "automl-sklearn==0.1.0", ...}``.
            action: What is refused, for the message (``resume runs/x``).

        Raises:
            PluginError: Naming the kind, the name and the ``package==version`` the store recorded,
                and why it is unusable now (not installed, disabled, failed to load, clashes).
        """
        for key, recorded in sorted(versions.items()):
            kind, _, name = key.partition(":")
            if kind not in REGISTRY_HOOKS or not name:
                continue
            why = self.unusable(kind, name, recorded)
            if why is not None:
                raise PluginError(f"cannot {action}: the run used the {kind} {name!r} from {recorded}; {why}")

    def unusable(self, kind: str, name: str, recorded: str) -> str | None:
        """Why the ``kind`` ``name`` a stored run got from ``recorded`` (``package==version``) cannot be had
        now (not installed, disabled, failed to load, clashes), or None when it can."""
        registry = self.registry(kind)
        if name in registry.records:
            return None
        package = recorded.partition("==")[0]
        if name in registry.clashes:
            return registry.clash_message(name)
        if any(p.package == package for p in self.skipped.values()):
            names = ", ".join(n for n, p in self.skipped.items() if p.package == package)
            return f"{package} is disabled ({DISABLE_ENV} or --disable-plugin: {names})"
        if broken := [p for p in registry.failed if p.package == package]:
            return f"{package} is installed but failed to load: {broken[0].error}"
        installed = _dist_version(package)
        if installed:
            return f"{package} {installed} is installed but does not provide it"
        return f"{package} is not installed: pip install '{recorded}'"

    def open_store(self, url: str) -> Any:
        """The store at ``url`` from the first plugin that answers (pluggy's order: ``tryfirst`` first, the
        built-in SQL store last).

        Raises:
            PluginError: When no plugin answers, or a plugin other than the core raises (naming its package);
                the core's own :class:`~automl.errors.AutoMLError` (a bad URL) passes through unchanged.
        """
        for impl in reversed(self.pm.hook.automl_open_store.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            info = self.infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "?", "?")
            try:
                store = impl.function(*[{"url": url}[arg] for arg in impl.argnames])
            except AutoMLError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {info.label} raised in automl_open_store for {url!r}: "
                                  f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
            if store is not None:
                return store
        raise PluginError(f"no plugin can open the store {url!r}")

    # -- observer hooks -----------------------------------------------------------------

    def observe(self, *, strict: bool = False) -> HookFailures:
        """Start collecting the observer hooks' failures afresh (one search); ``strict``: raise the first."""
        self._observing = HookFailures(strict=strict)
        return self._observing

    def notify(self, name: str, **kwargs: Any) -> None:
        """Call every implementation of the observer hook ``name``, each on its own.

        An implementation that raises does not stop the others nor the caller: its failure is
        recorded in the :class:`HookFailures` of :meth:`observe` (a warning line the first time
        for each plugin and hook). When that collection is strict, the failure is raised instead,
        as a :class:`PluginError` naming the plugin's package and the hook.
        """
        hook = getattr(self.pm.hook, name)
        # pluggy calls the last registered first; wrappers are not called (observers need none).
        for impl in reversed(hook.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                info = self.infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "?", "?")
                self._observing.record(info, name, exc)


@dataclass
class HookFailure:
    """An observer hook implementation that raised during a search (first error and count)."""

    plugin: str
    package: str
    hook: str
    error: str
    count: int = 1

    def line(self) -> str:
        times = f" ({self.count} times)" if self.count > 1 else ""
        return f"plugin {self.package} ({self.plugin}): {self.hook} raised {self.error}{times}"


@dataclass
class HookFailures:
    """The observer hooks' failures of one search, kept for the run's summary (``plugin_errors``).

    Args:
        strict: Raise the first failure (``--strict-plugins``) instead of recording it and going on.
    """

    strict: bool = False
    failures: dict[tuple[str, str], HookFailure] = field(default_factory=dict)
    #: The error raised under ``strict`` (Ray Tune wraps what its callbacks raise: :meth:`reraise` unwraps).
    fatal: PluginError | None = None

    def record(self, info: PluginInfo, hook: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500]
        package = f"{info.package}=={info.version}" if info.version != "?" else info.package
        key = (info.name, hook)
        if key in self.failures:
            self.failures[key].count += 1
        else:
            self.failures[key] = HookFailure(info.name, package, hook, error)
        failure = self.failures[key]
        if self.strict:
            self.fatal = PluginError(f"{failure.line()}; stopped by --strict-plugins (completed trials are kept: "
                                     "fix or disable the plugin, then automl resume RUN_DIR)")
            raise self.fatal from None
        if failure.count == 1:
            log.warning("automl: %s; the search goes on (its later failures are counted in the run's summary, "
                        "--strict-plugins makes them fatal)", failure.line())

    def reraise(self) -> None:
        """Raise the strict failure, if one ended the search (whatever wrapped it on the way)."""
        if self.fatal is not None:
            raise self.fatal from None

    def summary(self) -> dict[str, Any]:
        """``{"plugin_errors": [...]}`` for the run's summary (empty when no hook failed)."""
        if not self.failures:
            return {}
        return {"plugin_errors": [vars(f) | {"message": f.line()} for f in self.failures.values()]}


def _dist_version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


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
