"""Running a kit's checks without pytest collecting them: for tests of the kits themselves and quick tries."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CheckResult", "failed_checks", "run_checks"]


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``passed``, ``failed`` (with the assertion or error) or ``skipped`` (with the reason)."""

    name: str
    outcome: str
    message: str = ""


def run_checks(kit: type, *, only: Iterable[str] | None = None, **attributes: Any) -> dict[str, CheckResult]:
    """Run every ``test_*`` method of a kit class (or its subclass) and return each one's result.

    Args:
        kit: A conformance class, e.g. a subclass of :class:`~automl.testing.TrainerConformance`.
        only: Names of the checks to run (default: all).
        **attributes: Class attributes to set for this run (``trainer="sklearn"``...).

    A check that takes ``tmp_path`` gets a fresh temporary directory, removed afterwards.
    """
    cls = type(f"{kit.__name__}Run", (kit,), dict(attributes)) if attributes else kit
    names = sorted(n for n in dir(cls) if n.startswith("test_") and callable(getattr(cls, n)))
    if only is not None:
        wanted = set(only)
        unknown = wanted - set(names)
        if unknown:
            raise ValueError(f"{kit.__name__} has no check(s) {sorted(unknown)}; it has {names}")
        names = [n for n in names if n in wanted]
    results: dict[str, CheckResult] = {}
    for name in names:
        instance = cls()
        method = getattr(instance, name)
        with tempfile.TemporaryDirectory(prefix="automl-kit-") as tmp:
            kwargs = {"tmp_path": Path(tmp)} if "tmp_path" in inspect.signature(method).parameters else {}
            try:
                method(**kwargs)
            except pytest.skip.Exception as exc:
                results[name] = CheckResult(name, "skipped", str(exc))
            except pytest.fail.Exception as exc:
                results[name] = CheckResult(name, "failed", f"Failed: {exc}")
            except Exception as exc:  # an assertion or any error the thing under test raised
                results[name] = CheckResult(name, "failed", f"{type(exc).__name__}: {exc}")
            else:
                results[name] = CheckResult(name, "passed")
    return results


def failed_checks(results: dict[str, CheckResult]) -> dict[str, str]:
    """The failed checks of :func:`run_checks`' results, with their messages."""
    return {name: r.message for name, r in results.items() if r.outcome == "failed"}
