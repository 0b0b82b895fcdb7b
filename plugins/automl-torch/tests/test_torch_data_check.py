"""The torch trainer refuses data it cannot train on when the table is loaded (``automl validate``), naming the columns."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from automl.plugin import DataError

SPEC = """
    task: classification
    data: {{csv: {csv}, target: label}}
    trainer: {{name: torch, params: {{epochs: 1}}}}
    searcher: {{name: random}}
    space:
      lr: {{type: float, low: 0.001, high: 0.01}}
    budget: {{trials: 1}}
"""


def _csv(tmp_path: Path, text_column: bool) -> Path:
    rows = ["x,city,label"] + [f"{i * 0.1},{['Paris', 'Lyon'][i % 2] if text_column else i % 3},{i % 2}"
                               for i in range(40)]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_validate_refuses_a_text_column_naming_it(write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    spec = write_spec(SPEC.format(csv=_csv(tmp_path, True)))
    with pytest.raises(DataError, match=r"trainer 'torch' cannot train on data 'csv'.*'city' is (object|str)"):
        automl.validate(spec)
    done = subprocess.run([str(Path(sys.executable).with_name("automl")), "validate", str(spec)], capture_output=True, text=True)
    assert done.returncode == 2 and "city" in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_numeric_columns_pass(write_spec: Callable[[str], Path], tmp_path: Path) -> None:
    assert automl.validate(write_spec(SPEC.format(csv=_csv(tmp_path, False)))).trainer.name == "torch"
