"""The sklearn trainer without Ray: models, budget steps, cross-validation, preprocessing, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from automl_sklearn.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from automl_sklearn.models import MODELS
from sk_helpers import MakeTrial, run_all, splits, table_splits
from sklearn.base import clone
from sklearn.ensemble import AdaBoostClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.utils.class_weight import compute_sample_weight

from automl.plugin import Table, TrialError

CLASSIFIERS = [n for n, m in MODELS.items() if m.classifier is not None]
REGRESSORS = [n for n, m in MODELS.items() if m.regressor is not None]
#: Classifiers without predict_proba: no log_loss, and no multi-class ROC-AUC.
NO_PROBA = {"svm"}
#: What a step was fitted with, reported beside the validation metrics (rows of a share, boosting rounds kept).
FIDELITY = {"train_rows", "boost_rounds"}


@pytest.mark.parametrize("model", CLASSIFIERS)
def test_every_classifier_reports_every_metric_and_exports(make_trial: MakeTrial, model: str) -> None:
    trainer = make_trial({"model": model})
    run_all(trainer)
    valid = trainer.evaluate("valid")
    expected = set(CLASSIFICATION_METRICS) - ({"log_loss", "roc_auc"} if model in NO_PROBA else set())
    assert set(valid) - FIDELITY == expected
    assert all(0.0 <= valid[k] <= 1.0 for k in expected - {"log_loss"})
    assert valid["accuracy"] > 0.5  # iris: any of these models is far above chance (1/3)
    path = trainer.export(trainer.context.trial_dir)
    assert path.name == "model.skops"
    X = trainer.context.data.test.X
    np.testing.assert_array_equal(trainer.load_predictor(path)(X), trainer.pipeline_.predict(X))


@pytest.mark.parametrize("model", REGRESSORS)
def test_every_regressor_reports_r2_rmse_mae(make_trial: MakeTrial, model: str) -> None:
    trainer = make_trial({"model": model}, data=splits("diabetes", "regression"))
    run_all(trainer)
    valid, test = trainer.evaluate("valid"), trainer.evaluate("test")
    assert set(valid) - FIDELITY == set(test) == set(REGRESSION_METRICS)
    assert valid["rmse"] >= valid["mae"] > 0


def test_binary_svm_reports_roc_auc_from_its_decision_function(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "svm"}, data=splits("breast_cancer", "classification"))
    run_all(trainer)
    valid = trainer.evaluate("valid")
    assert "roc_auc" in valid and "log_loss" not in valid
    assert valid["roc_auc"] > 0.9


def test_keys_reach_the_models_that_accept_them(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "forest", "max_depth": 3, "svm__C": 7.0, "forest__min_samples_leaf": 4})
    run_all(trainer)
    params = trainer.pipeline_.named_steps["model"].get_params()
    assert params["max_depth"] == 3 and params["min_samples_leaf"] == 4
    svm = make_trial({"model": "svm", "max_depth": 3, "svm__C": 7.0}, number=1)
    run_all(svm)
    assert svm.pipeline_.named_steps["model"].C == 7.0


def test_mlp_layer_shape_is_translated(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "mlp", "hidden_layers": 2, "hidden_units": 8, "max_iter": 20})
    run_all(trainer)
    assert trainer.pipeline_.named_steps["model"].hidden_layer_sizes == (8, 8)


def test_a_config_sklearn_rejects_fails_with_sklearns_reason(make_trial: MakeTrial) -> None:
    # lbfgs supports no L1 penalty: this trial fails, with the reason, and only this one.
    trainer = make_trial({"model": "linear", "l1_ratio": 1.0, "solver": "lbfgs"})
    with pytest.raises(ValueError, match="lbfgs"):
        run_all(trainer)


def test_unknown_model_fails_the_trial_clearly(make_trial: MakeTrial) -> None:
    with pytest.raises(TrialError, match="unknown model 'gbm'"):
        run_all(make_trial({"model": "gbm"}))


# -- budget steps ------------------------------------------------------------------------


def test_forest_grows_its_trees_step_by_step_and_ends_as_a_full_fit(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "forest", "n_estimators": 10}, {"steps": 4})
    sizes = []
    for _ in trainer.run_steps(1):
        sizes.append(len(trainer.pipeline_.named_steps["model"].estimators_))
        trainer.evaluate("valid")
    assert sizes == [3, 5, 8, 10]
    # Warm-started growth gives the same forest as one fit with all the trees.
    data = trainer.context.data
    fresh = make_trial({"model": "forest", "n_estimators": 10}, {"steps": 1}, number=1, seed=trainer.context.seed)
    run_all(fresh)
    np.testing.assert_array_equal(fresh.pipeline_.predict_proba(data.valid.X), trainer.pipeline_.predict_proba(data.valid.X))


def test_boosting_iterations_and_mlp_epochs_grow(make_trial: MakeTrial) -> None:
    hgb = make_trial({"model": "hgb", "max_iter": 30}, {"steps": 3})
    iterations = []
    for _ in hgb.run_steps(1):
        iterations.append(hgb.pipeline_.named_steps["model"].n_iter_)
    assert iterations == [10, 20, 30]
    mlp = make_trial({"model": "mlp", "max_iter": 12, "hidden_units": 8}, {"steps": 3}, number=1)
    epochs = []
    for _ in mlp.run_steps(1):
        epochs.append(len(mlp.pipeline_.named_steps["model"].loss_curve_))
    assert epochs == [4, 8, 12]


def test_with_one_step_a_growing_model_is_sklearns_own_fit(make_trial: MakeTrial) -> None:
    # One budget step: the MLP keeps scikit-learn's stopping rule (tol / n_iter_no_change), no epoch loop.
    trainer = make_trial({"model": "mlp", "hidden_units": 16, "max_iter": 1000, "learning_rate_init": 0.01})
    run_all(trainer)
    prep, mlp = trainer.pipeline_.named_steps["prep"], trainer.pipeline_.named_steps["model"]
    data = trainer.context.data
    reference = clone(mlp).fit(prep.transform(data.train.X), data.train.y)
    assert mlp.n_iter_ == reference.n_iter_ < 1000  # stopped by its own rule, well before max_iter
    np.testing.assert_allclose(mlp.loss_curve_, reference.loss_curve_)


def test_a_model_that_cannot_grow_is_fitted_once(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "svm"}, {"steps": 3, "fidelity": "growth"})
    fitted = []
    for _ in trainer.run_steps(1):
        fitted.append(id(trainer.pipeline_.named_steps["model"].support_vectors_))
    assert len(set(fitted)) == 1
    lbfgs = make_trial({"model": "mlp", "solver": "lbfgs", "max_iter": 50}, {"steps": 2}, number=1)
    run_all(lbfgs)
    assert lbfgs.recipe_.growth is None  # lbfgs has no partial_fit: one fit


# -- validation: hold-out or k-fold ------------------------------------------------------------


def test_holdout_fits_preprocessing_on_training_rows_only(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "linear"})
    run_all(trainer)
    scaler = trainer.pipeline_.named_steps["prep"].named_steps["columns"].named_transformers_["num"].named_steps["scale"]
    data = trainer.context.data
    np.testing.assert_allclose(scaler.mean_, data.train.X.mean().to_numpy())
    everything = pd.concat([data.train.X, data.valid.X, data.test.X])
    assert not np.allclose(scaler.mean_, everything.mean().to_numpy())


def test_folds_score_is_stratified_cross_validation_then_a_refit_on_all_rows(make_trial: MakeTrial) -> None:
    data = splits("iris", "classification", folds=3, seed=5)
    trainer = make_trial({"model": "tree", "max_depth": 2}, data=data)
    run_all(trainer)
    valid = trainer.evaluate("valid")
    # The same folds through scikit-learn's own cross-validation give the same mean accuracy.
    X = pd.concat([data.train.X, data.valid.X], ignore_index=True)
    y = pd.concat([data.train.y, data.valid.y], ignore_index=True)
    pipeline = clone(trainer.pipeline_)
    expected = cross_val_score(pipeline, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=5), scoring="accuracy")
    assert valid["accuracy"] == pytest.approx(float(expected.mean()))
    # Each fold's preprocessing saw only its own training rows.
    for fit, X_valid, _ in trainer._parts:
        scaler = fit.prep.named_steps["columns"].named_transformers_["num"].named_steps["scale"]
        np.testing.assert_allclose(scaler.mean_, fit.X.mean().to_numpy())
        assert not set(X_valid.index) & set(fit.X.index)
    # Test and export use a refit on all training + validation rows.
    assert trainer.pipeline_.named_steps["model"].tree_.n_node_samples[0] == len(X)
    assert set(trainer.evaluate("test")) == set(valid)


def test_class_weight_reaches_estimators_or_becomes_sample_weights(make_trial: MakeTrial) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    y = pd.Series(np.where(X["a"] + 0.3 * rng.normal(size=300) > 1.0, "rare", "common"))
    data = table_splits(Table(X, y, "imbalanced"), "classification")
    linear = make_trial({"model": "linear", "class_weight": "balanced"}, data=data)
    run_all(linear)
    assert linear.pipeline_.named_steps["model"].class_weight == "balanced"
    # AdaBoost has no class_weight argument: balanced sample weights give the same model as fitting with them.
    ada = make_trial({"model": "adaboost", "class_weight": "balanced", "n_estimators": 10}, data=data, number=1)
    run_all(ada)
    prep = ada.pipeline_.named_steps["prep"]
    Xt = prep.transform(data.train.X)
    manual = AdaBoostClassifier(n_estimators=10, random_state=ada.context.seed).fit(
        Xt, data.train.y, sample_weight=compute_sample_weight("balanced", data.train.y))
    np.testing.assert_array_equal(manual.predict(prep.transform(data.valid.X)),
                                  ada.pipeline_.named_steps["model"].predict(prep.transform(data.valid.X)))
    unweighted = make_trial({"model": "adaboost", "n_estimators": 10}, data=data, number=2)
    run_all(unweighted)
    assert ada.evaluate("valid")["recall_macro"] != unweighted.evaluate("valid")["recall_macro"]


def test_mixed_columns_are_imputed_encoded_and_selected(make_trial: MakeTrial) -> None:
    rng = np.random.default_rng(1)
    n = 200
    X = pd.DataFrame({
        "size": rng.normal(size=n), "noise": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], n), "flag": rng.choice([True, False], n),
    })
    X.loc[rng.choice(n, 20, replace=False), "size"] = np.nan
    X.loc[rng.choice(n, 20, replace=False), "colour"] = None
    y = pd.Series(np.where(X["size"].fillna(0) + (X["colour"] == "red") > 0.5, "yes", "no"))
    data = table_splits(Table(X, y, "mixed"), "classification")
    config = {"model": "forest", "n_estimators": 20, "impute": "median", "missing_indicator": True,
              "select": "univariate", "select_percentile": 50}
    trainer = make_trial(config, data=data)
    run_all(trainer)
    prep = trainer.pipeline_.named_steps["prep"]
    # size, noise, a missing indicator for size, 3 colours and one for a missing colour, flag as one 0/1
    # column: 8 columns, of which SelectPercentile keeps int(8 * 50%) = 4.
    assert prep.named_steps["columns"].transform(data.valid.X).shape[1] == 8
    assert prep.transform(data.valid.X).shape[1] == 4
    unseen = data.test.X.copy()
    unseen["colour"] = "purple"  # a category never seen in training is ignored, not an error
    assert len(trainer.pipeline_.predict(unseen)) == len(unseen)
    path = trainer.export(trainer.context.trial_dir)
    np.testing.assert_array_equal(trainer.load_predictor(path)(data.test.X), trainer.pipeline_.predict(data.test.X))


def test_model_based_feature_selection_keeps_the_percentile(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "knn", "select": "model", "select_percentile": 50})
    run_all(trainer)
    assert trainer.pipeline_.named_steps["prep"].transform(trainer.context.data.valid.X).shape[1] == 2  # of 4


def test_size_counts_the_model_not_the_skops_schema(tmp_path: Path) -> None:
    import zipfile

    import skops.io as sio
    from automl_sklearn.export import model_bytes
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    path = tmp_path / "model.skops"
    sio.dump(LogisticRegression(max_iter=50).fit(X[:300], y[:300]), path)
    size, kind = model_bytes(path)
    with zipfile.ZipFile(path) as archive:
        schema = archive.getinfo("schema.json").compress_size
        coef = max(i.file_size for i in archive.infolist() if i.filename.endswith(".npy"))
    assert size < path.stat().st_size - schema + 1 and size >= coef >= 64 * 10 * 8  # the 640 weights are counted
    assert "schema.json left out" in kind
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"0" * 321)
    assert model_bytes(onnx) == (321, "file")
