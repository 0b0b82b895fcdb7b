"""Row-share fidelity without Ray: nested stratified shares, the same for every trial, adapting to small data."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from automl_sklearn import fidelity
from automl_sklearn.fidelity import MIN_PER_CLASS, MIN_ROWS, RowShares, nested_order, share_sizes
from automl_sklearn.trainer import SklearnTrainer
from sk_helpers import MakeTrial, splits, table_splits

from automl.plugin import Table, TrialContext


def test_schedule_is_geometric_with_eta_2() -> None:
    assert share_sizes(800, 4, minimum=30) == [100, 200, 400, 800]
    assert share_sizes(800, 1, minimum=30) == [800]


def test_shares_are_nested_stratified_and_deterministic() -> None:
    rng = np.random.default_rng(3)
    y = pd.Series(rng.choice(["a", "b", "c"], 1000, p=[0.6, 0.3, 0.1]))
    shares = RowShares.of(y, 4, seed=7, classification=True)
    again = RowShares.of(y, 4, seed=7, classification=True)
    np.testing.assert_array_equal(shares.order, again.order)  # the same rows for every trial of a search
    assert not np.array_equal(shares.order, RowShares.of(y, 4, seed=8, classification=True).order)
    assert shares.sizes == [125, 250, 500, 1000]
    overall = y.value_counts(normalize=True)
    for step in range(1, 4):
        small, large = set(shares.rows(step)), set(shares.rows(step + 1))
        assert small < large  # each share holds the previous one
        part = y.iloc[shares.rows(step)].value_counts(normalize=True)
        assert (part - overall).abs().max() < 0.02  # stratified: the class shares of the whole
    assert len(shares.rows(4)) == len(y)


def test_every_class_has_rows_in_the_smallest_share() -> None:
    y = pd.Series(["common"] * 500 + ["rare"] * 3)
    order = nested_order(y, seed=0, stratify=True)
    assert (y.iloc[order[:MIN_ROWS]] == "rare").sum() >= MIN_PER_CLASS


def test_tiny_data_gets_fewer_distinct_shares_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    fidelity._said.clear()
    y = pd.Series(["a", "b"] * 25)  # 50 rows, 4 steps: 7, 13, 25, 50 would go below 30
    with caplog.at_level(logging.WARNING, logger="automl_sklearn.fidelity"):
        shares = RowShares.of(y, 4, seed=0, classification=True)
        RowShares.of(y, 4, seed=1, classification=True)
    assert shares.sizes == [30, 30, 30, 50]
    notes = [r for r in caplog.records if "too few" in r.getMessage()]
    assert len(notes) == 1 and "[30, 30, 30, 50]" in notes[0].getMessage()


def test_a_model_that_does_not_grow_is_fitted_on_growing_shares(make_trial: MakeTrial) -> None:
    data = splits("digits", "classification")
    trainer = make_trial({"model": "svm"}, {"steps": 3}, data=data)
    rows, vectors = [], []
    for _ in trainer.run_steps(1):
        rows.append(trainer.evaluate("valid")["train_rows"])
        vectors.append(trainer.pipeline_.named_steps["model"].support_vectors_.shape[0])
    n = len(data.train.y)
    assert rows == [float(np.ceil(n / 4)), float(np.ceil(n / 2)), float(n)]
    assert vectors[0] < vectors[1] < vectors[2]
    # The last step is the plain fit on every training row.
    full = make_trial({"model": "svm"}, data=data, number=1, seed=trainer.context.seed)
    full.fit_step(1)
    np.testing.assert_array_equal(full.pipeline_.predict(data.valid.X), trainer.pipeline_.predict(data.valid.X))


def test_the_same_rows_for_every_trial_and_preprocessing_fitted_on_the_share(make_trial: MakeTrial) -> None:
    data = splits("breast_cancer", "classification")
    seen = []
    for number, model in enumerate(["linear", "knn"]):
        trainer = make_trial({"model": model}, {"steps": 4}, data=data, number=number)
        trainer.fit_step(1)
        fit = trainer._parts[0][0]
        X = fit._rows[0]
        seen.append(sorted(X.index))
        scaler = fit.prep.named_steps["columns"].named_transformers_["num"].named_steps["scale"]
        np.testing.assert_allclose(scaler.mean_, X.mean().to_numpy())
    assert seen[0] == seen[1] and len(seen[0]) == int(np.ceil(len(data.train.y) / 8))


def test_rows_fidelity_fits_a_growing_model_at_full_size_on_each_share(make_trial: MakeTrial) -> None:
    trainer = make_trial({"model": "forest", "n_estimators": 8}, {"steps": 2, "fidelity": "rows"},
                         data=splits("breast_cancer", "classification"))
    rows, trees = [], []
    for _ in trainer.run_steps(1):
        rows.append(trainer.evaluate("valid")["train_rows"])
        trees.append(len(trainer.pipeline_.named_steps["model"].estimators_))
    assert trees == [8, 8] and rows[0] < rows[1]


def test_folds_each_take_shares_of_their_own_training_rows(make_trial: MakeTrial) -> None:
    data = splits("iris", "classification", folds=3)
    trainer = make_trial({"model": "knn"}, {"steps": 2}, data=data)
    trainer.fit_step(1)
    for fit, X_valid, _ in trainer._parts:
        used = fit._rows[0]
        assert len(used) == max(MIN_ROWS, int(np.ceil(len(fit.y) / 2)))
        assert set(used.index) <= set(fit.X.index) and not set(used.index) & set(X_valid.index)
    assert trainer.evaluate("valid")["train_rows"] == pytest.approx(np.mean([len(f._rows[0]) for f, _, _ in trainer._parts]))


def test_regression_shares_are_random_prefixes(make_trial: MakeTrial) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
    data = table_splits(Table(X, X["a"] * 2 + rng.normal(size=200) * 0.1, "line"), "regression")
    trainer = make_trial({"model": "linear"}, {"steps": 2}, data=data)
    steps = [trainer.evaluate("valid")["train_rows"] for _ in trainer.run_steps(1)]
    assert steps == [60.0, 120.0]


def test_budget_steps_do_not_depend_on_the_config(tmp_path: Path) -> None:
    # The engine asks with an empty config and no data: every model, and every fidelity, gets the same steps.
    context = TrialContext("classification", 0, None, tmp_path)  # type: ignore[arg-type]
    for params in ({"steps": 4}, {"steps": 4, "fidelity": "rows"}, {"steps": 4, "fidelity": "growth"}):
        assert SklearnTrainer({}, params, context).budget_steps == 4
