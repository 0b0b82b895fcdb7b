"""The tabular comparison harness (benchmarks/tabular): tables, the shared split, the specs, the report's
arithmetic and the dry run. Nothing here starts Ray or fits FLAML."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from automl.spec import Spec, parse_spec
from benchmarks.tabular import datasets, peers, report
from benchmarks.tabular import run as cli


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [("german", (1000, 20), {1: 700, 2: 300}), ("letter", (20000, 16), None), ("diabetes", (442, 10), None)],
)
def test_tables_load_with_their_shapes_and_targets(name: str, shape: tuple[int, int], classes: Any) -> None:
    table = datasets.load(name)
    assert table.X.shape == shape and len(table.y) == shape[0]
    assert not table.y.isna().any()
    if name == "german":
        assert table.y.value_counts().to_dict() == classes
        # Nominal attributes stay strings ("A11"), numbers are numbers.
        assert table.X.iloc[0, 0] == "A11" and table.X.iloc[0, 1] == 6.0
    if name == "letter":
        counts = table.y.value_counts()
        assert len(counts) == 26 and counts.min() == 734 and set(counts.index) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if name == "diabetes":
        assert table.task == "regression" and table.y.dtype == float


def test_keel_files_with_a_header_and_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "t.dat"
    path.write_text("@relation t\n@attribute Width real [0, 9]\n@attribute 'Colour' {red, blue}\n"
                    "@attribute Class{a,b}\n@inputs Width, Colour\n@data\n1.5, red, a\n?, blue, b\n% note\n2, <null>, a\n")
    X, y = datasets.read_keel(path)
    assert list(X.columns) == ["Width", "Colour"] and y.tolist() == ["a", "b", "a"]
    assert X["Width"].isna().tolist() == [False, True, False] and X["Colour"].isna().tolist() == [False, False, True]
    path.write_text("1,2,a\n1,2\n")
    with pytest.raises(ValueError, match=r"t\.dat:2: 2 fields where the first row has 3"):
        datasets.read_keel(path)


def test_the_split_is_seeded_stratified_and_the_one_file_every_system_reads(tmp_path: Path) -> None:
    table = datasets.load("german")
    train, test = datasets.split(table, 1)
    again, _ = datasets.split(table, 1)
    other, _ = datasets.split(table, 2)
    assert train.equals(again) and not train.equals(other)
    assert (len(train), len(test)) == (750, 250)
    assert test[datasets.TARGET].value_counts().to_dict() == {1: 175, 2: 75}  # 25% of each class
    rows = pd.concat([train, test]).sort_values(list(train.columns)).reset_index(drop=True)
    assert rows.equals(table.X.assign(target=table.y).sort_values(list(train.columns)).reset_index(drop=True))
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    job = peers.Job("german", "classification", 1, 60, str(tmp_path / "train.csv"), str(tmp_path / "test.csv"),
                    str(tmp_path / "w"), automl_space="current")
    # automl and the previous behaviour read the very file FLAML's worker reads, with nothing held out of it.
    for system in ("automl", "previous"):
        data = peers.engine_spec(job, system)["data"]
        assert Path(data["csv"]) == (tmp_path / "train.csv").resolve() and data["test"] == 0
    X, y = peers._read(job.train_csv)
    assert X.shape == (750, 20) and y.tolist() == train[datasets.TARGET].tolist()


def test_engine_specs_validate_and_the_previous_one_is_the_frozen_space(tmp_path: Path) -> None:
    job = peers.Job("t", "regression", 3, 60, str(tmp_path / "train.csv"), "", str(tmp_path), searcher="random",
                    scheduler="asha", automl_space="current")
    frozen = yaml.safe_load((peers.HERE / "previous" / "tabular-regression.yaml").read_text())
    previous = peers.engine_spec(job, "previous")
    assert previous["space"] == frozen["space"] and previous["trainer"] == frozen["trainer"]
    assert (previous["searcher"], previous["scheduler"]) == ({"name": "tpe"}, {"name": "fifo"})
    assert previous["data"]["folds"] == 5 and previous["objectives"] == [{"metric": "r2", "mode": "max"}]
    mine = peers.engine_spec(job, "automl")
    assert (mine["searcher"], mine["scheduler"], mine["seed"]) == ({"name": "random"}, {"name": "asha"}, 3)
    assert mine["budget"] == {"wall_time": 60.0, "trials": 100000} and mine["trainer"] == {"name": "sklearn"}
    for spec in (previous, mine):
        parse_spec(yaml.safe_dump(spec, sort_keys=False))
    # Features that came after 7c38f9c and are on by default are off for the previous behaviour only.
    for field, off in peers.PREVIOUS_OFF.items():
        assert previous.get(field) == (off if field in Spec.model_fields else None) and field not in mine
    assert peers.engine_spec(peers.Job("t", "classification", 0, 60, "x.csv", "", "."), "automl")["space"] == "auto"


def test_scores_compare_labels_across_their_csv_types() -> None:
    assert peers.score("classification", pd.Series([1, 2, 2, -1]), [1.0, 2.0, 1.0, -1.0]) == 0.75
    assert peers.score("classification", pd.Series(["won", "nowin"]), ["won", "won"]) == 0.5
    assert peers.score("regression", pd.Series([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]) == 1.0
    with pytest.raises(ValueError, match="2 predictions for 3 test rows"):
        peers.score("regression", pd.Series([1.0, 2.0, 3.0]), [1.0, 2.0])


def _row(table: str, seed: int, system: str, score: float | None, task: str = "classification",
         status: str = "ok") -> dict[str, Any]:
    return {"table": table, "seed": seed, "system": system, "budget": 60.0, "task": task, "score": score,
            "status": status, "wall_s": 70.0, "trials": 10}


def test_report_counts_wins_ties_and_losses_per_pair() -> None:
    rows = [
        _row("a", 0, "automl", 0.9000), _row("a", 0, "flaml", 0.8990),   # +0.10 point: a tie
        _row("a", 1, "automl", 0.9020), _row("a", 1, "flaml", 0.9000),   # +0.20: a win
        _row("b", 0, "automl", 0.7000), _row("b", 0, "flaml", 0.7200),   # -2.00: a loss
        _row("b", 1, "automl", None, status="failed"), _row("b", 1, "flaml", 0.7),  # failed: a loss
        _row("c", 0, "automl", None, status="failed"), _row("c", 0, "flaml", None, status="failed"),  # left out
        _row("d", 0, "automl", 0.5, task="regression"), _row("d", 0, "flaml", None, status="failed"),  # a win
        _row("a", 0, "autogluon", None, status="not installed"),
    ]
    c = report.compare(rows, "automl", "flaml", 60.0)
    assert (c["wins"], c["ties"], c["losses"], c["pairs"]) == (2, 1, 2, 5)
    assert [round(d, 6) for d in c["diffs"]] == [0.1, 0.2, -2.0]
    v = report.verdict(rows, 60.0)
    assert v["share"] == pytest.approx(3 / 5) and not v["share_ok"]
    # Classification means over tables a and b: automl (90.1 + 70) / 2 vs flaml (89.95 + 71) / 2.
    assert v["mean_a"] == pytest.approx((90.1 + 70.0) / 2) and v["mean_b"] == pytest.approx((89.95 + 71.0) / 2)
    assert not v["mean_ok"] and v["worst_table"] == "b" and v["worst_diff"] == pytest.approx(-2.0)
    assert not v["worst_ok"]
    # A later row of the same run replaces the earlier one: b seed 0 rerun, now a win.
    v2 = report.verdict([*rows, _row("b", 0, "automl", 0.7300)], 60.0)
    assert (v2["wins"], v2["losses"]) == (3, 1)
    text = report.render(rows)
    assert "| a | classification |" in text and "| autogluon | not installed |" in text
    assert "2 wins, 1 ties, 2 losses over 5 (table, seed) pairs" in text


def test_the_report_of_some_seeds_compares_a_system_run_on_fewer_seeds(tmp_path: Path) -> None:
    # A peer run on seed 0 only beside two systems run on seeds 0-1: --seeds 0 compares all three on the same pairs.
    rows = [_row("a", 0, "automl", 0.90), _row("a", 0, "flaml", 0.91), _row("a", 0, "autogluon", 0.89),
            _row("a", 1, "automl", 0.70), _row("a", 1, "flaml", 0.60)]
    out = tmp_path / "r.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["report", str(out), "--seeds", "0", "--md", str(tmp_path / "r0.md")]) == 0
    text = (tmp_path / "r0.md").read_text()
    assert f"From `{out}`, seed 0 only." in text
    assert "automl vs flaml**: 0 wins, 0 ties, 1 losses over 1 (table, seed) pairs" in text
    assert "automl vs autogluon**: 1 wins, 0 ties, 0 losses over 1 (table, seed) pairs" in text
    assert "automl vs flaml**: 1 wins, 0 ties, 1 losses over 2" in report.render(rows)


def test_the_report_reads_a_row_whose_load_is_not_known() -> None:
    # A run kept outside `compare` (diagnose keep) and added to a results file has no load record (null).
    rows = [{**_row("a", 0, "automl", 0.9), "load_before_after": [1.5, 2.5]}, _row("a", 0, "flaml", 0.8),
            {**_row("a", 1, "automl", 0.9), "load_before_after": None}, _row("a", 1, "flaml", 0.8)]
    assert "1.5 to 2.5" in report.render(rows)


def test_the_report_gives_each_tables_test_noise_and_counts_the_losses_inside_it() -> None:
    # 3000 training rows: 1000 held out; accuracies 0.90 / 0.90 / 0.905 / 0.895 average to p = 0.9.
    rows = [{**_row(t, s, sys, p), "n_train": 3000}
            for t, s, sys, p in [("a", 0, "automl", 0.900), ("a", 0, "flaml", 0.905),   # -0.5 point: inside 1 SE
                                 ("a", 1, "automl", 0.895), ("a", 1, "flaml", 0.900),   # -0.5 point: inside
                                 ("b", 0, "automl", 0.800), ("b", 0, "flaml", 0.830)]]  # -3 points: outside
    assert report.accuracy_se(rows, "a", 60.0) == pytest.approx(100 * (0.9 * 0.1 / 1000) ** 0.5)  # 0.95 point
    assert report.accuracy_se([{**r, "task": "regression"} for r in rows], "a", 60.0) is None
    text = report.render(rows)
    assert "| a | classification | 3000 | 2 | 89.75 | 90.25 | -0.50 | 0/0/2 | 0.95 |" in text
    assert "of the 3 classification pairs automl lost, 2 by less than one standard error" in text


def test_the_dry_run_prints_the_rotated_plan_and_its_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    code = cli.main(["compare", "--tables", "german,diabetes", "--seeds", "0,1", "--budget", "60",
                     "--systems", "automl,flaml,previous", "--automl-space", "current", "--out", str(out), "--dry-run"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and not out.exists()
    assert lines[:6] == ["60s german seed 0 automl", "60s german seed 0 flaml", "60s german seed 0 previous",
                         "60s german seed 1 flaml", "60s german seed 1 previous", "60s german seed 1 automl"]
    expected = 12 * 60 + 4 * sum(cli.OVERHEAD_S[s] for s in ("automl", "flaml", "previous")) + 4 * cli.SPLIT_S
    assert lines[-1].startswith(f"12 runs (0 already done); predicted {expected / 3600:.2f} h ({expected:.0f} s")
    # --resume skips what a file holds, except failed runs.
    out.write_text("\n".join(json.dumps(r) for r in [
        {**_row("german", 0, "automl", 0.7), "budget": 60}, {**_row("german", 0, "flaml", None, status="failed")}]))
    cli.main(["compare", "--tables", "german,diabetes", "--seeds", "0,1", "--automl-space", "current",
              "--out", str(out), "--resume", "--dry-run"])
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("11 runs (1 already done)")


def test_cli_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", "--tables", "nope", "--dry-run"]) == 2
    assert "unknown table 'nope'" in capsys.readouterr().err
    assert cli.main(["compare", "--seeds", "0,x", "--automl-space", "current", "--dry-run"]) == 2
    assert "--seeds '0,x' is not a comma list of numbers" in capsys.readouterr().err
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps(_row("german", 0, "automl", 0.7)) + "\n")
    assert cli.main(["compare", "--tables", "german", "--automl-space", "current", "--out", str(out)]) == 2
    assert "already holds rows: pass --resume" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert cli.main(["report", str(bad)]) == 2
    assert "bad.jsonl:1: not a JSON row" in capsys.readouterr().err
    # A combined report of several files is never written over the first file's own report.
    own = out.with_suffix(".md")
    own.write_text("the first file's report")
    assert cli.main(["report", str(out), str(out)]) == 2
    assert "2 files: name the combined report with --md" in capsys.readouterr().err
    assert own.read_text() == "the first file's report"
    assert cli.main(["report", str(out), "--seeds", "0,x"]) == 2
    assert "--seeds '0,x' is not a comma list of numbers" in capsys.readouterr().err


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_run_leaves_no_process_of_its_session_behind(tmp_path: Path) -> None:
    # Like a Ray worker: a child in its own process group that outlives the command that started it.
    code = ("import subprocess, sys; p = subprocess.Popen(['sleep', '600'], process_group=0); "
            "print(p.pid, flush=True)")
    status, _, _ = peers._run_process([sys.executable, "-c", code], tmp_path, timeout=600)
    child = int((tmp_path / "stdout.txt").read_text())
    assert status == 0
    for _ in range(300):  # SIGKILL is sent before _run_process returns; init reaps the zombie soon after
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child)
