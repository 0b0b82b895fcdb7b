"""The core stays lint- and type-clean (ruff and mypy, as the conventions ask)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff_is_clean_on_the_core() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "automl"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_mypy_is_clean_on_the_core() -> None:
    result = subprocess.run([str(BIN / "mypy"), "automl"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
