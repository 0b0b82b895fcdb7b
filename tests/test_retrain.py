"""benchmarks/scheduling/retrain.py: a table's top configurations trained again with seeds the table does not use."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("automl_bench")
pytest.importorskip("sklearn")

from benchmarks.scheduling import retrain  # noqa: E402


def _fake_train(args: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    """A curve whose final value says which configuration and trial number trained it (module level: it is pickled)."""
    _, _, number, config = args
    return {"number": number, "config": config, "values": [0.0, config["x"] + number / 1e6], "seconds": [0.1, 0.1]}


def test_the_top_configurations_are_trained_again_with_trial_numbers_the_table_does_not_use(monkeypatch) -> None:
    monkeypatch.setattr(retrain, "_train", _fake_train)
    finals = [0.90, 0.98, 0.95, 0.98, 0.50]
    table = {"spec": "s", "source": "src", "configs": [{"x": f} for f in finals],
             "values": [[0.1, f] for f in finals]}
    rows = retrain.retrain(table, top=3, repeats=2, processes=1)
    # The three best by recorded final value, ties in row order.
    assert [r["row"] for r in rows] == [1, 3, 2]
    assert [r["recorded"] for r in rows] == [0.98, 0.98, 0.95]
    numbers = [round((v - r["config"]["x"]) * 1e6) for r in rows for v in r["retrained"]]
    assert numbers == [6, 11, 8, 13, 7, 12]  # (repeat + 1) * 5 rows + row: none of the table's own 0-4
    assert len(set(numbers)) == len(numbers) and not set(numbers) & set(range(len(finals)))

    # A row whose training failed is no candidate, whatever its last recorded epoch says.
    failed = retrain.retrain({**table, "failed": {"1": "nan loss"}}, top=2, repeats=1, processes=1)
    assert [r["row"] for r in failed] == [3, 2]


def test_the_summary_counts_the_retrainings_that_reach_the_target_per_recorded_value() -> None:
    rows = [{"row": 0, "recorded": 0.983, "retrained": [0.983, 0.98, 0.986]},
            {"row": 1, "recorded": 0.983, "retrained": [0.97, None, 0.983]},
            {"row": 2, "recorded": 0.98, "retrained": [0.983, 0.977, 0.977]}]
    lines = retrain.summary(rows, 0.983).splitlines()
    assert lines[2] == "| 0.9830 (reaches it) | 2 | 6 | 3 | 50% | 2/3, 1/3 |"
    assert lines[3] == "| 0.9800 | 1 | 3 | 1 | 33% | 1/3 |"
