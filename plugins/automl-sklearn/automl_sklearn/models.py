"""The model zoo: names a spec's ``model`` parameter chooses from, per task.

A searched parameter reaches the chosen model when the model's estimator accepts it
(``get_params``); ``<model>__<param>`` addresses one model only. Parameters that are
not plain estimator arguments (the MLP's layer shape) are translated here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree
from sklearn.base import BaseEstimator


@dataclass(frozen=True)
class Model:
    name: str
    classifier: Callable[[], BaseEstimator] | None
    regressor: Callable[[], BaseEstimator] | None
    #: Searched names that are not estimator arguments -> how to turn them into arguments.
    translate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    extra: tuple[str, ...] = ()
    description: str = ""

    def factory(self, task: str) -> Callable[[], BaseEstimator] | None:
        return self.classifier if task == "classification" else self.regressor

    def accepts(self, task: str) -> set[str]:
        make = self.factory(task)
        return (set(make().get_params(deep=False)) | set(self.extra)) if make else set()


def _mlp(params: dict[str, Any]) -> dict[str, Any]:
    layers = int(params.pop("hidden_layers", 1))
    units = int(params.pop("hidden_units", 100))
    params.setdefault("hidden_layer_sizes", tuple([units] * layers))
    return params


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("linear", lambda: linear_model.LogisticRegression(max_iter=1000), linear_model.Ridge,
              description="logistic regression / ridge regression"),
        Model("knn", neighbors.KNeighborsClassifier, neighbors.KNeighborsRegressor, description="k nearest neighbours"),
        Model("svm", svm.SVC, svm.SVR, description="support vector machine"),
        Model("tree", tree.DecisionTreeClassifier, tree.DecisionTreeRegressor, description="decision tree"),
        Model("forest", ensemble.RandomForestClassifier, ensemble.RandomForestRegressor, description="random forest"),
        Model("extra_trees", ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor, description="extremely randomised trees"),
        Model("hgb", ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor,
              description="histogram gradient boosting"),
        Model("adaboost", ensemble.AdaBoostClassifier, ensemble.AdaBoostRegressor, description="AdaBoost"),
        Model("mlp", lambda: neural_network.MLPClassifier(max_iter=300), lambda: neural_network.MLPRegressor(max_iter=300),
              translate=_mlp, extra=("hidden_layers", "hidden_units"), description="multi-layer perceptron"),
    )
}


def estimator_params(model: Model, task: str, config: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of ``model``'s estimator taken from fixed params and the config."""
    accepted = model.accepts(task)
    out: dict[str, Any] = {}
    for source in (fixed, config):
        for key, value in source.items():
            prefix, sep, name = key.partition("__")
            if sep:
                if prefix == model.name:
                    out[name] = value
            elif key in accepted:
                out[key] = value
    if model.translate:
        out = model.translate(out)
    return out
