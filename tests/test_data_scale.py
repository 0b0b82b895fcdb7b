"""Data at scale (issue 17): validate refuses tables nothing can learn from, naming the file and column, and
reads a CSV in chunks (its profile), never the whole table; the profile says what the loaded table says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import automl
from automl import data_profile
from automl.data import Table, check_table, load_csv, summarize
from automl.data_profile import profile_csv
from automl.errors import SpecError

N = 300


def messy(n: int = N) -> pd.DataFrame:
    """A column of every kind a real export has; a few kinds appear only in some chunks (the junk, the blanks)."""
    rng = np.random.default_rng(1)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[rng.choice(n, 20, replace=False)] = None
    frame = pd.DataFrame({
        "customer_id": np.arange(5000, 5000 + n),
        "ref": [f"R{i:05d}" for i in rng.permutation(n)],
        "size": rng.normal(size=n),
        "colour": colour,
        "city": [f"city{i}" for i in rng.integers(0, 120, n)],
        "member": rng.choice([True, False], n),
        "newsletter": rng.choice(["True", "False", ""], n),
        "answer": rng.choice(["yes", "no"], n),
        "weight": [str(round(v, 2)) for v in rng.normal(70, 10, n)],
        "comment": [f"the customer wrote message {i} about the order" for i in range(n)],
        "signup": pd.date_range("2020-01-01", periods=n, freq="3D").strftime("%Y-%m-%d"),
        "label": rng.choice(["good", "bad"], n),
    })
    frame.loc[[5, 250], "weight"] = "?"  # in the first and the last chunk of 64 rows only
    frame.loc[100, "newsletter"] = ""
    return frame


def spec_for(tmp_path: Path, csv: str, *, space: bool = False, task: str = "classification") -> Path:
    spec = tmp_path / "spec.yaml"
    text = f"task: {task}\ndata: {{csv: {csv}, target: label}}\ntrainer: {{name: sklearn}}\nbudget: {{trials: 2}}\n"
    spec.write_text(text + ("space: {model: {type: choice, values: [tree]}}\n" if space else ""))
    return spec


def test_the_profile_read_in_chunks_says_what_the_loaded_table_says(tmp_path: Path) -> None:
    messy().to_csv(tmp_path / "rows.csv", index=False)
    options = {"path": tmp_path / "rows.csv", "target": "label"}
    profile = profile_csv(options, chunk_rows=64)
    assert profile.chunks == 5 and profile.rows == N
    says_what_the_table_says(profile, load_csv(options))


def says_what_the_table_says(profile: data_profile.Profile, table: Table) -> None:
    check_table(table, "classification")
    assert profile.features == list(table.X.columns)
    assert profile.summary("classification") == summarize(table, "classification")
    assert profile.notes == table.notes
    assert profile.classes == table.y.value_counts().to_dict()


def test_validate_reads_a_csv_in_chunks_and_never_loads_the_table(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_profile, "CHUNK_ROWS", 64)
    messy().to_csv(tmp_path / "rows.csv", index=False)
    for space in (False, True):  # the trainer's default space (it depends on the data), and the spec's
        plan = automl.validate(spec_for(tmp_path, "rows.csv", space=space))
        assert plan._table is None  # the driver never held the table
        profile = plan.profile()
        assert profile is not None and profile.chunks == 5 and profile.chunk_rows == 64
        assert any("'ref'" in note and "(an ID): dropped" in note for note in plan.notes)
    assert plan.load_data() is not None and plan._table is None  # a search splits the rows, then keeps the parts


def test_a_parquet_file_is_profiled_in_chunks_as_its_loaded_table(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    from automl.data import load_parquet
    from automl.data_profile import profile_parquet

    frame = messy()
    frame.index = [f"row{i}" for i in range(N)]  # an index pandas stores as a column of the file: not a feature
    frame.to_parquet(tmp_path / "rows.parquet")
    options = {"path": tmp_path / "rows.parquet", "target": "label"}
    profile = profile_parquet(options, chunk_rows=64)
    assert profile.chunks == 5 and profile.rows == N and "__index_level_0__" not in profile.header
    says_what_the_table_says(profile, load_parquet(options))
    # validate reads it in chunks too, and never holds the table.
    monkeypatch.setattr(data_profile, "CHUNK_ROWS", 64)
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: classification\ndata: {parquet: rows.parquet, target: label}\ntrainer: {name: sklearn}\n"
                    "budget: {trials: 2}\n")
    plan = automl.validate(spec)
    assert plan._table is None and plan.profile() is not None and plan.profile().chunks == 5
    assert any("'ref'" in note and "(an ID): dropped" in note for note in plan.notes)


def refusal(tmp_path: Path, text: str, *, task: str = "classification") -> str:
    (tmp_path / "rows.csv").write_text(text)
    with pytest.raises(SpecError) as info:
        automl.validate(spec_for(tmp_path, "rows.csv", task=task))
    message = str(info.value)
    assert "rows.csv" in message and "data.csv" in message  # the data file, and the spec's line naming it
    return message


def test_validate_refuses_tables_nothing_can_learn_from_naming_the_column(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(30))
    assert "no feature column: its only column is the target 'label'" in refusal(
        tmp_path, "label\n" + "a\nb\n" * 15)
    message = refusal(tmp_path, "x,y,x,label\n" + "".join(f"{i},1,{i},{'ab'[i % 2]}\n" for i in range(30)))
    assert "duplicate column names: 'x' at columns 1, 3" in message and "'x.1'" in message
    message = refusal(tmp_path, "x,label,y,label\n" + rows.replace("\n", ",c\n"))
    assert "'label' at columns 2, 4" in message
    assert "has no column 'label'" in refusal(tmp_path, "x,y,kind\n" + rows)
    message = refusal(tmp_path, "x,y,label\n" + "".join(f"{i},{i % 3},same\n" for i in range(30)))
    assert "target column 'label' is constant ('same' in every row" in message
    message = refusal(tmp_path, "x,y,label\n" + rows + "30,1,\n31,2,\n")
    assert "target column 'label' has no value in 2 of 32 rows" in message


def test_a_constant_target_is_refused_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_profile, "CHUNK_ROWS", 10)
    rows = "".join(f"{i},7\n" for i in range(95))
    assert "constant (7 in every row" in refusal(tmp_path, "x,label\n" + rows, task="regression")
    # One other value in the last chunk: learnable.
    (tmp_path / "rows.csv").write_text("x,label\n" + rows + "95,8\n")
    assert automl.validate(spec_for(tmp_path, "rows.csv", task="regression")).profile().chunks == 10


def test_a_parquet_target_is_checked_from_its_column_alone(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from automl.data import check_parquet

    path = tmp_path / "rows.parquet"
    pd.DataFrame({"x": range(20), "label": ["same"] * 20}).to_parquet(path)
    with pytest.raises(ValueError, match="target column 'label' is constant"):
        check_parquet({"path": path, "target": "label"})
    pd.DataFrame({"label": ["a", "b"] * 10}).to_parquet(path)
    with pytest.raises(ValueError, match="no feature column"):
        check_parquet({"path": path, "target": "label"})


def test_the_cli_refuses_duplicate_columns_in_one_line_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a,b,a,label\n" + "1,2,3,x\n4,5,6,y\n" * 10)
    spec = spec_for(tmp_path, "rows.csv")
    done = subprocess.run([sys.executable, "-m", "automl.cli", "validate", str(spec)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "rows.csv" in lines[0] and "'a' at columns 1, 3" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_column_read_as_numbers_in_some_chunks_and_strings_in_others_counts_every_value(tmp_path: Path) -> None:
    frame = messy()
    # Ticket numbers in the first 3 chunks of 64 rows, then codes with letters: unique in every row, an ID.
    frame["ticket"] = [str(7000 + i) if i < 192 else f"PC {7000 + i}" for i in range(N)]
    frame.to_csv(tmp_path / "rows.csv", index=False)
    options = {"path": tmp_path / "rows.csv", "target": "label"}
    profile = profile_csv(options, chunk_rows=64)
    assert profile.kinds["ticket"] == "id" and profile.distinct["ticket"] == N
    says_what_the_table_says(profile, load_csv(options))
