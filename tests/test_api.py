"""The Python API on a run: ``automl.load`` (front, best, trials, models) and the scikit-learn estimators."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import automl
from automl.data import Part, Splits
from automl.errors import AutoMLError
from automl.estimators import AutoMLClassifier, AutoMLRegressor
from automl.result import Model
from tests.test_export import make_run

# -- results without a search ---------------------------------------------------------------


@pytest.fixture
def filled_run(tmp_path: Path) -> Path:
    """Trials 0-2 on the front (2 best but stopped), 3 best of all but off the front (infeasible), 4 failed."""
    run_dir = make_run(tmp_path / "run", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.3, "cost": 0.1}},
        {"number": 1, "status": "completed", "config": {"x": 0.9}, "metrics": {"loss": 0.1, "cost": 0.9}},
        {"number": 2, "status": "stopped", "config": {"x": 0.5}, "metrics": {"loss": 0.05, "cost": 0.5}},
        {"number": 3, "status": "completed", "config": {"x": 0.7}, "metrics": {"loss": 0.01, "cost": 0.01}},
        {"number": 4, "status": "failed", "config": {"x": 0.2}, "error": "boom"},
    ], front=[0, 1, 2])
    return run_dir


def test_best_is_the_completed_front_member_best_on_the_primary_objective(filled_run: Path) -> None:
    result = automl.load(filled_run)
    assert [m.number for m in result.front] == [0, 1, 2]
    assert result.front[1].config == {"x": 0.9} and result.front[1].metrics["cost"] == 0.9
    assert result.best is not None and result.best.number == 1  # 2 is stopped, 3 is off the front


def test_trials_are_a_dataframe_with_config_and_metric_columns(filled_run: Path) -> None:
    trials = automl.load(filled_run).trials
    assert list(trials["number"]) == [0, 1, 2, 3, 4]
    assert {"status", "budget", "duration", "error", "config.x", "metrics.loss", "metrics.cost"} <= set(trials.columns)
    assert trials.loc[4, "error"] == "boom" and pd.isna(trials.loc[4, "metrics.loss"])


def test_models_that_do_not_exist_are_refused_with_the_reason(filled_run: Path) -> None:
    result = automl.load(filled_run)
    with pytest.raises(AutoMLError, match=r"has no trial 9 \(it has trials 0\.\.4\)"):
        result.model(9)
    with pytest.raises(AutoMLError, match="trial 4 .failed. has no model file: boom"):
        result.model(4)
    from automl.store import Store

    Store(f"sqlite:///{filled_run / 'automl.db'}").save_trial(1, 1, artifact=str(filled_run / "gone" / "model.skops"))
    with pytest.raises(AutoMLError, match="model file 'model.skops' is neither in"):
        result.model()  # the best trial (1): its file was removed


def test_a_run_without_a_completed_trial_has_no_best_model(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", [{"number": 0, "status": "failed", "config": {"x": 0.1}, "error": "boom"}],
                       front=[])
    result = automl.load(run_dir)
    assert result.best is None
    with pytest.raises(AutoMLError, match=r"no completed trial .*\(1 failed\)"):
        result.model()


def test_load_refuses_a_directory_without_a_run(tmp_path: Path) -> None:
    with pytest.raises(AutoMLError, match="holds no automl run"):
        automl.load(tmp_path)


# -- a model's input ------------------------------------------------------------------------


def _splits(X: pd.DataFrame, y: list[Any], task: str = "classification") -> Splits:
    part = Part(X, pd.Series(y))
    return Splits(part, part, part, task=task)


class _Owner:
    """An estimator whose bound ``predict`` a trainer's predictor is (as the sklearn trainer's skops pipeline)."""

    classes_ = np.array(["yes", "no"])  # not sorted: the model's columns must be reordered

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.where(X["a"].to_numpy() > 1, "yes", "no")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = (X["a"].to_numpy() > 1).astype(float) * 0.8 + 0.1
        return np.column_stack([p, 1 - p])


TRAIN = pd.DataFrame({"a": [0.0, 2.0, 3.0], "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
                      "color": ["red", "blue", None]})


def _model(predict: Any = None, task: str = "classification") -> Model:
    return Model(7, Path("model.skops"), predict or _Owner().predict, task, _splits(TRAIN, ["no", "yes", "yes"], task))


def test_a_missing_column_is_an_error_naming_it() -> None:
    with pytest.raises(AutoMLError, match=r"X lacks 1 column\(s\) trial 7's model was trained on: \['when'\]"):
        _model().predict(TRAIN.drop(columns=["when"]))


def test_columns_are_taken_by_name_in_training_order_and_extra_ones_ignored() -> None:
    seen: list[pd.DataFrame] = []
    model = _model(lambda frame: seen.append(frame) or np.zeros(len(frame)))
    model.predict(TRAIN[["color", "when", "a"]].assign(extra=1))
    assert list(seen[0].columns) == ["a", "when", "color"]
    model.predict(TRAIN.to_numpy())  # rows of an array: by position
    assert list(seen[1].columns) == ["a", "when", "color"] and seen[1]["a"].dtype == np.float64
    with pytest.raises(AutoMLError, match=r"X has shape \(3, 2\); trial 7's model takes rows of 3 columns"):
        model.predict(TRAIN.to_numpy()[:, :2])


def test_numbers_and_dates_written_as_text_are_read_as_in_training() -> None:
    seen: list[pd.DataFrame] = []
    model = _model(lambda frame: seen.append(frame) or np.zeros(len(frame)))
    model.predict(pd.DataFrame({"a": ["1.5", "?"], "when": ["2024-01-31", None], "color": ["red", "red"]}))
    assert seen[0]["a"].tolist()[0] == 1.5 and pd.isna(seen[0]["a"].tolist()[1])
    assert seen[0]["when"].tolist()[0] == pd.Timestamp("2024-01-31")
    with pytest.raises(AutoMLError, match="column 'a' held numbers in training; X's holds none"):
        model.predict(pd.DataFrame({"a": ["red"], "when": ["2024-01-31"], "color": ["red"]}))


def test_probabilities_come_from_the_exported_estimator_in_sorted_class_order() -> None:
    model = _model()
    assert list(model.classes_) == ["no", "yes"]
    proba = model.predict_proba(TRAIN)
    np.testing.assert_allclose(proba, [[0.9, 0.1], [0.1, 0.9], [0.1, 0.9]])
    assert list(model.predict(TRAIN)) == ["no", "yes", "yes"]


def test_a_model_without_probabilities_says_so() -> None:
    class Hard:
        def predict(self, X: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(X))

    with pytest.raises(AutoMLError, match=r"trial 7's model \(Hard\) gives no class probabilities"):
        _model(Hard().predict).predict_proba(TRAIN)
    with pytest.raises(AutoMLError, match="gives no class probabilities; use predict"):
        _model(lambda frame: np.zeros(len(frame))).predict_proba(TRAIN)  # no estimator, not ONNX
    with pytest.raises(AutoMLError, match="regression model: it has no class probabilities"):
        _model(task="regression").predict_proba(TRAIN)


@pytest.mark.parametrize("zipmap", [False, True])
def test_onnx_probabilities_in_either_skl2onnx_layout(tmp_path: Path, zipmap: bool) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    fitted = LogisticRegression(max_iter=500).fit(X.to_numpy(np.float32), y)
    onx = skl2onnx.to_onnx(fitted, X.to_numpy(np.float32)[:1], options={id(fitted): {"zipmap": zipmap}})
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    model = Model(3, path, lambda frame: fitted.predict(frame.to_numpy(np.float32)), "classification", _splits(X, y))
    got = model.predict_proba(X[X.columns[::-1]])  # by name: columns given in another order are put back
    want = fitted.predict_proba(X.to_numpy(np.float32))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_onnx_scores_are_not_taken_for_probabilities(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_iris
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True, as_frame=True)
    fitted = SVC().fit(X.to_numpy(np.float32), y)
    onx = skl2onnx.to_onnx(fitted, X.to_numpy(np.float32)[:1], options={id(fitted): {"zipmap": False}})
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    model = Model(3, path, lambda frame: fitted.predict(frame.to_numpy(np.float32)), "classification", _splits(X, y))
    with pytest.raises(AutoMLError, match="gives scores, not probabilities"):
        model.predict_proba(X)


# -- the estimators without a search --------------------------------------------------------


@pytest.mark.parametrize("cls", [AutoMLClassifier, AutoMLRegressor])
def test_estimators_follow_scikit_learn_conventions(cls: type) -> None:
    from sklearn.utils.estimator_checks import (
        check_do_not_raise_errors_in_init_or_set_params,
        check_estimator_cloneable,
        check_estimator_repr,
        check_estimators_unfitted,
        check_get_params_invariance,
        check_mixin_order,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
        check_valid_tag_types,
    )

    # The light checks: the full check_estimator fits dozens of times (a search each).
    for check in (check_get_params_invariance, check_set_params, check_no_attributes_set_in_init,
                  check_parameters_default_constructible, check_estimator_cloneable, check_estimator_repr,
                  check_estimators_unfitted, check_mixin_order, check_valid_tag_types,
                  check_do_not_raise_errors_in_init_or_set_params):
        check(cls.__name__, cls())
    est = cls(trials=4, metric="balanced_accuracy" if cls is AutoMLClassifier else "rmse", seed=3)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    assert clone(est.set_params(seed=5)).seed == 5
    assert pickle.loads(pickle.dumps(est)).get_params() == est.get_params()
    with pytest.raises(Exception, match="not fitted"):
        est.predict(np.zeros((1, 2)))


def _spec(est: Any, y: Any) -> dict[str, Any]:
    return dict(est._spec("data.parquet", "target", pd.Series(y)))


def test_the_spec_a_classifier_builds_from_its_parameters() -> None:
    y = [0, 1] * 10
    spec = _spec(AutoMLClassifier(trials=4, n_cpus=2, seed=1), y)
    assert spec["task"] == "classification" and spec["trainer"]["name"] == "sklearn"
    assert spec["data"] == {"test": 0.0, "folds": 5, "parquet": "data.parquet", "target": "target"}
    assert spec["objectives"] == [{"metric": "accuracy", "mode": "max"}]
    assert spec["budget"] == {"trials": 4, "wall_time": 60.0}
    assert spec["resources"] == {"cpu": 1, "max_concurrent": 2} and spec["seed"] == 1
    assert spec["searcher"]["name"] == "auto"  # with a time budget: the spec's choice, cost-aware first
    assert _spec(AutoMLClassifier(trials=4, time_budget=None), y)["searcher"]["name"] in ("tpe", "random")
    # Only a time budget: trials are not the bound. A class with fewer than 5 rows: a validation split.
    spec = _spec(AutoMLClassifier(time_budget=30, metric="log_loss"), [0] * 16 + [1] * 4)
    assert spec["budget"]["wall_time"] == 30.0 and spec["budget"]["trials"] >= 1000
    assert spec["data"]["validation"] == 0.2 and "folds" not in spec["data"]
    assert spec["objectives"] == [{"metric": "log_loss", "mode": "min"}]


def test_a_spec_given_to_an_estimator_replaces_what_it_names(tmp_path: Path) -> None:
    y = [0.5, 1.5] * 10
    given = {"searcher": {"name": "random"}, "data": {"dataset": "iris", "validation": 0.3},
             "space": {"model": {"type": "choice", "values": ["linear"]}}}
    spec = _spec(AutoMLRegressor(trials=2, space={"model": {"type": "choice", "values": ["tree"]}}, spec=given), y)
    assert spec["searcher"] == {"name": "random"} and spec["space"] == given["space"]
    assert spec["data"] == {"test": 0.0, "validation": 0.3, "parquet": "data.parquet", "target": "target"}
    assert spec["objectives"] == [{"metric": "r2", "mode": "max"}]
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent("""
        scheduler: {name: asha}
        budget: {trials: 7}
    """))
    spec = _spec(AutoMLRegressor(spec=path), y)
    assert spec["scheduler"] == {"name": "asha"} and spec["budget"] == {"trials": 7}
    assert spec["trainer"]["params"]["steps"] == 4  # asha stops trials between budget steps
    with pytest.raises(ValueError, match="spec has task: classification, but AutoMLRegressor does regression"):
        _spec(AutoMLRegressor(spec={"task": "classification"}), y)


def test_bad_parameters_are_refused_before_any_file_is_written(tmp_path: Path) -> None:
    X, y = np.zeros((20, 2)), np.arange(20) % 2
    with pytest.raises(ValueError, match="metric='rmse' is not a classification metric.*use one of accuracy"):
        AutoMLClassifier(metric="rmse", out=tmp_path).fit(X, y)
    with pytest.raises(ValueError, match="give time_budget .seconds. or trials"):
        AutoMLClassifier(time_budget=None, out=tmp_path).fit(X, y)
    with pytest.raises(ValueError, match="X has 20 rows but y has 3"):
        AutoMLClassifier(out=tmp_path).fit(X, y[:3])
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        AutoMLClassifier(out=tmp_path).fit(X, np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="y must hold numbers for a regression"):
        AutoMLRegressor(out=tmp_path).fit(X, ["a", "b"] * 10)
    assert not list(tmp_path.iterdir())


# -- a real search --------------------------------------------------------------------------

SEARCH = """
name: api
task: classification
data: {dataset: breast_cancer}
trainer: {name: sklearn, params: {export: onnx}}
searcher: {name: random}
space:
  model: {type: choice, values: [linear, tree, forest]}
  n_estimators: {type: int, low: 10, high: 30, when: {model: forest}}
objectives: [{metric: accuracy, mode: max}]
budget: {trials: 4}
seed: 0
"""


@pytest.fixture(scope="session")
def searched(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[automl.Result, pd.DataFrame, pd.Series]:
    """A finished 4-trial search on breast_cancer (ONNX exports), and its test part as the engine split it."""
    root = tmp_path_factory.mktemp("api")
    spec = root / "spec.yaml"
    spec.write_text(SEARCH)
    run = automl.search(spec, out=root / "run")
    test = automl.validate(spec).load_data().test
    return automl.load(run.dir), test.X, test.y


@pytest.mark.slow
def test_load_gives_the_front_the_best_trial_and_every_trial(searched: Any) -> None:
    result, _, _ = searched
    trials = result.trials
    # The 4 searched trials, and the ensemble of them the search ends with (when it builds one).
    assert len(trials) >= 4 and set(trials["status"]) == {"completed"}
    best = result.best
    assert best is not None and best.number in [m.number for m in result.front]
    assert best.metrics["accuracy"] == trials["metrics.accuracy"].max()
    assert best.model is not None and (result.dir / best.model).is_file()


@pytest.mark.slow
def test_every_trials_model_predicts_its_recorded_test_scores(searched: Any) -> None:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    result, X, y = searched
    for number in result.trials["number"]:  # the ensemble trial too: it is loaded the same way
        model = result.model(number)
        metrics = result.trials.set_index("number").loc[number]
        # A trial's own ONNX file, or the ensemble's manifest of its members' files.
        assert model.path.suffix in (".onnx", ".json") and list(model.classes_) == [0, 1]
        predicted = model.predict(X)
        # Trials are scored in float64 (an ensemble on its selection's arrays); the ONNX file computes in
        # float32 and may flip a row that sits on a tie: the engine's own export check allows 1% of the rows.
        flipped = abs(accuracy_score(y, predicted) - metrics["metrics.test_accuracy"]) * len(y)
        assert flipped <= max(1, len(y) // 100) + 1e-9
        proba = model.predict_proba(X.assign(extra="ignored"))
        assert proba.shape == (len(X), 2)
        np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], predicted)
        # The trial scored its in-memory pipeline in float64; the ONNX file computes in float32.
        assert log_loss(y, proba, labels=[0, 1]) == pytest.approx(metrics["metrics.test_log_loss"], rel=5e-3)
        assert roc_auc_score(y, proba[:, 1]) == pytest.approx(metrics["metrics.test_roc_auc"], abs=1e-3)
    assert result.model().number == result.best.number


@pytest.mark.slow
def test_a_searched_model_names_the_column_it_misses(searched: Any) -> None:
    result, X, _ = searched
    with pytest.raises(AutoMLError, match=r"X lacks 1 column\(s\) .*\['mean radius'\]"):
        result.model().predict(X.drop(columns=["mean radius"]))


@pytest.mark.slow
def test_classifier_fits_predicts_and_scores(ray_session: None, tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    # No wall time (the estimators' default is 60 s): a number of trials bounds these searches, so what they check
    # holds however slowly the machine runs.
    clf = AutoMLClassifier(trials=4, time_budget=None, out=tmp_path).fit(X, y)
    assert clf.run_dir_.parent == tmp_path.resolve() and (clf.run_dir_ / "data.parquet").is_file()
    assert clf.best_config_ == clf.result_.best.config
    assert list(clf.classes_) == [0, 1] and clf.n_features_in_ == 30
    assert list(clf.feature_names_in_) == list(X.columns)
    predicted = clf.predict(X)
    np.testing.assert_array_equal(predicted, automl.load(clf.run_dir_).model().predict(X))
    assert clf.score(X, y) == accuracy_score(y, predicted) > 0.8
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    again = pickle.loads(pickle.dumps(clf))  # the run is opened again from run_dir_
    np.testing.assert_array_equal(again.predict(X.iloc[:20]), predicted[:20])


@pytest.mark.slow
def test_regressor_takes_numpy_arrays(ray_session: None, tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    space = {"model": {"type": "choice", "values": ["linear", "tree"]}}
    reg = AutoMLRegressor(trials=4, space=space, time_budget=None, out=tmp_path).fit(X, y)
    assert reg.n_features_in_ == 10 and not hasattr(reg, "feature_names_in_")
    assert reg.best_config_["model"] in ("linear", "tree")
    predicted = reg.predict(X)
    assert predicted.dtype == np.float64 and predicted.shape == (len(X),)
    assert reg.score(X, y) > 0.2
    np.testing.assert_array_equal(reg.predict(pd.DataFrame(X)), predicted)  # unnamed columns: by position


@pytest.mark.slow
def test_categories_and_missing_values_go_through_the_exported_pipeline(ray_session: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 200
    color = rng.choice(["red", "green", "blue"], n)
    X = pd.DataFrame({"size": rng.normal(size=n), "color": color, "flag": rng.random(n) > 0.5})
    y = np.where(color == "red", "hot", "cold")
    X.loc[::7, "size"] = np.nan
    X.loc[::11, "color"] = None
    space = {"model": {"type": "choice", "values": ["linear"]}}
    clf = AutoMLClassifier(trials=2, space=space, time_budget=None, out=tmp_path).fit(X, y)
    assert list(clf.classes_) == ["cold", "hot"]
    new = pd.DataFrame({"flag": [True, False, True], "size": [np.nan, 0.5, 1.0],
                        "color": ["red", None, "purple"]})  # another column order, a missing and an unseen category
    assert clf.predict(new)[0] == "hot" and set(clf.predict(new)) <= {"cold", "hot"}
    proba = clf.predict_proba(new)
    assert proba.shape == (3, 2) and proba[0, 1] > 0.5
    with pytest.raises(AutoMLError, match=r"\['color'\]"):
        clf.predict(new.drop(columns=["color"]))
