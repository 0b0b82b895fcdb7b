"""Import paths in specs (``package.module:attribute``): user code that trials call.

One resolver for the engine and plugins (the ``function`` trainer's ``function``, the torch
trainer's custom ``network``), so every import-path error reads the same way.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.machinery import PathFinder
from typing import Any

__all__ = ["import_callable", "module_exists", "without_imports"]

# False while `automl validate` checks a spec without running user code (see without_imports).
_IMPORTING: ContextVar[bool] = ContextVar("automl_import_user_code", default=True)


@contextmanager
def without_imports() -> Iterator[None]:
    """Within this block :func:`import_callable` imports no module that is not imported yet: it checks that
    the module can be found (:func:`module_exists`) and returns a stand-in that refuses to be called."""
    token = _IMPORTING.set(False)
    try:
        yield
    finally:
        _IMPORTING.reset(token)


def module_exists(name: str) -> bool:
    """Whether module ``name`` can be imported as far as finding it goes, executing none of its code.

    ``importlib.util.find_spec("a.b")`` imports the package ``a`` (its ``__init__`` runs), so each
    level is looked up in its parent's directories instead.
    """
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return False
    try:
        found = importlib.util.find_spec(parts[0])
        for i in range(1, len(parts)):
            if found is None or found.submodule_search_locations is None:
                return False
            full = ".".join(parts[: i + 1])
            module = sys.modules.get(full)
            found = module.__spec__ if module is not None else PathFinder.find_spec(full, found.submodule_search_locations)
    except (ImportError, ValueError):
        return False
    return found is not None


def _not_imported(path: str, what: str) -> Callable[..., Any]:
    def not_imported(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{what} {path!r} was checked without importing it (automl validate); it cannot be called")

    return not_imported


def import_callable(path: str, *, what: str = "import path") -> Callable[..., Any]:
    """Import ``module:attribute`` (``module.attribute`` also accepted) and return it.

    Args:
        path: The import path; the attribute may be dotted (``module:Class.method``).
        what: How error messages name the setting (e.g. ``"network 'x:y'"``).

    Raises:
        ValueError: When the path is malformed, the module cannot be imported, the
            attribute is missing (with the closest name) or the object is not callable.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{what} {path!r}: write an import path as 'package.module:function'")
    if not _IMPORTING.get() and module_name not in sys.modules:
        if not module_exists(module_name):
            raise ValueError(
                f"{what} {path!r}: cannot find module {module_name!r} (looked for without importing it); it must "
                "be importable (installed, or on PYTHONPATH, or under the spec's paths) on every machine that runs "
                "trials"
            )
        return _not_imported(path, what)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"{what} {path!r}: cannot import module {module_name!r} ({exc}); it must be importable "
            "(installed, or on PYTHONPATH, or under the spec's paths) on every machine that runs trials"
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            raise ValueError(
                f"{what} {path!r}: {module_name!r} has no attribute {part!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
            )
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{what} {path!r} is a {type(target).__name__}, not a function or class")
    return target  # type: ignore[no-any-return]
