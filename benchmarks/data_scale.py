"""Data at scale (issue 17): the driver's peak memory on a big CSV, and a trial's on an ID-like table.

    nice -n 19 .venv/bin/python -m benchmarks.data_scale validate   # automl validate on 500,000 x 20
    nice -n 19 .venv/bin/python -m benchmarks.data_scale search     # automl search (1 trial) on it: the driver
    nice -n 19 .venv/bin/python -m benchmarks.data_scale idlike     # fit + export on 15,000 rows with an ID column

Every figure is the peak resident set (``ru_maxrss``) of a child process that does the one thing, read
with :func:`resource.getrusage` (``RUSAGE_CHILDREN``) after it ends; Ray's own processes are not the
driver and are not counted. The CSV is generated into a temporary directory, never committed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def generate(path: Path, rows: int, columns: int = 20, *, seed: int = 0, chunk: int = 50_000) -> Path:
    """A CSV of ``rows`` x ``columns`` cells: numbers, two string categories and an integer, then ``label``
    (written a chunk at a time, so this process never holds the file)."""
    rng = np.random.default_rng(seed)
    numeric = columns - 4
    with path.open("w", newline="") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, numeric)).round(4)
            frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(numeric)])
            frame["colour"] = rng.choice(["red", "green", "blue", "grey"], n)
            frame["shop"] = rng.choice([f"shop{i}" for i in range(40)], n)
            frame["count"] = rng.integers(0, 100, n)
            frame["label"] = np.where(x[:, 0] + 0.5 * x[:, 1] + (frame["colour"] == "red") > 0.3, "yes", "no")
            frame.to_csv(fh, index=False, header=start == 0)
    return path


def peak_mib(command: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run ``command`` in a fresh process; its peak RSS in MiB, its exit status and the tail of its output."""
    probe = textwrap.dedent("""
        import resource, subprocess, sys
        done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)
        print((done.stdout + done.stderr)[-1500:])
    """)
    out = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout
    head, _, tail = out.partition("\n")
    kib, rc = head.split()
    return int(kib) / 1024, int(rc), tail


def spec_file(folder: Path, csv: Path, *, space: bool) -> Path:
    """A spec for the sklearn trainer on ``csv``: the trainer's default space, or one fixed linear model."""
    text = f"task: classification\ndata: {{csv: {csv}, target: label}}\ntrainer: {{name: sklearn}}\n"
    text += "budget: {trials: 1}\n"
    if space:
        text += "space:\n  model: {type: choice, values: [linear]}\n  linear__C: {type: float, low: 0.1, high: 1.0}\n"
    path = folder / ("spec-space.yaml" if space else "spec-default.yaml")
    path.write_text(text)
    return path


def load_average() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def cmd_validate(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="automl-data-scale-") as tmp:
        folder = Path(tmp)
        csv = generate(folder / "big.csv", rows)
        size = csv.stat().st_size / 2**20
        print(f"{rows} rows x 20 columns, {size:.0f} MiB on disk; {load_average()}")
        for space in (False, True):
            spec = spec_file(folder, csv, space=space)
            mib, rc, tail = peak_mib([str(BIN / "automl"), "validate", str(spec)], folder)
            which = "default space" if not space else "spec's space"
            print(f"validate ({which}): driver peak {mib:.0f} MiB, exit {rc}")
            if rc:
                print(tail)
        print(load_average())


def cmd_search(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="automl-data-scale-") as tmp:
        folder = Path(tmp)
        csv = generate(folder / "big.csv", rows)
        print(f"{rows} rows x 20 columns, {csv.stat().st_size / 2**20:.0f} MiB on disk; {load_average()}")
        spec = spec_file(folder, csv, space=True)
        mib, rc, tail = peak_mib([str(BIN / "automl"), "search", str(spec), "--out", str(folder / "run")], folder)
        print(f"search (1 trial, linear): driver peak {mib:.0f} MiB, exit {rc}")
        if rc:
            print(tail)
        print(load_average())


IDLIKE = textwrap.dedent("""
    import sys, resource, tempfile
    from pathlib import Path
    import numpy as np, pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.compose import ColumnTransformer
    from automl.plugin import check_table, load_csv
    from automl_sklearn.preprocess import preprocessor

    rows, mode = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ref": [f"R{i:07d}" for i in rng.permutation(rows)], "size": rng.normal(size=rows),
                          "colour": rng.choice(["red", "green", "blue"], rows)})
    frame["label"] = np.where(frame["size"] > 0, "good", "bad")
    if mode == "near-id":  # 1% of the IDs missing: not dropped as an ID, encoded as high cardinality
        frame.loc[rng.choice(rows, rows // 100, replace=False), "ref"] = None
    folder = Path(tempfile.mkdtemp())
    frame.to_csv(folder / "rows.csv", index=False)
    table = load_csv({"path": folder / "rows.csv", "target": "label"})
    if mode == "dense":  # the issue's reproduction: every string column one-hot encoded, dense, no limit
        strings = [c for c in table.X.columns if not pd.api.types.is_numeric_dtype(table.X[c])]
        prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), strings)],
                                 remainder="passthrough")
    else:  # what the sklearn trainer does: check_table drops an ID, the encoder is bounded (MAX_CATEGORIES)
        check_table(table, "classification")
        prep = preprocessor(table.X, "classification", {}, {})
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=200))]).fit(table.X, table.y)
    width = model.named_steps["prep"].transform(table.X.head(5)).shape[1]
    exported = ""
    if mode != "dense":
        from skl2onnx import to_onnx
        onx = to_onnx(model, table.X.head(1), options={"zipmap": False})
        exported = f", ONNX {len(onx.SerializeToString()) / 1024:.0f} KiB"
    print(f"{mode}: columns after encoding {width}, notes {table.notes}{exported}")
""")


def cmd_idlike(rows: int) -> None:
    print(f"{rows} rows, an ID-like string column + a number + a 3-value category; {load_average()}")
    for mode in ("dense", "bounded", "near-id"):
        mib, rc, tail = peak_mib([sys.executable, "-c", IDLIKE, str(rows), mode], ROOT)
        print(f"  {mode}: peak {mib:.0f} MiB, exit {rc}; {tail.strip()}")
    print(load_average())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["validate", "search", "idlike"])
    parser.add_argument("--rows", type=int, default=0, help="rows (default 500,000; idlike: 15,000)")
    args = parser.parse_args()
    rows = args.rows or (15_000 if args.what == "idlike" else 500_000)
    {"validate": cmd_validate, "search": cmd_search, "idlike": cmd_idlike}[args.what](rows)


if __name__ == "__main__":
    main()
