"""The 28x28 wall-budget benchmark's incumbent: the best completed trial at each fraction of the budget."""

from __future__ import annotations

from automl.plugin import TrialRecord
from benchmarks.torch.wall_budget import FRACTIONS, incumbents


def test_the_incumbent_counts_only_trials_completed_by_then() -> None:
    def trial(number: int, status: str, start: float, end: float, accuracy: float) -> TrialRecord:
        return TrialRecord(number=number, status=status, config={"lr": 0.01}, budget=9,  # type: ignore[arg-type]
                           metrics={"accuracy": accuracy, "test_accuracy": accuracy - 0.01},
                           started_at=1000.0 + start, finished_at=1000.0 + end)

    trials = [trial(0, "completed", 0, 50, 0.90), trial(1, "stopped", 1, 20, 0.99),
              trial(2, "completed", 20, 140, 0.95), trial(3, "completed", 60, 160, 0.93),
              trial(4, "running", 150, 500, 0.99)]
    got = incumbents(trials, 200.0)
    assert [p["seconds"] for p in got["points"]] == [f * 200.0 for f in FRACTIONS]
    # 50 s: trial 0 only (the stopped trial's rung accuracy is no exportable model); 100 s: still 0; 150 s and on: 2.
    assert [p["best"]["number"] for p in got["points"]] == [0, 0, 2, 2]
    assert [p["completed"] for p in got["points"]] == [1, 1, 2, 3]
    assert got["started"] == 5 and got["completed"] == 3 and got["stopped"] == 1
    assert incumbents([], 200.0)["points"] == []
