"""``skops.io``, imported without importing torch, cupy or dask.

Written by hand because no option in skops or scikit-learn does it: importing ``skops.io`` lists scikit-learn's
estimators (``sklearn.utils.all_estimators``), and that walks every scikit-learn subpackage with
``pkgutil.walk_packages``, which imports each package to look inside it, ``sklearn.externals.array_api_compat.torch``
among them. With torch installed (the torch trainer's environment) every process that saves or loads a
scikit-learn model, each trial worker among them, imported torch for nothing: about 1.6 s of a worker's 7 s of
imports on a 2-core machine. ``all_estimators`` skips everything under ``externals`` anyway, so the list skops builds
is the same without those packages (``tests/test_skops_import.py`` compares it).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["skops_io"]

_COMPAT = "sklearn.externals.array_api_compat."
_BACKENDS = frozenset({"cupy", "dask", "torch"})  # array_api_compat's wrappers that import their library


class _SkipBackendWrappers(importlib.abc.MetaPathFinder):
    """Refuse array_api_compat's wrapper of a library not imported yet (``walk_packages`` passes over an
    ImportError; a wrapper whose library is loaded already costs nothing and is left alone)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith(_COMPAT):
            backend = fullname[len(_COMPAT):].split(".")[0]
            if backend in _BACKENDS and backend not in sys.modules:
                raise ModuleNotFoundError(f"{fullname}: not imported while skops.io lists estimators", name=fullname)
        return None


def skops_io() -> ModuleType:
    """The ``skops.io`` module (imported on first use, without the array libraries its import would pull in)."""
    if "skops.io" not in sys.modules:
        finder = _SkipBackendWrappers()
        sys.meta_path.insert(0, finder)
        try:
            import skops.io  # noqa: F401
        finally:
            sys.meta_path.remove(finder)
    return sys.modules["skops.io"]
