"""The sklearn side of ensembles from what ran: predictions, their scores, the prefit voting export (no Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from automl_sklearn.export import load_model, load_scorable
from automl_sklearn.metrics import scores
from automl_sklearn.selection import MEMBER_FILE
from automl_sklearn.trainer import SklearnTrainer
from sk_helpers import MakeTrial, run_all, splits

from automl.ensemble import EnsembleMember, blend, greedy_selection
from automl.interfaces import TrialContext

CONFIGS = [{"model": "linear"}, {"model": "forest", "n_estimators": 20}, {"model": "knn"}]


def fitted(make_trial: MakeTrial, data: Any, params: dict[str, Any] | None = None) -> list[SklearnTrainer]:
    """Three trials run as the engine runs them: fit, export into the trial directory, predictions."""
    out = []
    for number, config in enumerate(CONFIGS):
        trainer = make_trial(config, params or {}, data=data, number=number)
        run_all(trainer)
        trainer.artifact_ = trainer.export(trainer.context.trial_dir)
        out.append(trainer)
    return out


def builder(tmp_path: Path, data: Any, params: dict[str, Any] | None = None) -> SklearnTrainer:
    """The trainer the engine builds for the ensemble step: an empty config, the search's data, never fitted."""
    directory = tmp_path / "trials" / "00003"
    return SklearnTrainer({}, params or {}, TrialContext(data.task, 3, data, directory))  # type: ignore[arg-type]


@pytest.mark.parametrize("folds", [0, 3])
def test_predictions_score_exactly_as_the_trial_does(make_trial: MakeTrial, tmp_path: Path, folds: int) -> None:
    data = splits("wine", "classification", folds=folds)
    trials = fitted(make_trial, data)
    scorer = builder(tmp_path, data)
    for trainer in trials:
        valid = trainer.predictions("valid")
        rows = len(data.valid.y) if not folds else len(data.train.y) + len(data.valid.y)
        assert valid.shape == (rows, 3) and np.allclose(valid.sum(axis=1), 1.0)
        assert scorer.score_predictions(valid, "valid") == pytest.approx(trainer.evaluate("valid"))
        # One metric at a time (what the selection asks for) gives the same values as all of them.
        for name, value in trainer.evaluate("valid").items():
            assert scorer.score_predictions(valid, "valid", [name]) == {name: pytest.approx(value)}
        assert scorer.score_predictions(trainer.predictions("test"), "test") == pytest.approx(trainer.evaluate("test"))


def test_a_voting_ensemble_of_three_trials_predicts_what_was_selected(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("breast_cancer", "classification")
    trials = fitted(make_trial, data)
    scorer = builder(tmp_path, data)
    valid = [t.predictions("valid") for t in trials]
    test = [t.predictions("test") for t in trials]
    picked = greedy_selection(valid, lambda p: scorer.score_predictions(p, "valid")["log_loss"], rounds=10)
    weights = picked.weights
    members = [EnsembleMember(i, CONFIGS[i], float(w), t.artifact_, t.context.trial_dir)
               for i, (t, w) in enumerate(zip(trials, weights, strict=True)) if w]
    assert len(members) >= 2  # log loss gains from averaging these three
    used = [i for i, w in enumerate(weights) if w]
    expected = {"valid": blend([valid[i] for i in used], weights[used]),
                "test": blend([test[i] for i in used], weights[used])}
    path = scorer.build_ensemble(members, scorer.context.trial_dir, expected)
    assert path.suffix == ".skops"
    model = load_model(path)  # the trusted-type loader: only scikit-learn types inside
    recorded = scorer.score_predictions(expected["valid"], "valid")
    from_file = scores("classification", model, data.valid.X, data.valid.y)
    assert from_file["accuracy"] == recorded["accuracy"]
    assert from_file["log_loss"] == pytest.approx(recorded["log_loss"], rel=1e-9)
    assert np.allclose(model.predict_proba(data.test.X), expected["test"])
    # The predictor the engine times loads the same file.
    assert np.array_equal(scorer.load_predictor(path)(data.test.X), model.predict(data.test.X))


def test_onnx_trials_keep_a_skops_member_file_and_the_ensemble_exports_to_onnx(
    make_trial: MakeTrial, tmp_path: Path
) -> None:
    data = splits("iris", "classification")
    trials = fitted(make_trial, data, {"export": "onnx"})
    assert all(t.artifact_.suffix == ".onnx" for t in trials)
    valid = [t.predictions("valid") for t in trials]
    assert all((t.context.trial_dir / MEMBER_FILE).is_file() for t in trials)  # written by predictions()
    scorer = builder(tmp_path, data, {"export": "onnx"})
    members = [EnsembleMember(i, CONFIGS[i], 1 / 3, t.artifact_, t.context.trial_dir) for i, t in enumerate(trials)]
    expected = {"valid": blend(valid, [1, 1, 1]), "test": blend([t.predictions("test") for t in trials], [1, 1, 1])}
    path = scorer.build_ensemble(members, scorer.context.trial_dir, expected)
    assert path.suffix == ".onnx"
    got = load_scorable(path, _voting(trials)).predict(data.valid.X)
    want = np.asarray(data.classes)[np.argmax(expected["valid"], axis=1)]
    assert np.mean(got == want) >= 0.97


def _voting(trials: list[SklearnTrainer]) -> Any:
    class Fitted:  # what load_scorable reads from the fitted model: its classes, and that it has probabilities
        classes_ = trials[0].pipeline_.classes_

        def predict_proba(self, X: Any) -> Any:  # pragma: no cover - never called
            raise AssertionError

    return Fitted()


def test_a_classifier_without_probabilities_votes_for_its_class(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("wine", "classification")
    configs = [{"model": "svm"}, {"model": "linear"}, {"model": "knn"}]
    trials = []
    for number, config in enumerate(configs):
        trainer = make_trial(config, {"export": "onnx"}, data=data, number=number)
        run_all(trainer)
        trainer.artifact_ = trainer.export(trainer.context.trial_dir)
        trials.append(trainer)
    votes = trials[0].predictions("valid")
    assert set(np.unique(votes)) == {0.0, 1.0} and np.all(votes.sum(axis=1) == 1)
    scorer = builder(tmp_path, data, {"export": "onnx"})
    own = trials[0].evaluate("valid")  # an SVM reports no log_loss (no probabilities): compare what it reports
    assert {k: v for k, v in scorer.score_predictions(votes, "valid").items() if k in own} == pytest.approx(own)
    members = [EnsembleMember(i, c, 1 / 3, t.artifact_, t.context.trial_dir)
               for i, (c, t) in enumerate(zip(configs, trials, strict=True))]
    valid = blend([t.predictions("valid") for t in trials], [1, 1, 1])
    path = scorer.build_ensemble(members, scorer.context.trial_dir, {"valid": valid})
    assert path.suffix == ".skops"  # skl2onnx has no converter for the SVM's votes: kept as skops, not lost
    model = load_model(path)
    assert np.array_equal(model.predict(data.valid.X), np.asarray(data.classes)[np.argmax(valid, axis=1)])


def test_a_member_without_a_skops_file_is_refused_with_the_reason(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("iris", "classification")
    trials = fitted(make_trial, data, {"export": "onnx"})  # predictions() not called: no skops copies
    scorer = builder(tmp_path, data)
    members = [EnsembleMember(i, CONFIGS[i], 0.5, t.artifact_, t.context.trial_dir) for i, t in enumerate(trials[:2])]
    with pytest.raises(ValueError, match="trial 0 has no skops file"):
        scorer.build_ensemble(members, scorer.context.trial_dir, {})


def test_regression_ensembles_average_values(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("diabetes", "regression")
    configs = [{"model": "linear"}, {"model": "forest", "n_estimators": 20}]
    trials = []
    for number, config in enumerate(configs):
        trainer = make_trial(config, {}, data=data, number=number)
        run_all(trainer)
        trainer.artifact_ = trainer.export(trainer.context.trial_dir)
        trials.append(trainer)
    scorer = builder(tmp_path, data)
    valid = [t.predictions("valid") for t in trials]
    assert valid[0].shape == (len(data.valid.y),)
    assert scorer.score_predictions(valid[1], "valid") == pytest.approx(trials[1].evaluate("valid"))
    members = [EnsembleMember(i, c, 0.5, t.artifact_, t.context.trial_dir)
               for i, (c, t) in enumerate(zip(configs, trials, strict=True))]
    expected = {"valid": blend(valid, [1, 1]), "test": blend([t.predictions("test") for t in trials], [1, 1])}
    path = scorer.build_ensemble(members, scorer.context.trial_dir, expected)
    assert np.allclose(load_model(path).predict(data.valid.X), expected["valid"])
    # A file that does not predict what was selected is refused.
    with pytest.raises(ValueError, match="differ from the selection's"):
        scorer.build_ensemble(members, scorer.context.trial_dir, {"valid": valid[0]})
