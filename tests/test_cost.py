"""Cost-aware search in the driver: trials' costs reach searchers, the wall-time deadline is respected
before a trial starts, and the store keeps where a trial's seconds went. No Ray is started here."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from automl.interfaces import Objective, Searcher, TrialOutcome
from automl.searcher_adapter import CostModel, SearcherAdapter, outcome_from_row, outcome_of
from automl.space import Choice, Float, SearchSpace
from automl.store import Store
from automl.trial_job import FINAL, TIMINGS

SPACE = SearchSpace([Choice("model", {}, ("cheap", "dear")), Float("x", {}, 0.0, 1.0)])


class Scripted(Searcher):
    """Suggests the configs it is given, in order, and remembers what it was told."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__(SPACE, [Objective("loss", "min")])
        self.configs = list(configs)
        self.told: list[TrialOutcome] = []

    def suggest(self, number: int) -> dict[str, Any] | None:
        return self.configs.pop(0) if self.configs else None

    def observe(self, outcome: TrialOutcome) -> None:
        self.told.append(outcome)


def test_a_trial_outcome_carries_its_cost_from_tune_and_from_the_store() -> None:
    done = outcome_of(3, {"x": 0.1}, {"loss": 0.5, "budget": 1, FINAL: True, "time_total_s": 2.5,
                                      "training_iteration": 2}, False, 1)
    assert done.cost_s == 2.5
    assert done.values == {"loss": 0.5}  # Tune's bookkeeping is not a metric
    assert outcome_of(3, {}, {}, True, 1).cost_s is None
    row = {"number": 4, "config": {}, "status": "completed", "metrics": {"loss": 1.0}, "budget": 1,
           "max_budget": 1, "duration": 7.0}
    assert outcome_from_row(row).cost_s == 7.0
    assert outcome_from_row({**row, "duration": None}).cost_s is None


def test_the_cost_model_predicts_the_cheapest_trial_of_the_same_kind() -> None:
    model = CostModel()
    model.add(TrialOutcome(0, {"model": "dear", "x": 0.1}, "completed", {}, 1, 1, 30.0))
    model.add(TrialOutcome(1, {"model": "dear", "x": 0.9}, "completed", {}, 1, 1, 20.0))
    model.add(TrialOutcome(2, {"model": "cheap", "x": 0.5}, "completed", {}, 1, 1, 1.0))
    model.add(TrialOutcome(-1, {"model": "other"}, "completed", {}, 1, 1, 1.0))  # warm start: another machine
    assert model.predict({"model": "dear", "x": 0.5}) == 20.0
    assert model.predict({"model": "cheap", "x": 0.0}) == 1.0
    assert model.predict({"model": "other"}) is None


def test_with_fitting_seconds_only_they_scale_with_size_and_the_rest_is_added_once() -> None:
    model = CostModel()
    # 10 trees: 3 s in all, 0.1 s of it fitting (the rest: start-up, export, measurement). One size seen says
    # nothing of how fitting grows: the cheapest of its kind.
    model.add(TrialOutcome(0, {"model": "gbm", "n": 10}, "completed", {}, 1, 1, 3.0, 0.1), units=10.0)
    assert model.predict({"model": "gbm", "n": 1000}, units=1000.0) == pytest.approx(3.0)
    # 110 trees fitted in 1.1 s: 0.01 s per tree beyond the fixed 0.1 s, and the other 2.9 s once.
    model.add(TrialOutcome(1, {"model": "gbm", "n": 110}, "completed", {}, 1, 1, 4.5, 1.1), units=110.0)
    assert model.predict({"model": "gbm", "n": 1010}, units=1010.0) == pytest.approx(0.1 + 1000 * 0.01 + 2.9)
    assert model.predict({"model": "gbm", "n": 5}, units=5.0) == pytest.approx(0.1 + 2.9)  # never below the cheapest
    # A trial without fitting seconds (an old store) still counts, by its whole cost.
    old = CostModel()
    old.add(TrialOutcome(0, {"model": "gbm", "n": 10}, "completed", {}, 1, 1, 3.0), units=10.0)
    old.add(TrialOutcome(1, {"model": "gbm", "n": 20}, "completed", {}, 1, 1, 5.0), units=20.0)
    assert old.predict({"model": "gbm", "n": 1010}, units=1010.0) == pytest.approx(3.0 + 1000 * 0.2)


def test_a_fixed_fitting_cost_is_not_taken_for_a_cost_per_unit() -> None:
    # German credit, 750 rows, five folds: 4 boosted trees fit in 0.34 s, 7 deeper ones in 0.40 s - nearly all
    # of it fixed. Seconds per unit alone predicted 57 s for 251 trees; the line predicts what they take.
    model = CostModel()
    model.add(TrialOutcome(0, {"model": "lgbm"}, "completed", {}, 1, 1, 0.46, 0.34), units=8.0)
    model.add(TrialOutcome(1, {"model": "lgbm"}, "completed", {}, 1, 1, 0.43, 0.40), units=45.8)
    predicted = model.predict({"model": "lgbm"}, units=1192.0)
    assert predicted is not None and 0.4 < predicted < 5.0


def test_fitting_seconds_reach_the_outcome_from_a_result_and_from_a_stored_row() -> None:
    result = {FINAL: True, "time_total_s": 5.0, TIMINGS: {"fit_s": 1.5, "export_s": 3.0}}
    assert outcome_of(0, {}, result, False, 1).fit_s == 1.5
    row = {"number": 4, "config": {}, "status": "completed", "metrics": {}, "budget": 1, "max_budget": 1,
           "duration": 7.0, "timings": {"fit_s": 2.0}}
    assert outcome_from_row(row).fit_s == 2.0
    assert outcome_from_row({**row, "timings": {}}).fit_s is None


def _adapter(configs: list[dict[str, Any]], deadline: float | None, skipped: list[Any]) -> tuple[SearcherAdapter,
                                                                                                  Scripted]:
    strategy = Scripted(configs)
    adapter = SearcherAdapter(strategy, max_budget=1, deadline=deadline,
                              on_skip=lambda number, config, reason: skipped.append((number, config, reason)))
    return adapter, strategy


def test_a_trial_predicted_not_to_finish_before_the_deadline_is_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    import automl.searcher_adapter as ta

    now = 1000.0
    monkeypatch.setattr(ta.time, "time", lambda: now)
    skipped: list[Any] = []
    configs = [{"model": "dear", "x": 0.1}, {"model": "dear", "x": 0.2}, {"model": "cheap", "x": 0.3}]
    adapter, strategy = _adapter(configs, deadline=now + 10.0, skipped=skipped)
    adapter.costs.add(TrialOutcome(0, {"model": "dear", "x": 0.9}, "completed", {}, 1, 1, 25.0))
    adapter.costs.add(TrialOutcome(1, {"model": "cheap", "x": 0.9}, "completed", {}, 1, 1, 2.0))
    adapter.next_number = 2
    suggestion = adapter.suggest("t1")
    assert isinstance(suggestion, dict) and suggestion["model"] == "cheap"
    # The two dear draws were recorded as not started, told to the searcher, and their numbers used.
    assert [(n, c["model"]) for n, c, _ in skipped] == [(2, "dear"), (3, "dear")]
    assert "not started" in skipped[0][2] and "25.0s" in skipped[0][2]
    assert [(o.number, o.status, o.budget) for o in strategy.told] == [(2, "stopped", 0), (3, "stopped", 0)]


def test_without_a_deadline_or_a_known_cost_every_draw_starts() -> None:
    skipped: list[Any] = []
    adapter, _ = _adapter([{"model": "dear", "x": 0.1}], deadline=None, skipped=skipped)
    adapter.costs.add(TrialOutcome(0, {"model": "dear", "x": 0.9}, "completed", {}, 1, 1, 1e9))
    assert isinstance(adapter.suggest("t"), dict) and not skipped
    adapter, _ = _adapter([{"model": "new", "x": 0.1}], deadline=0.0, skipped=skipped)  # long past, but unknown cost
    assert isinstance(adapter.suggest("t"), dict) and not skipped


def test_when_every_draw_is_too_expensive_the_search_starts_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    import automl.searcher_adapter as ta

    monkeypatch.setattr(ta.time, "time", lambda: 50.0)
    skipped: list[Any] = []
    adapter, _ = _adapter([{"model": "dear", "x": i / 10} for i in range(10)], deadline=55.0, skipped=skipped)
    adapter.costs.add(TrialOutcome(0, {"model": "dear", "x": 0.9}, "completed", {}, 1, 1, 60.0))
    assert adapter.suggest("t") == SearcherAdapter.FINISHED
    assert len(skipped) == SearcherAdapter.MAX_SKIPS


def test_completed_outcomes_told_to_the_adapter_teach_its_cost_model() -> None:
    adapter, _ = _adapter([], deadline=None, skipped=[])
    adapter.tell(TrialOutcome(5, {"model": "dear"}, "completed", {"loss": 1.0}, 1, 1, 12.0))
    adapter.tell(TrialOutcome(6, {"model": "cheap"}, "failed", {}, 0, 1, 0.1))  # a failure says nothing of cost
    assert adapter.costs.predict({"model": "dear"}) == 12.0
    assert adapter.costs.predict({"model": "cheap"}) is None


def test_an_older_store_gains_the_timings_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = Store(f"sqlite:///{path}")
    run = store.create_run(name="r", directory=str(tmp_path), spec_text="x", spec_hash="h", seed=0,
                           objectives=[], versions={})
    store.save_trial(run, 0, status="completed", config={"a": 1})
    store.close()
    with sqlite3.connect(path) as conn:  # as a store written before the column existed
        conn.execute("ALTER TABLE trials DROP COLUMN timings")
    reopened = Store(f"sqlite:///{path}")
    assert reopened.trial(run, 0)["config"] == {"a": 1}
    reopened.save_trial(run, 0, timings={"fit_s": 1.0, "total_s": 2.0})
    assert reopened.trial(run, 0)["timings"] == {"fit_s": 1.0, "total_s": 2.0}


def test_show_states_the_share_of_a_trial_not_spent_fitting() -> None:
    from automl.cli import _overhead

    assert _overhead({"fit_s": 3.0, "export_s": 0.4, "measure_s": 0.6, "other_s": 0.0, "total_s": 4.0}) \
        == "25% (measure)"
    assert _overhead({"fit_s": 1.0, "export_s": 2.0, "measure_s": 0.5, "other_s": 0.5, "total_s": 4.0}) \
        == "75% (export)"
    assert _overhead(None) == "-"


def test_a_wall_time_too_short_for_one_trial_is_refused_at_validate(write_spec: Any) -> None:
    import automl
    from automl.errors import SpecError

    text = """
task: classification
data: {dataset: iris}
trainer: {name: sklearn}
space:
  model: {type: choice, values: [knn, tree]}
objectives: [{metric: accuracy, mode: max}]
budget: {trials: 4, wall_time: 5s}
"""
    with pytest.raises(SpecError) as info:
        automl.validate(write_spec(text), data=False)
    assert info.value.field == "budget.wall_time" and "at least 15s" in str(info.value)
    assert automl.validate(write_spec(text.replace("5s", "20s")), data=False).spec.budget.wall_time == 20


def test_the_final_measurement_covers_the_front_and_the_trials_a_noisy_latency_kept_off_it() -> None:
    from types import SimpleNamespace

    from automl.engine import _latency_candidates
    from automl.records import TrialRecord

    def trial(number: int, accuracy: float, latency: float) -> TrialRecord:
        return TrialRecord.from_row({"number": number, "status": "completed",
                                     "metrics": {"accuracy": accuracy, "latency_ms": latency}})

    plan = SimpleNamespace(objectives=[Objective("accuracy", "max"), Objective("latency_ms", "min")], constraints=[])
    trials = [trial(0, 0.90, 1.0), trial(1, 0.95, 2.0),
              trial(2, 0.89, 1.2),   # off the front, but 1.2 / 1.5 < 1.0 would put it on: measured again
              trial(3, 0.80, 5.0)]   # far from the front: never measured again
    assert _latency_candidates(plan, trials, [0, 1], True) == [0, 1, 2]
    accuracy_only = SimpleNamespace(objectives=[Objective("accuracy", "max"), Objective("size_bytes", "min")],
                                    constraints=[])
    assert _latency_candidates(accuracy_only, trials, [1], True) == [1]


def test_each_measured_figure_says_what_it_is(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from automl.interfaces import Trainer
    from automl.measure import measure_artifact

    class Sized(Trainer):
        def fit_step(self, step: int) -> None: ...
        def evaluate(self, split: str = "valid") -> dict[str, float]: return {}
        def export(self, directory: Path) -> Path: return directory
        def load_predictor(self, path: Path) -> Any: return lambda batch: batch
        def sample_input(self, batch_size: int) -> Any: return [0] * batch_size

    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"x" * 1234)
    trainer = Sized({}, {}, None)  # type: ignore[arg-type]
    job = SimpleNamespace(batch_size=1, warmup=1, repeats=3)
    how: dict[str, str] = {}
    out = measure_artifact(trainer, artifact, job, ("size_bytes", "latency_ms"), quick=False, how=how)  # type: ignore[arg-type]
    assert out["size_bytes"] == 1234 and out["latency_ms"] >= 0
    assert how["size_bytes"] == "onnx: file"
    assert how["latency_ms"].startswith("onnx, batch 1, 1 thread, median of 3 calls")


def test_starting_points_run_first_and_the_searcher_learns_from_them() -> None:
    from automl.builtin.searchers import GridSearcher
    from automl.space import Choice as C

    skipped: list[Any] = []
    strategy = Scripted([{"model": "dear", "x": 0.5}])
    adapter = SearcherAdapter(strategy, max_budget=1, start=[{"model": "cheap", "x": 0.0}, {"model": "dear", "x": 0.0}],
                              on_skip=lambda *a: skipped.append(a))
    given = [adapter.suggest(f"t{i}") for i in range(3)]
    assert [(g["_automl_number"], g["model"], g["x"]) for g in given] == [(0, "cheap", 0.0), (1, "dear", 0.0),  # type: ignore[index]
                                                                           (2, "dear", 0.5)]
    adapter.on_trial_complete("t0", {"loss": 0.3, "budget": 1, FINAL: True, "time_total_s": 1.0})
    assert [(o.number, o.status) for o in strategy.told] == [(0, "completed")]
    # A grid counts its own points: trial numbers taken by starting points skip none of them.
    grid = GridSearcher(SearchSpace([C("k", {}, ("a", "b"))]), [Objective("loss", "min")])
    adapter = SearcherAdapter(grid, max_budget=1, start=[{"k": "b"}])
    picks = [adapter.suggest(f"g{i}") for i in range(4)]
    assert [p["k"] for p in picks[:3]] == ["b", "a", "b"] and picks[3] == SearcherAdapter.FINISHED  # type: ignore[index]


def test_only_trials_among_the_best_so_far_export_their_model(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from automl.recorder import Recorder
    from automl.trial_job import EXPORT_BAR
    from automl.trial_worker import _below_export_bar

    callback = Recorder.__new__(Recorder)  # only the bar's bookkeeping is exercised here
    callback.run_dir, callback.primary, callback.export_top, callback.values = (
        tmp_path, Objective("accuracy", "max"), 3, [])
    job = SimpleNamespace(export_top=("accuracy", "max", 3), run_dir=str(tmp_path))
    for value in (0.70, 0.90):  # fewer than 3 completed: no bar yet, everyone exports
        callback.note_completed(value)
        assert not (tmp_path / EXPORT_BAR).exists()
        assert _below_export_bar(job, {"accuracy": 0.1}) is None  # type: ignore[arg-type]
    callback.note_completed(0.80)
    callback.note_completed(0.85)  # the 3rd best of 0.70, 0.80, 0.85, 0.90 is 0.80
    assert _below_export_bar(job, {"accuracy": 0.80}) is None  # type: ignore[arg-type]  # a tie exports
    reason = _below_export_bar(job, {"accuracy": 0.79})  # type: ignore[arg-type]
    assert reason is not None and "not among the 3 best" in reason and "0.8" in reason
    loss_job = SimpleNamespace(export_top=("loss", "min", 3), run_dir=str(tmp_path / "other"))
    callback.run_dir, callback.primary, callback.values = tmp_path / "other", Objective("loss", "min"), []
    (tmp_path / "other").mkdir()
    for value in (0.3, 0.1, 0.2, 0.5):
        callback.note_completed(value)
    assert _below_export_bar(loss_job, {"loss": 0.25}) is None  # type: ignore[arg-type]
    assert _below_export_bar(loss_job, {"loss": 0.31}) is not None  # type: ignore[arg-type]
    assert _below_export_bar(SimpleNamespace(export_top=None), {"loss": 9.0}) is None  # type: ignore[arg-type]


def test_models_export_auto_keeps_every_model_unless_a_wall_time_search_has_one_trainer_objective(
    write_spec: Any,
) -> None:
    import automl

    base = """
task: classification
data: {dataset: iris}
trainer: {name: sklearn}
space:
  model: {type: choice, values: [knn, tree]}
objectives: [{metric: accuracy, mode: max}]
"""
    assert automl.validate(write_spec(base), data=False).export_top is None
    timed = base + "budget: {trials: 100, wall_time: 60s}\n"
    assert automl.validate(write_spec(timed), data=False).export_top == 20  # the ensemble's 20 candidates
    two = timed.replace("objectives: [{metric: accuracy, mode: max}]",
                        "objectives: [{metric: accuracy, mode: max}, {metric: latency_ms, mode: min}]")
    assert automl.validate(write_spec(two), data=False).export_top is None
    assert automl.validate(write_spec(base + "models: {export: top, top: 3}\nensemble: {enabled: false}\n"),
                           data=False).export_top == 3
    assert automl.validate(write_spec(timed + "models: {export: all}\n"), data=False).export_top is None


def test_with_cost_units_the_prediction_scales_with_the_configs_size() -> None:
    model = CostModel()
    model.add(TrialOutcome(0, {"model": "forest", "n": 10}, "completed", {}, 1, 1, 2.0), units=10.0)
    model.add(TrialOutcome(1, {"model": "forest", "n": 40}, "completed", {}, 1, 1, 4.0), units=40.0)
    # The line through the cheapest trial (2 s at 10) and the largest (4 s at 40): 2 s plus 1/15 s a unit beyond 10.
    assert model.predict({"model": "forest", "n": 2000}, units=2000.0) == pytest.approx(2.0 + 1990 / 15)
    assert model.predict({"model": "forest", "n": 2000}) == 2.0  # without units: the cheapest of its kind
    assert model.predict({"model": "knn"}, units=1.0) is None  # a kind never seen
    assert model.floor() == 2.0


def test_a_large_config_of_a_cheap_kind_is_not_started_and_the_search_asks_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import automl.searcher_adapter as ta

    monkeypatch.setattr(ta.time, "time", lambda: 100.0)
    skipped: list[Any] = []
    configs = [{"model": "forest", "n": 1800 + i} for i in range(SearcherAdapter.MAX_SKIPS)] + [{"model": "forest", "n": 20}]
    strategy = Scripted(configs)
    adapter = SearcherAdapter(strategy, max_budget=1, deadline=130.0, cost_units=lambda c: float(c["n"]),
                              on_skip=lambda number, config, reason: skipped.append((number, config, reason)))
    adapter.tell(TrialOutcome(0, {"model": "forest", "n": 50}, "completed", {"loss": 1.0}, 1, 1, 5.0))
    adapter.tell(TrialOutcome(1, {"model": "forest", "n": 10}, "completed", {"loss": 1.0}, 1, 1, 1.0))
    adapter.next_number = 2
    adapter.live["other"] = (0, {"model": "forest", "n": 50})  # a trial still running
    # 30 s left, 0.1 s per tree: 1,800 trees would need 180 s. Not started; a 20-tree forest still fits, so the
    # search is not over: the adapter answers "nothing now" (None), and draws again when asked.
    assert adapter.suggest("t1") is None
    assert len(skipped) == SearcherAdapter.MAX_SKIPS and "predicted to take at least 180.0s" in skipped[0][2]
    again = adapter.suggest("t2")
    assert isinstance(again, dict) and again["n"] == 20


def test_a_cost_estimate_that_raises_counts_as_none() -> None:
    def broken(config: Any) -> float:
        raise RuntimeError("plugin bug")

    adapter = SearcherAdapter(Scripted([{"model": "a"}]), max_budget=1, deadline=None, cost_units=broken)
    adapter.tell(TrialOutcome(0, {"model": "a"}, "completed", {"loss": 1.0}, 1, 1, 3.0))
    assert adapter.costs.predict({"model": "a"}, adapter._units({"model": "a"})) == 3.0


def test_the_sklearn_cost_counts_trees_leaves_and_features() -> None:
    from automl_sklearn.cost import config_cost

    small = config_cost({"model": "forest", "forest__n_estimators": 10, "forest__max_features": 0.5}, {})
    large = config_cost({"model": "forest", "forest__n_estimators": 1000, "forest__max_features": 0.5}, {})
    assert large == pytest.approx(100 * small)
    shallow = config_cost({"model": "lgbm", "lgbm__n_estimators": 100, "lgbm__num_leaves": 3}, {})
    deep = config_cost({"model": "lgbm", "lgbm__n_estimators": 100, "lgbm__num_leaves": 4095}, {})
    assert deep == pytest.approx(6 * shallow)  # log2(4096) / log2(4)
    assert config_cost({"model": "knn", "knn__n_neighbors": 50}, {}) == 1.0
    assert config_cost({}, {"model": "xgboost", "xgboost__n_estimators": 8}) == 8.0
