"""The sklearn side of ensembles from what ran: predictions, their scores, the manifest of members (no Ray)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from automl_sklearn.export import load_predictor, model_bytes
from automl_sklearn.metrics import scores
from automl_sklearn.selection import MANIFEST, MEMBER_FILE, load_ensemble
from automl_sklearn.trainer import SklearnTrainer
from sk_helpers import MakeTrial, run_all, splits

from automl.plugin import EnsembleMember, TrialContext, blend, greedy_selection

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


@pytest.mark.parametrize(("folds", "repeats"), [(0, 1), (3, 1), (3, 2)])
def test_predictions_score_exactly_as_the_trial_does(make_trial: MakeTrial, tmp_path: Path, folds: int,
                                                     repeats: int) -> None:
    data = splits("wine", "classification", folds=folds, repeats=repeats)
    trials = fitted(make_trial, data)
    scorer = builder(tmp_path, data)
    for trainer in trials:
        valid = trainer.predictions("valid")
        # Under repeated folds every row is predicted once per round, by a fit that did not see it.
        rows = len(data.valid.y) if not folds else (len(data.train.y) + len(data.valid.y)) * repeats
        assert valid.shape == (rows, 3) and np.allclose(valid.sum(axis=1), 1.0)
        assert scorer.score_predictions(valid, "valid") == pytest.approx(trainer.evaluate("valid"))
        # One metric at a time (what the selection asks for) gives the same values as all of them.
        for name, value in trainer.evaluate("valid").items():
            assert scorer.score_predictions(valid, "valid", [name]) == {name: pytest.approx(value)}
        assert scorer.score_predictions(trainer.predictions("test"), "test") == pytest.approx(trainer.evaluate("test"))


def _selected(make_trial: MakeTrial, tmp_path: Path, data: Any, params: dict[str, Any] | None = None) -> Any:
    """Three trials, the greedy selection over them, and what the selection scored (as the engine does)."""
    trials = fitted(make_trial, data, params)
    scorer = builder(tmp_path, data, params)
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
    return trials, scorer, members, expected


def test_an_ensemble_is_a_manifest_of_its_members_files(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("breast_cancer", "classification")
    trials, scorer, members, expected = _selected(make_trial, tmp_path, data)
    path = scorer.build_ensemble(members, scorer.context.trial_dir, expected)
    assert path == scorer.context.trial_dir / MANIFEST
    manifest = json.loads(path.read_text())
    assert manifest["task"] == "classification" and manifest["classes"] == [0, 1]
    assert [(e["trial"], e["weight"]) for e in manifest["members"]] == [(m.number, m.weight) for m in members]
    for entry, member in zip(manifest["members"], members, strict=True):
        placed = path.parent / entry["file"]
        assert entry["format"] == "skops" and placed.parent == path.parent
        # The member's own file, linked, not written again.
        assert os.path.samefile(placed, member.directory / MEMBER_FILE)
    # No file in the ensemble's directory ends as a model format: `automl export` takes none for the ensemble's.
    assert not [p for p in path.parent.iterdir() if p.suffix in (".skops", ".onnx")]
    model = load_ensemble(path)
    recorded = scorer.score_predictions(expected["valid"], "valid")
    from_file = scores("classification", model, data.valid.X, data.valid.y)
    assert from_file["accuracy"] == recorded["accuracy"]
    assert from_file["log_loss"] == pytest.approx(recorded["log_loss"], rel=1e-9)
    assert np.allclose(model.predict_proba(data.test.X), expected["test"])
    # What the engine measures and scores: the same manifest, through the trainer.
    assert np.array_equal(scorer.load_predictor(path)(data.test.X), model.predict(data.test.X))
    assert scorer.evaluate_artifact(path, "test") == pytest.approx(scorer.score_predictions(expected["test"], "test"))
    size, kind = scorer.model_size(path)
    assert kind == "ensemble: member files"
    assert size == sum((m.directory / MEMBER_FILE).stat().st_size for m in members)
    with pytest.raises(ValueError, match="an ensemble is its manifest"):
        scorer.convert(path, "onnx", tmp_path / "out")


def test_the_front_copy_of_a_manifest_loads_its_trials_members(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("breast_cancer", "classification")
    _, scorer, members, expected = _selected(make_trial, tmp_path, data)
    path = scorer.build_ensemble(members, scorer.context.trial_dir, expected)
    # The engine copies a front member's file alone into RUN/models/ (trial-NNNNN-<name>).
    (tmp_path / "models").mkdir()
    copy = tmp_path / "models" / f"trial-00003-{MANIFEST}"
    shutil.copyfile(path, copy)
    assert np.array_equal(load_predictor(copy)(data.test.X), load_ensemble(path).predict(data.test.X))
    other = tmp_path / "models" / f"trial-00002-{MANIFEST}"  # no trial 2 ensemble: its members are not found
    shutil.copyfile(path, other)
    with pytest.raises(ValueError, match="is missing"):
        load_predictor(other)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "sub/x", "..", "a\\b", ""])
def test_a_manifest_naming_a_file_outside_its_directory_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "x").write_text("not a model")
    directory = tmp_path / "ensemble"
    directory.mkdir()
    path = directory / MANIFEST
    path.write_text(json.dumps({"format": "automl-sklearn ensemble", "version": 1, "task": "regression",
                                "members": [{"trial": 0, "file": name, "format": "skops", "weight": 1.0}]}))
    with pytest.raises(ValueError, match=r"members\[0\]\.file must name a file in the manifest's own directory"):
        load_ensemble(path)
    with pytest.raises(ValueError, match="must name a file"):
        model_bytes(path)


def test_onnx_trials_are_members_by_their_onnx_files(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("iris", "classification")
    trials = fitted(make_trial, data, {"export": "onnx"})
    assert all(t.artifact_.suffix == ".onnx" for t in trials)
    valid = [t.predictions("valid") for t in trials]
    assert not any((t.context.trial_dir / MEMBER_FILE).exists() for t in trials)  # ONNX is enough: no skops copy
    scorer = builder(tmp_path, data, {"export": "onnx"})
    members = [EnsembleMember(i, CONFIGS[i], 1 / 3, t.artifact_, t.context.trial_dir) for i, t in enumerate(trials)]
    expected = {"valid": blend(valid, [1, 1, 1]), "test": blend([t.predictions("test") for t in trials], [1, 1, 1])}
    path = scorer.build_ensemble(members, scorer.context.trial_dir, expected)
    manifest = json.loads(path.read_text())
    assert {e["format"] for e in manifest["members"]} == {"onnx"} and not any(e["votes"] for e in manifest["members"])
    model = load_ensemble(path)
    got = model.predict(data.valid.X)
    want = np.asarray(data.classes)[np.argmax(expected["valid"], axis=1)]
    assert np.mean(got == want) >= 0.97
    assert np.allclose(model.predict_proba(data.valid.X), expected["valid"], atol=1e-4)  # float32 in ONNX


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
    manifest = json.loads(path.read_text())
    # The SVM's ONNX second output holds its decision scores: it votes one-hot, the others give probabilities.
    assert [e["votes"] for e in manifest["members"]] == [True, False, False]
    assert [e["format"] for e in manifest["members"]] == ["onnx"] * 3
    model = load_ensemble(path)
    assert np.array_equal(model.predict(data.valid.X), np.asarray(data.classes)[np.argmax(valid, axis=1)])


def test_a_member_without_a_model_file_is_refused_with_the_reason(make_trial: MakeTrial, tmp_path: Path) -> None:
    data = splits("iris", "classification")
    trials = fitted(make_trial, data)
    (trials[0].context.trial_dir / MEMBER_FILE).unlink()
    scorer = builder(tmp_path, data)
    members = [EnsembleMember(i, CONFIGS[i], 0.5, t.artifact_, t.context.trial_dir) for i, t in enumerate(trials[:2])]
    with pytest.raises(ValueError, match="trial 0 has no model.onnx nor model.skops"):
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
    assert "classes" not in json.loads(path.read_text())
    assert np.allclose(load_ensemble(path).predict(data.valid.X), expected["valid"])
    # Members that do not predict what was selected are refused.
    with pytest.raises(ValueError, match="differ from the selection's"):
        scorer.build_ensemble(members, scorer.context.trial_dir, {"valid": valid[0]})


@pytest.mark.parametrize(("folds", "repeats"), [(0, 1), (3, 1), (3, 2)])
def test_one_metric_on_class_positions_equals_every_metric_on_labels(folds: int, repeats: int) -> None:
    # String labels, not in the classes' order in the rows: the selection's one-metric path compares positions.
    import types

    import pandas as pd
    from automl_sklearn.selection import score_predictions

    rng = np.random.default_rng(0)
    labels = np.array(["setosa", "versicolor", "virginica"])
    y = pd.Series(labels[rng.integers(0, 3, 90)])

    def part(a: int, b: int) -> Any:
        return types.SimpleNamespace(X=pd.DataFrame({"x": rng.normal(size=b - a)}), y=y.iloc[a:b].reset_index(drop=True))

    data = types.SimpleNamespace(train=part(0, 60), valid=part(60, 90), test=part(0, 30), folds=folds, seed=0,
                                 classes=list(labels), repeats=repeats)
    trainer = types.SimpleNamespace(context=types.SimpleNamespace(data=data, task="classification"))
    rows = 90 * repeats if folds else 30
    values = rng.dirichlet(np.ones(3), size=rows)
    every = score_predictions(trainer, values, "valid")
    assert set(every) >= {"accuracy", "log_loss", "f1_macro", "roc_auc"}
    for name, value in every.items():
        assert score_predictions(trainer, values, "valid", [name]) == {name: pytest.approx(value)}
    test = rng.dirichlet(np.ones(3), size=30)
    assert score_predictions(trainer, test, "test", ["log_loss"])["log_loss"] == pytest.approx(
        score_predictions(trainer, test, "test")["log_loss"])
