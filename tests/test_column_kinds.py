"""One function decides a column's kind (automl.column_kinds.decide_kind): a loaded table (tidy_columns, then
column_kind) and a file profiled in chunks (automl.data_profile, what validate reads) agree on every column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.data import column_kind, tidy_columns
from automl.data_profile import profile_csv


def varied(rows: int) -> pd.DataFrame:
    """One column of every kind and of every conversion reading a file makes."""
    rng = np.random.default_rng(0)
    sentences = ["alpha beta gamma delta", "one two three", "red green blue sky"]
    return pd.DataFrame({
        "ints": rng.integers(0, 5, rows), "user_id": np.arange(rows), "floats": rng.normal(size=rows),
        "flag": rng.integers(0, 2, rows).astype(bool),
        "bools_missing": pd.Series([True, False, None] * rows, dtype=object)[:rows].to_numpy(),
        "dates": [f"2024-01-{i % 28 + 1:02d}" for i in range(rows)],
        "junk_numbers": [str(i * 1.5) if i % 25 else "?" for i in range(rows)],
        "category": rng.choice(["a", "b", "c"], rows), "many": [f"v{i % 60}" for i in range(rows)],
        "code": [f"u{i}" for i in range(rows)], "text": [f"{sentences[i % 3]} {i}" for i in range(rows)],
        "target": np.arange(rows) % 2,
    })


@pytest.mark.parametrize("chunk_rows", [7, 1000])
def test_a_profiled_file_and_the_loaded_table_give_every_column_the_same_kind_and_note(
        tmp_path: Path, chunk_rows: int) -> None:
    # 121 rows in chunks of 7: the last chunk holds one row, an empty bools_missing value, which pandas reads as
    # a number; such a chunk says nothing of the column (it made the whole column categorical before).
    path = tmp_path / "varied.csv"
    varied(121).to_csv(path, index=False)
    profile = profile_csv({"path": str(path), "target": "target"}, chunk_rows=chunk_rows)
    loaded = pd.read_csv(path).drop(columns="target")
    notes = tidy_columns(loaded)
    assert profile.kinds == {c: column_kind(loaded[c]) for c in loaded.columns}
    assert profile.kinds["bools_missing"] == "numeric" and profile.kinds["dates"] == "datetime"
    assert profile.kinds["code"] == "id" and profile.kinds["text"] == "text" and profile.kinds["many"] == "high_cardinality"
    assert profile.notes[:len(notes)] == notes  # what reading changed, then what the check says


def test_a_loaded_tables_values_are_taken_as_they_are() -> None:
    frame = varied(40)
    kinds = {c: column_kind(frame[c]) for c in frame.columns}
    # Strings of True / False are a flag, dates and numbers as text are strings, until tidy_columns reads them.
    assert kinds["bools_missing"] == "flag" and kinds["dates"] == "categorical" and kinds["junk_numbers"] == "categorical"
    assert column_kind(pd.Series([None] * 30, dtype=object, name="empty")) == "categorical"
    assert column_kind(pd.Series([np.nan] * 30, name="empty")) == "numeric"
