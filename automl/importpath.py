"""Import paths in specs (``package.module:attribute``): user code that trials call.

One resolver for the engine and plugins (the ``function`` trainer's ``function``, the torch
trainer's custom ``network``), so every import-path error reads the same way.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["import_callable"]


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
