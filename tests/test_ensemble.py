"""Ensembles from what ran: Caruana's greedy selection, the engine step around it, and one real search."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import automl
from automl.engine import _ensemble
from automl.ensemble import (
    PREDICTIONS_ERROR,
    ensemble_config,
    ensemble_counts,
    greedy_selection,
    is_ensemble_trial,
    load_predictions,
    save_predictions,
    supports_ensembles,
)
from automl.interfaces import Objective, Trainer
from automl.plan import Plan
from automl.run import Run
from automl.space import SearchSpace
from automl.spec import EnsembleSection, parse_spec
from automl.store import Store


def accuracy_loss(y: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda proba: -float(np.mean(np.argmax(proba, axis=1) == y))


def two_class(p1: Sequence[float]) -> np.ndarray:
    p = np.asarray(p1, dtype=float)
    return np.stack([1 - p, p], axis=1)


# Each model is right on two of the three rows, a different two: any two of them averaged are right on all.
A, B, C = two_class([0.9, 0.9, 0.4]), two_class([0.9, 0.4, 0.9]), two_class([0.4, 0.9, 0.9])
Y = np.array([1, 1, 1])


def test_greedy_selection_beats_the_best_single_model() -> None:
    picked = greedy_selection([A, B, C], accuracy_loss(Y), rounds=10)
    assert picked.best_single == 0 and picked.best_single_loss == pytest.approx(-2 / 3)
    assert picked.loss == pytest.approx(-1.0)
    # Started from A (ties go to the lowest index), added B, then stopped improving: the smallest best ensemble.
    assert picked.counts.tolist() == [1, 1, 0]
    assert picked.weights.tolist() == [0.5, 0.5, 0.0]


def test_greedy_selection_picks_with_replacement_for_regression() -> None:
    # y = 0: 5 parts of 0.1 and one of -0.5 average to exactly 0, which needs A picked five times.
    y = np.zeros(4)
    a, b = np.full(4, 0.1), np.full(4, -0.5)
    picked = greedy_selection([a, b], lambda p: float(np.mean((p - y) ** 2)), rounds=10)
    assert picked.counts.tolist() == [5, 1]
    assert picked.loss == pytest.approx(0.0)
    assert picked.history[0] == pytest.approx(0.01)


def test_greedy_selection_is_deterministic_and_breaks_ties_by_index() -> None:
    first = greedy_selection([A, A.copy(), B], accuracy_loss(Y), rounds=5)
    second = greedy_selection([A, A.copy(), B], accuracy_loss(Y), rounds=5)
    assert first.counts.tolist() == second.counts.tolist() == [1, 0, 1]
    # Never worse than the best single model, whatever the rounds (the best prefix is kept).
    for rounds in (0, 1, 3):
        assert greedy_selection([C, B, A], accuracy_loss(Y), rounds=rounds).loss <= -2 / 3


def test_a_tie_break_lets_the_selection_go_on_where_accuracy_ties() -> None:
    a, b = two_class([0.95, 0.95, 0.55]), two_class([0.55, 0.95, 0.95])  # both right on every row

    def log_loss(proba: np.ndarray) -> float:
        return -float(np.mean(np.log(proba[np.arange(3), Y])))

    alone = greedy_selection([a, b], accuracy_loss(Y), rounds=5)
    assert alone.counts.tolist() == [1, 0]  # no addition is strictly better on accuracy
    mixed = greedy_selection([a, b], accuracy_loss(Y), rounds=5, tie_break=log_loss)
    assert mixed.counts.tolist() == [1, 1] and mixed.loss == -1.0  # same accuracy, lower log loss


def test_losses_equal_to_rounding_tie_and_go_to_the_lowest_index() -> None:
    """Trial 0's and trial 1's models are the same but for the last bits of their probabilities: the selection
    takes the lower index (the lower trial number), as for an exact tie, not whichever rounding favoured."""
    a = two_class([0.7, 0.8, 0.9])
    b = two_class(a[:, 1] * (1 + 1e-14))  # log loss lower by about 1e-14, far below any real difference

    def log_loss(proba: np.ndarray) -> float:
        return -float(np.mean(np.log(proba[np.arange(3), Y])))

    assert log_loss(b) < log_loss(a)
    for picked in (greedy_selection([a, b], log_loss, rounds=0),
                   greedy_selection([a, b], accuracy_loss(Y), rounds=0, tie_break=log_loss)):
        assert picked.best_single == 0 and picked.counts.tolist() == [1, 0]
    assert greedy_selection([a, b], log_loss, rounds=0).loss == log_loss(a)  # the loss of the one picked
    # A real difference still decides.
    better = two_class(a[:, 1] * (1 + 1e-6))
    assert greedy_selection([a, better], log_loss, rounds=0).best_single == 1


def test_the_tie_break_is_computed_only_where_the_loss_ties_and_picks_as_the_pair_would() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 40)
    candidates = [rng.dirichlet(np.ones(3), size=40) for _ in range(8)]
    asked: list[float] = []

    def log_loss(proba: np.ndarray) -> float:
        asked.append(1.0)
        return -float(np.mean(np.log(proba[np.arange(40), y])))

    lazy = greedy_selection(candidates, accuracy_loss(y), rounds=12, tie_break=log_loss)
    assert len(asked) < 8 * 13  # not every candidate in every round

    def pair(proba: np.ndarray) -> float:  # both losses in one number: lexicographic (accuracy steps are 1/40)
        return accuracy_loss(y)(proba) * 1e6 + (-float(np.mean(np.log(proba[np.arange(40), y]))))

    eager = greedy_selection(candidates, pair, rounds=12)
    assert lazy.counts.tolist() == eager.counts.tolist()


def test_greedy_selection_refuses_mismatched_candidates() -> None:
    with pytest.raises(ValueError, match="shape"):
        greedy_selection([A, np.zeros((2, 2))], accuracy_loss(Y))
    with pytest.raises(ValueError, match="at least one"):
        greedy_selection([], accuracy_loss(Y))


def test_predictions_files_hold_numbers_only(tmp_path: Path) -> None:
    save_predictions(tmp_path, "valid", A)
    assert np.array_equal(load_predictions(tmp_path, "valid"), A)
    assert load_predictions(tmp_path, "test") is None
    with pytest.raises(ValueError, match="numeric"):
        save_predictions(tmp_path, "test", np.array(["a", "b"], dtype=object))


def test_a_trial_whose_predictions_fail_keeps_its_result_and_says_why(tmp_path: Path) -> None:
    from automl.trial_worker import _save_predictions

    class Broken:
        def predictions(self, split: str) -> Any:
            if split == "test":
                raise RuntimeError("no test rows today")
            return A

    _save_predictions(Broken(), tmp_path, test=True)  # type: ignore[arg-type]
    assert load_predictions(tmp_path, "valid") is not None and load_predictions(tmp_path, "test") is None
    assert (tmp_path / PREDICTIONS_ERROR).read_text() == "test: RuntimeError: no test rows today"


def test_ensemble_configs_are_marked_and_read_back() -> None:
    config = ensemble_config([3, 7, 9], [2, 1, 0])
    assert config == {"ensemble": "3x2 7x1"}
    assert ensemble_counts(config) == {3: 2, 7: 1}
    assert is_ensemble_trial({"config": config})
    assert not is_ensemble_trial({"config": {"ensemble": 3}})
    assert not is_ensemble_trial({"config": {"ensemble": "3x2", "model": "forest"}})


def test_the_spec_section_is_validated() -> None:
    base = "trainer: {name: function}\nspace: {x: {type: float, low: 0, high: 1}}\nobjectives: [{metric: loss, mode: min}]\n"
    assert parse_spec(base).ensemble == EnsembleSection()
    spec = parse_spec(base + "ensemble: {enabled: false, rounds: 50, candidates: 30}\n")
    assert (spec.ensemble.enabled, spec.ensemble.rounds, spec.ensemble.candidates) == (False, 50, 30)
    with pytest.raises(automl.SpecError, match="candidates"):
        parse_spec(base + "ensemble: {candidates: 1}\n")
    with pytest.raises(automl.SpecError, match="did you mean 'rounds'"):
        parse_spec(base + "ensemble: {round: 3}\n")


# -- the engine step, without Ray: a toy trainer over fixed predictions ------------------------


class Toy(Trainer):
    """Scores averaged probabilities on Y; builds a JSON file naming the members (or fails when told to)."""

    fail = False

    def fit_step(self, step: int) -> None:
        pass

    def evaluate(self, split: str = "valid") -> dict[str, float]:
        return {}

    def export(self, directory: Path) -> Path:
        raise NotImplementedError

    def load_predictor(self, path: Path) -> Callable[[Any], Any]:
        return lambda batch: batch

    def predictions(self, split: str = "valid") -> Any:
        return None

    def score_predictions(self, predictions: Any, split: str = "valid",
                          metrics: Sequence[str] | None = None) -> dict[str, float]:
        return {"accuracy": float(np.mean(np.argmax(predictions, axis=1) == Y))}

    def build_ensemble(self, members: Sequence[Any], directory: Path, expected: Mapping[str, Any]) -> Path:
        if self.fail:
            raise ValueError("cannot combine these members")
        path = directory / "ensemble.json"
        path.write_text(json.dumps({m.number: m.weight for m in members}))
        return path


def toy_run(tmp_path: Path, accuracies: Sequence[float], predictions: Sequence[np.ndarray]) -> tuple[Any, Run]:
    store = Store(f"sqlite:///{tmp_path / 'automl.db'}")
    run_id = store.create_run(name="t", directory=str(tmp_path), spec_text="", spec_hash="", seed=0,
                              objectives={}, versions={})
    for number, (acc, pred) in enumerate(zip(accuracies, predictions, strict=True)):
        directory = tmp_path / "trials" / f"{number:05d}"
        directory.mkdir(parents=True)
        save_predictions(directory, "valid", pred)
        store.save_trial(run_id, number, status="completed", config={"x": number}, metrics={"accuracy": acc},
                         budget=1, max_budget=1, artifact=str(directory / "model.bin"))
    spec = SimpleNamespace(ensemble=EnsembleSection(), task="classification", seed=0, trainer=SimpleNamespace(params={}),
                           resources=SimpleNamespace(cpu=1.0, gpu=0.0))
    # A real Plan around a stand-in spec and trainer record: the ensemble builds its trainer through the plan.
    plan = Plan(spec, SearchSpace([]), [Objective("accuracy", "max")], [],  # type: ignore[arg-type]
                SimpleNamespace(name="toy", factory=Toy), None, None, 1, None, {},  # type: ignore[arg-type]
                {"accuracy": "max"})
    return plan, Run(tmp_path, store, run_id)


def notifier() -> Any:
    seen: list[int] = []
    return SimpleNamespace(notify=lambda hook, run, trial: seen.append(trial["number"]), seen=seen)


def test_the_engine_records_the_ensemble_as_one_more_trial_and_keeps_it_on_resume(tmp_path: Path) -> None:
    assert supports_ensembles(Toy)
    plan, run = toy_run(tmp_path, [2 / 3, 2 / 3, 2 / 3], [A, B, C])
    summary: dict[str, Any] = {}
    pm = notifier()
    _ensemble(plan, run, None, summary, pm)  # type: ignore[arg-type]
    row = run.store.trial(run.run_id, 3)
    assert row is not None and row["status"] == "completed" and pm.seen == [3]
    assert row["config"] == {"ensemble": "0x1 1x1"} and row["metrics"] == {"accuracy": 1.0}
    assert json.loads(Path(row["artifact"]).read_text()) == {"0": 0.5, "1": 0.5}
    assert summary["ensemble"]["best_single"] == {"number": 0, "value": pytest.approx(2 / 3)}
    # Run again over the same trials (a resume that ran nothing new): the same trial is kept, not a second one.
    again: dict[str, Any] = {}
    _ensemble(plan, run, None, again, pm)  # type: ignore[arg-type]
    assert again["ensemble"]["kept"] and len(run.trials()) == 4 and pm.seen == [3]


def test_a_failed_build_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    plan, run = toy_run(tmp_path, [2 / 3, 2 / 3], [A, B])
    monkeypatch.setattr(Toy, "fail", True)
    summary: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING, logger="automl"):
        _ensemble(plan, run, None, summary, notifier())  # type: ignore[arg-type]
    assert summary["ensemble"] == {"built": False, "reason": "ValueError: cannot combine these members"}
    assert [r.getMessage() for r in caplog.records] == ["automl: no ensemble was built: ValueError: cannot combine "
                                                         "these members"]
    assert [t["number"] for t in run.trials()] == [0, 1]
    assert all(t["status"] == "completed" for t in run.trials())


def test_a_failed_rebuild_keeps_the_earlier_ensemble(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, run = toy_run(tmp_path, [2 / 3, 2 / 3], [A, B])
    _ensemble(plan, run, None, {}, notifier())  # type: ignore[arg-type]
    before = run.store.trial(run.run_id, 2)
    assert before is not None and before["config"] == {"ensemble": "0x1 1x1"}
    # A resumed run added trial 3; rebuilding over the new candidates fails.
    directory = tmp_path / "trials" / "00003"
    directory.mkdir()
    save_predictions(directory, "valid", C)
    run.store.save_trial(run.run_id, 3, status="completed", config={"x": 3}, metrics={"accuracy": 1.0}, budget=1,
                         max_budget=1)
    plan.spec.ensemble = EnsembleSection(candidates=2)  # trials 3 and 0: another selection, so a rebuild
    monkeypatch.setattr(Toy, "fail", True)
    summary: dict[str, Any] = {}
    _ensemble(plan, run, None, summary, notifier())  # type: ignore[arg-type]
    assert summary["ensemble"] == {"built": False, "reason": "ValueError: cannot combine these members"}
    assert run.store.trial(run.run_id, 2) == before and Path(before["artifact"]).is_file()
    assert not (tmp_path / "trials" / "00002.new").exists()


def test_no_trial_is_recorded_when_the_best_single_trial_cannot_be_improved(tmp_path: Path) -> None:
    plan, run = toy_run(tmp_path, [2 / 3, 2 / 3], [A, A.copy()])
    summary: dict[str, Any] = {}
    _ensemble(plan, run, None, summary, notifier())  # type: ignore[arg-type]
    assert not summary["ensemble"]["built"] and "improved on trial 0 alone" in summary["ensemble"]["reason"]
    assert len(run.trials()) == 2


def test_too_few_predictions_or_disabled_builds_nothing(tmp_path: Path) -> None:
    plan, run = toy_run(tmp_path, [0.5], [A])
    summary: dict[str, Any] = {}
    _ensemble(plan, run, None, summary, notifier())  # type: ignore[arg-type]
    assert not summary["ensemble"]["built"] and "at least 2" in summary["ensemble"]["reason"]
    plan.spec.ensemble = EnsembleSection(enabled=False)
    _ensemble(plan, run, None, summary, notifier())  # type: ignore[arg-type]
    assert summary["ensemble"] == {"built": False, "reason": "disabled (ensemble.enabled: false)"}
    assert len(run.trials()) == 1


# -- one real search -------------------------------------------------------------------------

SEARCH = """
task: classification
data: {dataset: breast_cancer, test: 0.2}
trainer: {name: sklearn}
searcher: {name: random}
space:
  model: {type: choice, values: [linear, forest, knn, tree]}
objectives:
  - {metric: accuracy, mode: max}
  - {metric: size_bytes, mode: min}
resources: {cpu: 1}
budget: {trials: 4}
ensemble: {rounds: 10}
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_search_ends_with_an_ensemble_trial(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    run = automl.search(write_spec(SEARCH), out=tmp_path / "run")
    trials = run.trials()
    singles = [t for t in trials if not is_ensemble_trial(t) and t["status"] == "completed"]
    ensemble = [t for t in trials if is_ensemble_trial(t)]
    assert len(singles) == 4 and len(ensemble) == 1
    made = ensemble[0]
    assert made["number"] == 4 and made["status"] == "completed", made["error"]
    assert made["metrics"]["accuracy"] >= max(t["metrics"]["accuracy"] for t in singles)
    assert {"test_accuracy", "size_bytes", "log_loss"} <= set(made["metrics"])
    assert Path(made["artifact"]).is_file()
    summary = run.info()["summary"]["ensemble"]
    assert summary["built"] and summary["number"] == 4
    counts = ensemble_counts(made["config"]) or {}
    assert len(counts) >= 2 and set(counts) <= {t["number"] for t in singles}
    # Extended on resume: two more trials (numbered after the ensemble's, which takes no trial's place),
    # then the ensemble is selected again over all six, still one ensemble trial under its number.
    more = automl.search(write_spec(SEARCH), out=tmp_path / "run", resume=True, trials=6).trials()
    assert [t["number"] for t in more if not is_ensemble_trial(t)] == [0, 1, 2, 3, 5, 6]
    assert [t["number"] for t in more if is_ensemble_trial(t)] == [4]
    again = Run.open(tmp_path / "run").info()["summary"]["ensemble"]
    assert again["candidates"] == [0, 1, 2, 3, 5, 6] and (again.get("kept") or again.get("replaced"))
