"""The model zoo: the names a spec's ``model`` parameter chooses from, per task.

A searched or fixed key reaches the chosen model when the model's estimator accepts it
(``get_params``); ``<model>__<param>`` addresses one model only (alone or as an ensemble
member). Parameters that are not plain estimator arguments (the MLP's layer shape) are
translated here. Models that can grow (trees of a forest, boosting iterations, MLP
epochs) say how, so the trainer can fit them budget step by budget step.

LightGBM (``lgbm``) and XGBoost (``xgboost``) come through their scikit-learn APIs when their
libraries are installed; they are imported only when such a model is built. A missing one is
absent from :data:`MODELS` and named in :data:`MISSING` with what to install.

scikit-learn itself is imported only when an estimator is made (:func:`_sk`): this table is read
when the plugin loads, which every ``automl`` command and every trial worker does, and importing
scikit-learn costs about a second of CPU there.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

__all__ = ["ENSEMBLES", "MISSING", "MODELS", "Growth", "Model", "estimator_params", "growth_of"]


@dataclass(frozen=True)
class Growth:
    """How a model grows over budget steps.

    Attributes:
        param: The estimator argument that sets the full size (``n_estimators``, ``max_iter``).
        kind: ``warm_start``: refit with a larger ``param`` and ``warm_start=True`` (sklearn keeps
            the trees or iterations already fitted); ``epochs``: one ``partial_fit`` call per epoch;
            ``boosting``: LightGBM / XGBoost rounds added to the booster fitted so far
            (:mod:`automl_sklearn.boosting`), with early stopping on the validation part.
    """

    param: str
    kind: Literal["warm_start", "epochs", "boosting"]


@dataclass(frozen=True)
class Model:
    """One entry of the zoo.

    Attributes:
        name: What the spec's ``model`` value says.
        classifier: Makes the unfitted classifier, or None when the model does not classify.
        regressor: Makes the unfitted regressor, or None when the model does not regress.
        translate: Turns searched names that are not estimator arguments into arguments.
        extra: Those searched names (accepted besides ``get_params``).
        growth: How the model grows over budget steps; None when it is fitted in one go.
        description: One line for documentation.
        validate: ``validate(param, value, estimator)``: the reason a value is invalid, or None;
            for estimators without scikit-learn's parameter constraints (plan-time checks).
    """

    name: str
    classifier: Callable[[], BaseEstimator] | None
    regressor: Callable[[], BaseEstimator] | None
    translate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    extra: tuple[str, ...] = ()
    growth: Growth | None = None
    description: str = ""
    validate: Callable[[str, Any, BaseEstimator], str | None] | None = None

    def factory(self, task: str) -> Callable[[], BaseEstimator] | None:
        return self.classifier if task == "classification" else self.regressor

    def accepts(self, task: str) -> set[str]:
        """Keys this model takes for ``task`` (estimator arguments and translated extras)."""
        make = self.factory(task)
        return (set(make().get_params(deep=False)) | set(self.extra)) if make else set()


def _sk(module: str, name: str, **defaults: Any) -> Callable[[], BaseEstimator]:
    """Makes ``sklearn.<module>.<name>(**defaults)``, importing scikit-learn only then (a fresh list per
    estimator for a list default, such as an ensemble's empty ``estimators``)."""

    def make() -> BaseEstimator:
        kwargs = {k: list(v) if isinstance(v, list) else v for k, v in defaults.items()}
        return getattr(importlib.import_module(f"sklearn.{module}"), name)(**kwargs)

    make.__qualname__ = name
    return make


def _mlp(params: dict[str, Any]) -> dict[str, Any]:
    layers = int(params.pop("hidden_layers", 1))
    units = int(params.pop("hidden_units", 100))
    # Checked here rather than left to MLP.fit so the spec check can reject the range before any trial.
    if layers < 1 or units < 1:
        raise ValueError(f"hidden_layers and hidden_units must be >= 1, got {layers} and {units}")
    params.setdefault("hidden_layer_sizes", tuple([units] * layers))
    return params


#: Zoo models whose library is not installed: name -> what to install.
MISSING: dict[str, str] = {}


def _installed(module: str, *names: str) -> bool:
    if importlib.util.find_spec(module) is not None:
        return True
    MISSING.update({n: f"pip install {module}" for n in names})
    return False


def _lgbm(task: str) -> Callable[[], BaseEstimator]:
    def make() -> BaseEstimator:
        import lightgbm

        cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
        # One thread unless the trial has more CPUs (the builder sets n_jobs then); LightGBM's own
        # default is every core of the machine.
        return cls(n_jobs=1, verbose=-1)

    return make


def _xgb(task: str) -> Callable[[], BaseEstimator]:
    def make() -> BaseEstimator:
        if task == "classification":
            from automl_sklearn.xgb import XGBLabelClassifier

            return XGBLabelClassifier(n_estimators=100, n_jobs=1, verbosity=0)
        import xgboost

        return xgboost.XGBRegressor(n_estimators=100, n_jobs=1, verbosity=0)

    return make


def _boosting_models() -> list[Model]:
    from automl_sklearn.boosting import validate_lgbm, validate_xgboost

    out = []
    if _installed("lightgbm", "lgbm"):
        out.append(Model("lgbm", _lgbm("classification"), _lgbm("regression"), growth=Growth("n_estimators", "boosting"),
                         validate=validate_lgbm,
                         description="LightGBM (LGBMClassifier / LGBMRegressor), early stopping on the validation part"))
    if _installed("xgboost", "xgboost"):
        out.append(Model("xgboost", _xgb("classification"), _xgb("regression"), growth=Growth("n_estimators", "boosting"),
                         validate=validate_xgboost,
                         description="XGBoost (XGBClassifier / XGBRegressor), early stopping on the validation part"))
    return out


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("linear", _sk("linear_model", "LogisticRegression", max_iter=1000), _sk("linear_model", "Ridge"),
              description="logistic regression (C, l1_ratio, solver) / ridge regression (alpha)"),
        Model("elasticnet", None, _sk("linear_model", "ElasticNet", max_iter=5000),
              description="linear regression with L1 + L2 regularisation (alpha, l1_ratio)"),
        Model("knn", _sk("neighbors", "KNeighborsClassifier"), _sk("neighbors", "KNeighborsRegressor"), description="k nearest neighbours"),
        Model("qda", _sk("discriminant_analysis", "QuadraticDiscriminantAnalysis"), None,
              description="quadratic discriminant analysis: one Gaussian per class (reg_param shrinks its covariance)"),
        Model("naive_bayes", _sk("naive_bayes", "GaussianNB"), None,
              description="Gaussian naive Bayes: one Gaussian per class with independent features (var_smoothing)"),
        Model("svm", _sk("svm", "SVC"), _sk("svm", "SVR"), description="support vector machine"),
        Model("tree", _sk("tree", "DecisionTreeClassifier"), _sk("tree", "DecisionTreeRegressor"), description="decision tree"),
        Model("forest", _sk("ensemble", "RandomForestClassifier"), _sk("ensemble", "RandomForestRegressor"),
              growth=Growth("n_estimators", "warm_start"), description="random forest"),
        Model("extra_trees", _sk("ensemble", "ExtraTreesClassifier"), _sk("ensemble", "ExtraTreesRegressor"),
              growth=Growth("n_estimators", "warm_start"), description="extremely randomised trees"),
        Model("hgb", _sk("ensemble", "HistGradientBoostingClassifier"), _sk("ensemble", "HistGradientBoostingRegressor"),
              growth=Growth("max_iter", "warm_start"), description="histogram gradient boosting"),
        Model("adaboost", _sk("ensemble", "AdaBoostClassifier"), _sk("ensemble", "AdaBoostRegressor"), description="AdaBoost"),
        Model("mlp", _sk("neural_network", "MLPClassifier", max_iter=300), _sk("neural_network", "MLPRegressor", max_iter=300),
              translate=_mlp, extra=("hidden_layers", "hidden_units"), growth=Growth("max_iter", "epochs"),
              description="multi-layer perceptron (epochs = max_iter)"),
        *_boosting_models(),
    )
}

#: Ensembles, searched like any model; their members are built by :mod:`automl_sklearn.ensembles`.
ENSEMBLES: dict[str, Model] = {
    m.name: m
    for m in (
        Model("voting", _sk("ensemble", "VotingClassifier", estimators=[]),
              _sk("ensemble", "VotingRegressor", estimators=[]),
              description="soft or hard voting over members, optionally weighted"),
        Model("stacking", _sk("ensemble", "StackingClassifier", estimators=[]),
              _sk("ensemble", "StackingRegressor", estimators=[]),
              description="stacking: a meta-learner (`meta`) fitted on the members' out-of-fold predictions"),
        Model("bagging", _sk("ensemble", "BaggingClassifier"), _sk("ensemble", "BaggingRegressor"),
              growth=Growth("n_estimators", "warm_start"), description="bagging of one base model (`base`)"),
    )
}


def growth_of(model: Model, estimator: BaseEstimator) -> Growth | None:
    """The growth of ``estimator`` as configured: an MLP grows by epochs only with a stochastic solver."""
    if model.growth is not None and model.growth.kind == "epochs" and estimator.get_params().get("solver") == "lbfgs":
        return None  # lbfgs has no partial_fit: the MLP is fitted in one go
    return model.growth


def estimator_params(
    model: Model, task: str, config: Mapping[str, Any], fixed: Mapping[str, Any], *, prefix: str | None = None,
    plain: bool = True,
) -> dict[str, Any]:
    """The arguments of ``model``'s estimator taken from fixed params and the config (the config wins).

    Args:
        model: The model to build.
        task: ``classification`` or ``regression``.
        config: The trial's searched values.
        fixed: The spec's fixed ``trainer.params``.
        prefix: The ``PREFIX__`` that addresses this model (default: its name; ``meta`` for a
            stacking meta-learner).
        plain: Whether un-prefixed keys the estimator accepts reach it.
    """
    accepted = model.accepts(task)
    own = prefix or model.name
    out: dict[str, Any] = {}
    for source in (fixed, config):
        for key, value in source.items():
            head, sep, name = key.partition("__")
            if sep:
                if head == own and name in accepted:
                    out[name] = value
            elif plain and key in accepted:
                out[key] = value
    if model.translate:
        out = model.translate(out)
    return out
