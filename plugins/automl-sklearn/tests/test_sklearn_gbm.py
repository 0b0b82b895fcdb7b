"""LightGBM and XGBoost models without Ray: exports, labels, early stopping, growth over steps, checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from automl_sklearn.boosting import default_patience, rounds_of
from automl_sklearn.export import load_model
from automl_sklearn.models import MODELS
from sk_helpers import MakeTrial, run_all, splits, table_splits

import automl
from automl.plugin import SpecError, Table

pytest.importorskip("lightgbm")
pytest.importorskip("xgboost")

GBMS = ["lgbm", "xgboost"]
#: Float32 may flip a prediction on a tie: as the export's own check, at most 1% of rows (one on small data).
FLOAT32_TIES = 0.01


def _agree(task: str, got: np.ndarray, want: np.ndarray) -> None:
    if task == "classification":
        wrong = int(np.sum(np.asarray(got).ravel() != np.asarray(want).ravel()))
        assert wrong <= max(1, int(len(want) * FLOAT32_TIES)), f"{wrong} of {len(want)} predictions differ"
    else:
        np.testing.assert_allclose(np.asarray(got, dtype=float).ravel(), np.asarray(want, dtype=float), atol=1e-3 * np.std(want))


@pytest.mark.parametrize("model", GBMS)
@pytest.mark.parametrize(("dataset", "task"), [("breast_cancer", "classification"), ("wine", "classification"),
                                                ("diabetes", "regression")])
@pytest.mark.parametrize("fmt", ["onnx", "skops"])
def test_fit_evaluate_export_and_load(make_trial: MakeTrial, model: str, dataset: str, task: str, fmt: str) -> None:
    data = splits(dataset, task)
    trainer = make_trial({"model": model, "n_estimators": 60}, {"steps": 2, "export": fmt}, data=data)
    run_all(trainer)
    valid = trainer.evaluate("valid")
    assert valid["accuracy" if task == "classification" else "r2"] > (0.85 if task == "classification" else 0.2)
    path = trainer.export(trainer.context.trial_dir)
    assert path.suffix == f".{fmt}"
    X = data.test.X
    got, want = trainer.load_predictor(path)(X), trainer.pipeline_.predict(X)
    if fmt == "skops":
        np.testing.assert_array_equal(got, want)  # the same estimator, loaded back
        loaded = load_model(path)
        assert rounds_of(loaded.named_steps["model"]) == rounds_of(trainer.pipeline_.named_steps["model"])
    else:
        _agree(task, got, want)


@pytest.mark.parametrize("model", GBMS)
@pytest.mark.parametrize("fmt", ["onnx", "skops"])
def test_string_labels_come_back_as_strings(make_trial: MakeTrial, model: str, fmt: str) -> None:
    table = automl_table("iris")
    names = np.array(["setosa", "versicolor", "virginica"])
    data = table_splits(Table(table.X, pd.Series(names[table.y.to_numpy()], name="species"), "iris-names"),
                        "classification")
    trainer = make_trial({"model": model, "n_estimators": 30}, {"export": fmt}, data=data)
    run_all(trainer)
    assert list(trainer.pipeline_.classes_) == list(names)
    assert trainer.evaluate("valid")["accuracy"] > 0.8
    path = trainer.export(trainer.context.trial_dir)
    got = trainer.load_predictor(path)(data.test.X)
    assert set(got) <= set(names)
    _agree("classification", got, trainer.pipeline_.predict(data.test.X))


def automl_table(name: str) -> Table:
    from automl_sklearn.datasets import load

    return load(name, {})


def _noise(rows: int = 400, seed: int = 0) -> Table:
    """Labels independent of the features: every round after the first few only overfits."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, 5)), columns=list("abcde"))
    return Table(X, pd.Series(rng.choice(["yes", "no"], rows), name="y"), "noise")


@pytest.mark.parametrize("model", GBMS)
def test_early_stopping_stops_and_keeps_the_best_round(make_trial: MakeTrial, model: str) -> None:
    data = table_splits(_noise(), "classification")
    trainer = make_trial({"model": model, "n_estimators": 500, "learning_rate": 0.3}, {"export": "skops"}, data=data)
    run_all(trainer)
    fit = trainer._parts[0][0]
    stopping = fit.stopping
    patience = default_patience(500)
    assert stopping.patience == patience == 50
    assert stopping.stopped and stopping.rounds == stopping.best_round + patience < 500
    fitted = trainer.pipeline_.named_steps["model"]
    assert rounds_of(fitted) == stopping.best_round  # cut at the best round: no extra round is kept
    assert trainer.evaluate("valid")["boost_rounds"] == stopping.best_round
    exported = load_model(trainer.export(trainer.context.trial_dir)).named_steps["model"]
    assert rounds_of(exported) == stopping.best_round
    # The best round is the best validation loss of every round trained.
    prep = trainer.pipeline_.named_steps["prep"]
    Xv, yv = prep.transform(data.valid.X), data.valid.y
    never = make_trial({"model": model, "n_estimators": stopping.rounds, "learning_rate": 0.3, "early_stopping": False},
                       data=data, number=1, seed=trainer.context.seed)
    run_all(never)
    assert rounds_of(never.pipeline_.named_steps["model"]) == stopping.rounds
    full = never.pipeline_.named_steps["model"]
    losses = [_log_loss(full, Xv, yv, k) for k in range(1, stopping.rounds + 1)]
    assert int(np.argmin(losses)) + 1 == stopping.best_round


def _log_loss(model: object, X: np.ndarray, y: pd.Series, rounds: int) -> float:
    from sklearn.metrics import log_loss

    if type(model).__module__.startswith("lightgbm"):
        proba = model.predict_proba(X, num_iteration=rounds)  # type: ignore[attr-defined]
    else:
        proba = model.predict_proba(X, iteration_range=(0, rounds))  # type: ignore[attr-defined]
    return float(log_loss(y, proba, labels=model.classes_))  # type: ignore[attr-defined]


def test_class_weight_reaches_lgbm_and_becomes_sample_weights_for_xgboost(make_trial: MakeTrial) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    y = pd.Series(np.where(X["a"] + 0.5 * rng.normal(size=300) > 1.2, "rare", "common"))
    data = table_splits(Table(X, y, "imbalanced"), "classification")
    lgbm = make_trial({"model": "lgbm", "class_weight": "balanced", "n_estimators": 20}, data=data)
    run_all(lgbm)
    assert lgbm.pipeline_.named_steps["model"].class_weight == "balanced"
    recall = {}
    for number, weight in enumerate(["balanced", None]):
        xgb = make_trial({"model": "xgboost", "class_weight": weight, "n_estimators": 20}, data=data, number=number + 1)
        run_all(xgb)
        assert (xgb.recipe_.sample_weight is not None) == (weight is not None)
        recall[weight] = xgb.evaluate("valid")["recall_macro"]
    assert recall["balanced"] != recall[None]


def test_early_stopping_rounds_and_off_switch(make_trial: MakeTrial) -> None:
    data = table_splits(_noise(), "classification")
    short = make_trial({"model": "lgbm", "n_estimators": 300, "early_stopping_rounds": 5}, data=data)
    run_all(short)
    assert short._parts[0][0].stopping.patience == 5
    assert short._parts[0][0].stopping.rounds == short._parts[0][0].stopping.best_round + 5
    off = make_trial({"model": "xgboost", "n_estimators": 40, "xgboost__early_stopping": False}, data=data, number=1)
    run_all(off)
    assert rounds_of(off.pipeline_.named_steps["model"]) == 40


@pytest.mark.parametrize("model", GBMS)
def test_rounds_grow_over_steps_by_continuing_the_booster(make_trial: MakeTrial, model: str) -> None:
    data = splits("breast_cancer", "classification")
    trainer = make_trial({"model": model, "n_estimators": 40, "early_stopping": False}, {"steps": 4}, data=data)
    X = trainer.context.data.valid.X
    rounds, earlier = [], None
    for _ in trainer.run_steps(1):
        fitted = trainer.pipeline_.named_steps["model"]
        Xt = trainer.pipeline_.named_steps["prep"].transform(X)
        rounds.append(rounds_of(fitted))
        if earlier is not None:  # the rounds of the step before are still there, unchanged
            n, before = earlier
            now = (fitted.predict_proba(Xt, num_iteration=n) if model == "lgbm"
                   else fitted.predict_proba(Xt, iteration_range=(0, n)))
            np.testing.assert_allclose(now, before, rtol=1e-6)
        earlier = (rounds[-1], fitted.predict_proba(Xt))
        assert "train_rows" not in trainer.evaluate("valid")  # auto: a boosting model grows on every row
    assert rounds == [10, 20, 30, 40]


def test_patience_counts_across_steps(make_trial: MakeTrial) -> None:
    data = table_splits(_noise(), "classification")
    trainer = make_trial({"model": "lgbm", "n_estimators": 400, "early_stopping_rounds": 30}, {"steps": 8}, data=data)
    sizes = []
    for _ in trainer.run_steps(1):
        sizes.append(trainer._parts[0][0].stopping.rounds)
    stopping = trainer._parts[0][0].stopping
    assert stopping.stopped and stopping.rounds == stopping.best_round + 30
    assert sizes[-1] == sizes[-2] < 400  # once stopped, later steps add nothing


def test_folds_refit_uses_the_folds_mean_best_round(make_trial: MakeTrial) -> None:
    data = table_splits(_noise(), "classification", folds=3)
    trainer = make_trial({"model": "xgboost", "n_estimators": 300}, {"export": "onnx"}, data=data)
    run_all(trainer)
    best = [fit.stopping.best_round for fit, _, _ in trainer._parts]
    assert all(fit.valid is not None for fit, _, _ in trainer._parts)  # each fold stops on its own held-out rows
    assert rounds_of(trainer.pipeline_.named_steps["model"]) == max(1, round(sum(best) / len(best)))
    assert trainer.export(trainer.context.trial_dir).suffix == ".onnx"


# -- plan-time checks ----------------------------------------------------------------------------

HEAD = """\
task: classification
data: {dataset: iris}
trainer: {name: sklearn, params: {steps: 2}}
objectives: [{metric: accuracy, mode: max}]
space:
  model: {type: choice, values: [lgbm, xgboost, svm]}
"""


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("lgbm__num_leaves: {type: int, low: 1, high: 64}", "space.lgbm__num_leaves: low 1 is not valid for model 'lgbm': "
                                                           "num_leaves must be >= 2"),
        ("xgboost__subsample: {type: float, low: 0.5, high: 1.5}", "high 1.5 is not valid for model 'xgboost'"),
        ("learning_rate: {type: float, low: 0.0, high: 0.3, when: {model: [lgbm, xgboost]}}",
         "learning_rate must be > 0.0"),
        ("lgbm__boosting_type: {type: choice, values: [gbdt, forest]}", "value 'forest' is not valid for model 'lgbm'"),
        ("xgboost__tree_method: {type: choice, values: [hist, fastest]}", "value 'fastest' is not valid for model 'xgboost'"),
        ("lgbm__n_estimators: {type: int, low: 0, high: 10}", "n_estimators must be >= 1"),
        ("early_stopping_rounds: {type: int, low: 0, high: 10}", "early_stopping_rounds must be an integer >= 1"),
        ("lgbm__early_stopping: {type: choice, values: [true, maybe]}", "early_stopping must be true or false"),
        ("fidelity: {type: choice, values: [rows, auto]}", "fidelity is a fixed setting"),
    ],
)
def test_bad_boosting_values_are_refused_at_plan_time(write_spec: Callable[..., Path], entry: str, message: str) -> None:
    with pytest.raises(SpecError, match=None) as err:
        automl.validate(write_spec(HEAD + f"  {entry}\n"))
    assert message in str(err.value)


def test_bad_fidelity_is_refused_and_good_values_pass(write_spec: Callable[..., Path]) -> None:
    bad = HEAD.replace("params: {steps: 2}", "params: {steps: 2, fidelity: epochs}")
    with pytest.raises(SpecError, match="fidelity 'epochs' is not a fidelity; use one of auto, rows, growth"):
        automl.validate(write_spec(bad))
    good = HEAD.replace("params: {steps: 2}", "params: {steps: 2, fidelity: rows}") + (
        "  lgbm__num_leaves: {type: int, low: 4, high: 256, log: true}\n"
        "  xgboost__max_depth: {type: choice, values: [0, 6]}\n"
        "  early_stopping_rounds: {type: int, low: 5, high: 50}\n")
    assert automl.validate(write_spec(good)).trainer.name == "sklearn"


def test_models_are_listed_when_installed_and_a_missing_library_says_what_to_install() -> None:
    from automl_sklearn import MISSING, models

    assert {"lgbm", "xgboost"} <= set(MODELS) and not {"lgbm", "xgboost"} & set(MISSING)
    try:
        assert not models._installed("automl_no_such_library", "nosuch")
        assert MISSING["nosuch"] == "pip install automl_no_such_library"
    finally:
        MISSING.pop("nosuch", None)


@pytest.mark.parametrize("model", GBMS)
def test_intermediate_exports_and_skops_to_onnx_conversion_predict_as_the_pipeline(
    make_trial: MakeTrial, model: str
) -> None:
    # Between steps the booster holds rounds past the best one but predicts with the best one: so must the ONNX file.
    data = splits("breast_cancer", "classification")
    trainer = make_trial({"model": model, "n_estimators": 300, "learning_rate": 0.3, "early_stopping_rounds": 40},
                         {"steps": 3, "export": "onnx"}, data=data)
    X = data.valid.X
    for step in trainer.run_steps(1):
        path = trainer.export(trainer.context.trial_dir / f"rung{step}")
        _agree("classification", trainer.load_predictor(path)(X), trainer.pipeline_.predict(X))
    trainer.params["export"] = "skops"
    skops = trainer.export(trainer.context.trial_dir / "skops")
    onnx = trainer.convert(skops, "onnx", trainer.context.trial_dir / "converted")
    _agree("classification", trainer.load_predictor(onnx)(X), trainer.pipeline_.predict(X))


# -- end to end ----------------------------------------------------------------------------------

SEARCH = """
task: classification
data: {dataset: breast_cancer, test: 0.2}
trainer: {name: sklearn, params: {steps: 4, export: onnx}}
searcher: {name: random}
scheduler: {name: asha}
space:
  model: {type: choice, values: [lgbm, xgboost]}
  n_estimators: {type: int, low: 20, high: 80}
  learning_rate: {type: float, low: 0.03, high: 0.3, log: true}
  lgbm__num_leaves: {type: int, low: 4, high: 32, log: true, when: {model: lgbm}}
  xgboost__max_depth: {type: int, low: 2, high: 6, when: {model: xgboost}}
objectives: [{metric: accuracy, mode: max}]
resources: {cpu: 1, max_concurrent: 2}
budget: {trials: 6}
seed: 3
ensemble: {enabled: false}  # whether one is built depends on the trials' order; tests/test_ensemble.py covers it
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_search_with_lgbm_xgboost_and_asha_exports_onnx(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    run = automl.search(write_spec(SEARCH), out=tmp_path / "run")
    trials = run.trials()
    assert len(trials) == 6 and not [t for t in trials if t["status"] == "failed"]
    completed = [t for t in trials if t["status"] == "completed"]
    assert completed and {t["config"]["model"] for t in trials} <= {"lgbm", "xgboost"}
    for t in completed:
        assert t["artifact"].endswith(".onnx") and (tmp_path / "run" / t["artifact"]).exists()
        assert 1 <= t["metrics"]["boost_rounds"] <= t["config"]["n_estimators"]
        assert [s["step"] for s in run.steps(t["number"])] == [1, 2, 3, 4]
    assert all(t["metrics"]["accuracy"] > 0.85 for t in completed)
