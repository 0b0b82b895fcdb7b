"""Ensembles (members from the space or from the best trials so far) and skops / ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skops.io as sio
from automl_sklearn.export import load_model
from automl_sklearn.pool import RECORD
from sk_helpers import MakeTrial, run_all, splits
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import BaggingClassifier, StackingRegressor, VotingClassifier

from automl.plugin import TrialError


def finish(trainer: object) -> None:
    """Run a trial to the end as the engine does, export included (which writes its record)."""
    run_all(trainer)  # type: ignore[arg-type]
    trainer.export(trainer.context.trial_dir)  # type: ignore[attr-defined]


def test_voting_members_and_weights_from_the_space(make_trial: MakeTrial) -> None:
    config = {"model": "voting", "members": "svm+forest+knn", "voting": "soft", "svm__weight": 3.0,
              "forest__n_estimators": 15, "n_neighbors": 7}
    trainer = make_trial(config)
    run_all(trainer)
    voting = trainer.pipeline_.named_steps["model"]
    assert isinstance(voting, VotingClassifier) and voting.voting == "soft"
    assert [name for name, _ in voting.estimators] == ["svm", "forest", "knn"]
    np.testing.assert_array_equal(voting.weights, [3.0, 1.0, 1.0])
    # Soft voting needs probabilities: the SVM is calibrated, the others are used as they are.
    svm, forest, knn = (e for _, e in voting.estimators)
    assert isinstance(svm, CalibratedClassifierCV) and forest.n_estimators == 15 and knn.n_neighbors == 7
    assert "log_loss" in trainer.evaluate("valid")


def test_stacking_meta_learner_and_bagging_base_are_searched(make_trial: MakeTrial) -> None:
    data = splits("diabetes", "regression")
    stack = make_trial({"model": "stacking", "members": "linear+knn", "meta": "forest", "meta__n_estimators": 12,
                        "meta__max_depth": 3}, data=data)
    run_all(stack)
    model = stack.pipeline_.named_steps["model"]
    assert isinstance(model, StackingRegressor) and model.cv == 3
    assert model.final_estimator_.n_estimators == 12 and model.final_estimator_.max_depth == 3
    bag = make_trial({"model": "bagging", "base": "knn", "bagging__n_estimators": 6, "n_neighbors": 3}, {"steps": 3},
                     number=1)
    sizes = [len(bag.pipeline_.named_steps["model"].estimators_) for _ in bag.run_steps(1)]
    assert sizes == [2, 4, 6]  # bagging grows its members over budget steps
    assert isinstance(bag.pipeline_.named_steps["model"], BaggingClassifier)
    assert bag.pipeline_.named_steps["model"].estimators_[0].n_neighbors == 3


def test_ensembles_of_the_best_trials_so_far(make_trial: MakeTrial) -> None:
    configs = [{"model": "tree", "max_depth": 1}, {"model": "linear"}, {"model": "knn"}, {"model": "tree", "max_depth": 1}]
    accuracy = {}
    for number, config in enumerate(configs):
        trainer = make_trial(config, number=number)
        finish(trainer)
        accuracy[number] = trainer.evaluate("valid")["accuracy"]
        record = json.loads((trainer.context.trial_dir / RECORD).read_text())
        assert record["number"] == number and record["config"]["model"] == config["model"]
    # A duplicate config counts once; ties go to the earlier trial.
    expected = sorted([0, 1, 2], key=lambda n: (-accuracy[n], n))[:2]
    voting = make_trial({"model": "voting", "ensemble_size": 2, "rank_decay": 0.5}, number=10)
    finish(voting)
    assert voting.members == expected
    model = voting.pipeline_.named_steps["model"]
    np.testing.assert_array_equal(model.weights, [1.0, 0.5])
    # Each member keeps its own preprocessing and its own config.
    assert [name for name, _ in model.estimators] == [f"trial{n}_{configs[n]['model']}" for n in expected]
    # An ensemble never becomes a member of another ensemble.
    stacking = make_trial({"model": "stacking", "ensemble_size": 5}, number=11)
    finish(stacking)
    assert sorted(stacking.members) == [0, 1, 2]
    bagging = make_trial({"model": "bagging", "base": "best", "n_estimators": 3}, number=12)
    run_all(bagging)
    assert bagging.members == expected[:1]


def test_ensemble_without_finished_trials_fails_with_the_reason(make_trial: MakeTrial) -> None:
    with pytest.raises(TrialError, match="needs at least 2 completed single-model trials; 0 had finished"):
        run_all(make_trial({"model": "voting"}))


def test_onnx_export_predicts_like_sklearn(make_trial: MakeTrial) -> None:
    for number, config in enumerate([{"model": "forest", "n_estimators": 10}, {"model": "linear"},
                                     {"model": "qda", "reg_param": 0.01}, {"model": "naive_bayes"},
                                     {"model": "voting", "members": "linear+svm", "voting": "soft"}]):
        trainer = make_trial(config, {"export": "onnx"}, number=number)
        run_all(trainer)
        path = trainer.export(trainer.context.trial_dir)
        assert path.suffix == ".onnx"
        X = trainer.context.data.test.X
        # Float32 inference may flip a prediction sitting on a tie; the export allows 1% of such rows.
        agree = np.mean(trainer.load_predictor(path)(X) == trainer.pipeline_.predict(X))
        assert agree >= 29 / 30, (config, agree)


def test_onnx_export_that_cannot_convert_fails_or_falls_back(make_trial: MakeTrial) -> None:
    # skl2onnx 1.20 cannot convert HistGradientBoosting (field notes): onnx fails the trial, auto falls back.
    strict = make_trial({"model": "hgb", "max_iter": 5}, {"export": "onnx"})
    run_all(strict)
    with pytest.raises(TrialError, match="skl2onnx cannot convert HistGradientBoostingClassifier"):
        strict.export(strict.context.trial_dir)
    assert not (strict.context.trial_dir / RECORD).exists()  # a failed trial is no ensemble member
    auto = make_trial({"model": "hgb", "max_iter": 5}, {"export": "auto"}, number=1)
    run_all(auto)
    assert auto.export(auto.context.trial_dir).suffix == ".skops"


@pytest.mark.parametrize(("config", "export", "like_pipeline"), [
    # Trees compare float32 inputs with float32 thresholds in ONNX: rows near a split may go the other
    # way (2 of iris' 30 test rows here), so the file's scores are its own, not the pipeline's.
    ({"model": "forest", "n_estimators": 10}, "onnx", False),
    ({"model": "svm"}, "onnx", True),  # no predict_proba: no log_loss, from the file either
    ({"model": "linear"}, "onnx", True),
    ({"model": "linear"}, "skops", True),
])
def test_an_exported_file_is_scored_on_its_own_predictions(
    make_trial: MakeTrial, config: dict, export: str, like_pipeline: bool
) -> None:
    trainer = make_trial(config, {"export": export})
    run_all(trainer)
    path = trainer.export(trainer.context.trial_dir)
    assert path.suffix == f".{export}"
    for split in ("valid", "test"):
        part = getattr(trainer.context.data, split)
        want, got = trainer.evaluate(split), trainer.evaluate_artifact(path, split)
        assert set(got) == set(want)
        # Scored from the file's own predictions...
        assert got["accuracy"] == np.mean(trainer.load_predictor(path)(part.X) == part.y.to_numpy())
        for name, value in want.items() if like_pipeline else ():
            # ...which match the pipeline's up to float32 ties (a flipped row moves a macro score by ~3/n).
            assert got[name] == pytest.approx(value, abs=3 / len(part)), (split, name)


def test_a_cross_validated_export_is_not_scored_on_the_rows_it_was_fitted_on(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "linear"}, data=splits("iris", "classification", folds=3))
    run_all(trainer)
    path = trainer.export(trainer.context.trial_dir)
    assert set(trainer.evaluate_artifact(path, "test")) == set(trainer.evaluate("test"))
    with pytest.raises(ValueError, match="fitted on the validation rows"):
        trainer.evaluate_artifact(path, "valid")


class Foreign:
    """A type no sklearn trainer writes."""


def test_skops_loading_refuses_types_it_did_not_write(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "foreign.skops"
    sio.dump({"model": Foreign()}, path)
    with pytest.raises(ValueError, match="does not trust"):
        load_model(path)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_searched_voting_and_stacking_skops_files_load_back(make_trial: MakeTrial, task: str) -> None:
    # Their fitted named_estimators_ is a sklearn Bunch: without it in the trust list, load refused the trainer's
    # own file (a previous-spaces benchmark run on vehicle, 2026-12-05).
    data = splits("wine" if task == "classification" else "diabetes", task)
    for number, config in enumerate([{"model": "voting", "members": "linear+knn"},
                                     {"model": "stacking", "members": "linear+knn", "meta": "linear"}]):
        trainer = make_trial(config, {"export": "skops"}, number=number, data=data)
        run_all(trainer)
        path = trainer.export(trainer.context.trial_dir)
        assert path.suffix == ".skops"
        X = trainer.context.data.test.X
        np.testing.assert_array_equal(load_model(path).predict(X), trainer.pipeline_.predict(X))
