"""benchmarks/scheduling/peer.py (Optuna's TPE with its own pruner on the engine's real training, to a target) and
the speedup arms it is set beside (benchmarks/scheduling/run.py: --max-concurrent, the tpe-asha arm)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("automl_bench")
pytest.importorskip("optuna")
pytest.importorskip("torch")

from benchmarks.scheduling import peer, run  # noqa: E402
from benchmarks.scheduling.r3_table import SPEC  # noqa: E402


@pytest.mark.parametrize("pruner", peer.PRUNERS)
def test_a_run_ends_at_the_first_full_trial_that_reaches_the_target(pruner: str) -> None:
    """Target 0: the first trial that trains all 27 epochs reaches it; every epoch trained counts as cost."""
    row = peer.peer_run((SPEC.read_text(), str(SPEC), 0, pruner, 0.0, 200))
    assert row["reached"] and row["completed"] == 1 and row["value"] >= 0.0
    assert row["epochs_to_target"] == row["epochs_trained"] >= 27
    assert row["trials_started"] == row["trial"] + 1 == row["completed"] + row["stopped"] + row["failed"]


def test_a_run_that_cannot_reach_its_target_stops_at_the_epoch_cap() -> None:
    row = peer.peer_run((SPEC.read_text(), str(SPEC), 1, "sha", 1.01, 5))
    assert not row["reached"] and row["epochs_trained"] == 5 and row["completed"] == 0
    assert "epochs_to_target" not in row


def _rows(epochs: list[int]) -> list[dict[str, Any]]:
    return [{"seed": s, "reached": True, "epochs_to_target": e, "epochs_trained": e, "trial": s,
             "s_from_first_trial": 1.0, "span_s": 1.0} for s, e in enumerate(epochs)]


def test_the_summary_sets_the_peer_beside_the_stored_arms_with_epoch_speedups_over_fifo() -> None:
    stored = {"fifo": {r["seed"]: r for r in _rows([1000, 400])}, "tpe-asha-promotion": {r["seed"]: r for r in _rows([100, 200])}}
    peer_runs = _rows([50, 400])
    peer_runs[1].update(reached=False, epochs_trained=800)
    del peer_runs[1]["epochs_to_target"]
    before = [dict(r) for r in peer_runs]
    lines = peer.summary(peer_runs, stored, "optuna").splitlines()
    assert peer_runs == before  # the rows given are not changed
    assert lines[2] == "| 0 | 50 (#0) | 1000 (#0) | 100 (#0) |"
    assert lines[3] == "| 1 | missed: 800 epochs | 400 (#1) | 200 (#1) |"
    # The peer: one hit (20x), ERT (50 + 800) / 1 against fifo's 700; the arm 10x and 2x, ERT 150.
    assert lines[-2] == "| optuna | 20.0 | 20.0x | 0.8x | 1 / 1 of 1 |"
    assert lines[-1] == "| tpe-asha-promotion | 10.0, 2.0 | 6.0x | 4.7x | 1 / 1 of 2 |"


def test_results_of_another_target_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"spec": "s.yaml", "target": 0.98, "epochs": None, "runs": {"fifo": []}}))
    with pytest.raises(SystemExit, match="target 0.98"):
        run.stored_runs([path], "s.yaml", 0.983, None)


def test_speedup_runs_one_trial_at_a_time_when_asked_and_tpe_asha_is_the_stopping_type(monkeypatch, tmp_path: Path) -> None:
    specs: list[dict[str, Any]] = []
    monkeypatch.setattr(run, "_search", lambda text, work: specs.append(yaml.safe_load(text)) or text)
    monkeypatch.setattr(run, "_to_target", lambda r, metric: {"reached": True, "epochs_to_target": 10,
                                                              "s_from_first_trial": 1.0, "span_s": 1.0,
                                                              "epochs_trained": 10})
    args = argparse.Namespace(spec=str(SPEC), arms="fifo,tpe-asha", first_seed=0, seeds=1, fifo_from=None,
                              vary="order", trials=50, wall="1m", target=0.983, epochs=None, max_concurrent=1)
    out = run.speedup(args, tmp_path)
    assert [s["resources"]["max_concurrent"] for s in specs] == [1, 1] and out["max_concurrent"] == 1
    tpe = next(s for s in specs if s["searcher"]["name"] == "tpe")
    assert tpe["scheduler"] == {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 3, "type": "stopping"}}
    assert tpe["resources"]["cpu"] == 1  # the spec's own resources kept
    args.max_concurrent = None
    specs.clear()
    run.speedup(args, tmp_path)
    assert all("max_concurrent" not in (s.get("resources") or {}) for s in specs)
