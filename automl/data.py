"""Tables, splits and the built-in CSV and Parquet sources.

Data reaches trainers as pandas frames: every row of a source as a :class:`Table`, cut
by the engine into train, validation and test parts (stratified for classification)
with the spec's seed, so every trial and every trainer sees the same split. With
``data.folds: K`` the split also says that trainers able to cross-validate should do K-fold
cross-validation over the train and validation parts together (with :attr:`Splits.seed`,
so every trial gets the same folds); a trainer that does not still has a real hold-out.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.errors import DataError

__all__ = ["Part", "Splits", "Table", "check_csv", "check_parquet", "load_csv", "load_parquet", "split"]


@dataclass
class Table:
    """Features ``X`` and target ``y`` of a whole data source."""

    X: pd.DataFrame
    y: pd.Series
    name: str = ""


@dataclass
class Part:
    X: pd.DataFrame
    y: pd.Series

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    """The train, validation and test parts of one table."""

    train: Part
    valid: Part
    test: Part
    task: str
    name: str = ""
    #: Cross-validation folds over train + valid (0: the hold-out ``valid`` part is the validation).
    folds: int = 0
    #: The seed the split was made with; the seed of the folds too.
    seed: int = 0

    @property
    def classes(self) -> list[Any]:
        return sorted(pd.unique(self.train.y).tolist()) if self.task == "classification" else []


def check_table(table: Table, task: str) -> None:
    """Refuse data a task cannot learn from, with the reason."""
    if len(table.y) < 10:
        raise DataError(f"data set {table.name!r} has {len(table.y)} rows; at least 10 are needed")
    empty = [c for c in table.X.columns if table.X[c].isna().all()]
    if empty:
        raise DataError(f"column(s) {empty} of {table.name!r} are entirely empty: drop them from the data")
    if table.y.isna().any():
        raise DataError(f"the target of {table.name!r} has {int(table.y.isna().sum())} missing values")
    if task == "classification":
        counts = table.y.value_counts()
        if len(counts) < 2:
            raise DataError(f"the target of {table.name!r} has a single class ({counts.index[0]!r}): nothing to classify")
    elif not pd.api.types.is_numeric_dtype(table.y):
        raise DataError(
            f"task is regression but the target of {table.name!r} is not numeric "
            f"(dtype {table.y.dtype}); use task: classification or a numeric target"
        )


def split(table: Table, task: str, *, valid: float, test: float, seed: int, folds: int = 0) -> Splits:
    """Cut ``table`` into train / validation / test parts.

    Classification splits are stratified: each class is shuffled and cut in the same
    proportions, with at least one row of each class in train. Written here rather than
    taken from scikit-learn so that the core does not depend on it.

    Raises:
        DataError: When a part would be empty, or ``folds`` exceeds the rows of a class
            (of all rows, for regression) left for cross-validation.
    """
    rng = np.random.default_rng(seed)
    n = len(table.y)
    if task == "classification":
        groups = [np.flatnonzero((table.y == c).to_numpy()) for c in pd.unique(table.y)]
    else:
        groups = [np.arange(n)]
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test))
        n_valid = int(round(len(idx) * valid))
        if len(idx) - n_test - n_valid < 1:
            n_test = n_valid = 0 if len(idx) < 3 else 1
        parts["test"].append(idx[:n_test])
        parts["valid"].append(idx[n_test : n_test + n_valid])
        parts["train"].append(idx[n_test + n_valid :])
    made = {}
    for key, chunks in parts.items():
        rows = np.sort(np.concatenate(chunks)) if chunks else np.array([], dtype=int)
        if len(rows) == 0 and key != "test":
            raise DataError(f"the {key} split of {table.name!r} is empty: use more data or a larger fraction")
        made[key] = Part(table.X.iloc[rows].reset_index(drop=True), table.y.iloc[rows].reset_index(drop=True))
    if folds:
        _check_folds(pd.concat([made["train"].y, made["valid"].y]), task, folds, table.name)
    return Splits(made["train"], made["valid"], made["test"], task=task, name=table.name, folds=folds, seed=seed)


def _check_folds(y: pd.Series, task: str, folds: int, name: str) -> None:
    """Every fold needs rows of every class (stratified K-fold needs K rows of each class)."""
    if task == "classification":
        counts = y.value_counts()
        small = counts[counts < folds]
        if len(small):
            shown = ", ".join(f"{label!r}: {n}" for label, n in small.items())
            raise DataError(
                f"data.folds is {folds}, but the rows of {name!r} left for cross-validation (all but the test "
                f"part) hold fewer than {folds} rows of class(es) {shown}; use folds <= {int(counts.min())} "
                f"or add rows of those classes"
            )
    elif len(y) < folds:
        raise DataError(f"data.folds is {folds}, but {name!r} has only {len(y)} rows left for cross-validation")


def check_csv(options: Mapping[str, Any]) -> None:
    """Check a CSV source without reading it all: the file exists and has the target column."""
    path = Path(str(options.get("path", "")))
    target = options.get("target")
    if not path.is_file():
        raise ValueError(f"CSV file {str(path)!r} does not exist")
    if not target:
        raise ValueError("a CSV source needs `target:` naming its target column")
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
    if target not in header:
        raise ValueError(f"CSV file {str(path)!r} has no column {target!r}; its columns are {header}")


def load_csv(options: Mapping[str, Any]) -> Table:
    """Read a CSV file with a header row; ``options``: ``path``, ``target``."""
    check_csv(options)
    path = Path(str(options["path"]))
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CSV file {str(path)!r}: {exc}") from exc
    target = str(options["target"])
    return Table(frame.drop(columns=[target]), frame[target], name=path.name)


def check_parquet(options: Mapping[str, Any]) -> None:
    """Check a Parquet source from its schema only: the file exists and has the target column."""
    path = Path(str(options.get("path", "")))
    target = options.get("target")
    if not path.is_file():
        raise ValueError(f"Parquet file {str(path)!r} does not exist")
    if not target:
        raise ValueError("a Parquet source needs `target:` naming its target column")
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError("reading Parquet files needs pyarrow: pip install pyarrow") from exc
    try:
        columns = list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises its own error types for files that are not Parquet
        raise ValueError(f"cannot read Parquet file {str(path)!r}: {exc}") from exc
    if target not in columns:
        raise ValueError(f"Parquet file {str(path)!r} has no column {target!r}; its columns are {columns}")


def load_parquet(options: Mapping[str, Any]) -> Table:
    """Read a Parquet file; ``options``: ``path``, ``target``."""
    check_parquet(options)
    path = Path(str(options["path"]))
    frame = pd.read_parquet(path)
    target = str(options["target"])
    return Table(frame.drop(columns=[target]), frame[target], name=path.name)
