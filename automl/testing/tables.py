"""Small, deterministic tables for the conformance kits: a trainer fits them in a fraction of a second."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from automl.plugin import Splits, Table, Task

__all__ = ["tiny_splits", "tiny_table"]


def tiny_table(task: Task = "classification", *, rows: int = 150, features: int = 4, seed: int = 0) -> Table:
    """A synthetic table: three well-separated classes (labels ``a``, ``b``, ``c``), or a linear target with noise.

    Numeric features only (``f0``, ``f1``...), no missing values, so any trainer can fit it.
    """
    import pandas as pd

    from automl.plugin import Table

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    if task == "classification":
        labels = np.arange(rows) % 3
        X[:, 0] += 2.5 * (labels - 1)  # the first feature separates the classes, with some overlap
        y = pd.Series(np.array(["a", "b", "c"])[labels], name="label")
    else:
        weights = np.linspace(1.0, -0.5, features)
        y = pd.Series(X @ weights * 10 + 0.5 * rng.normal(size=rows) + 50.0, name="target")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    return Table(frame, y, name=f"tiny-{task}")


def tiny_splits(task: Task = "classification", *, rows: int = 150, seed: int = 0) -> Splits:
    """:func:`tiny_table` cut into train, validation and test parts (60/20/20) as the engine cuts it."""
    from automl.plugin import split

    return split(tiny_table(task, rows=rows, seed=seed), task, valid=0.2, test=0.2, seed=seed)
