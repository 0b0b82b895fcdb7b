"""Plan-time checks of a spec for the ``sklearn`` trainer: before any trial starts.

Names (models, members, meta-learners, metrics, preprocessing values) are checked against
the zoo; every searched or fixed value that reaches an estimator is checked with
scikit-learn's own parameter validation (the ``_parameter_constraints`` every estimator
declares, run by ``_validate_params``), for the range ends of floats and ints and for every
choice value, on each model the key can reach. LightGBM and XGBoost declare no such
constraints: their values are checked by :func:`automl_sklearn.boosting.validate_lgbm` /
``validate_xgboost`` (a table of bounds, then the library's own checks on a one-round fit). Combinations (a solver that does not support
a penalty) are left to scikit-learn at fit time: such a trial fails with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from automl.plugin import Choice, Float, Int, Param, SearchSpace, Task
from automl_sklearn.build import OWN_KEYS, member_names
from automl_sklearn.export import EXPORTS
from automl_sklearn.fidelity import FIDELITIES
from automl_sklearn.metrics import scores_for
from automl_sklearn.models import ENSEMBLES, MODELS, Model
from automl_sklearn.preprocess import PREP_KEYS, check_prep

__all__ = ["check"]

#: Keys only ``trainer.params`` may set: the engine needs them before any config exists.
FIXED_ONLY = ("steps", "export", "rank_by", "fidelity")
#: The trainer's early stopping keys of LightGBM / XGBoost, also as ``<model>__<key>``.
_STOPPING = ("early_stopping", "early_stopping_rounds")


def _values(p: Param) -> list[tuple[str, Any]]:
    """(label, value) pairs a parameter can take at its extremes (or all of them, for a choice)."""
    if isinstance(p, Choice):
        return [("value", v) for v in p.values]
    assert isinstance(p, (Float, Int))
    out = [("low", p.low), ("high", p.high)]
    if p.grid:
        out += [("grid value", v) for v in p.grid]
    return out


def _all_values(key: str, space: SearchSpace, params: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(where, label, value) for every value ``key`` takes in the space or the fixed params."""
    out: list[tuple[str, str, Any]] = []
    if key in space:
        out += [(f"space.{key}", label, v) for label, v in _values(space[key])]
    if key in params:
        out.append((f"params.{key}", "value", params[key]))
    return out


def _allowed_models(key: str, space: SearchSpace, names: list[str]) -> list[str]:
    """The chosen models under which a searched key is active (from its ``when: {model: ...}``)."""
    if key in space and "model" in space[key].when:
        return [n for n in names if n in space[key].when["model"]]
    return names


def _validate(model: Model, task: str, param: str, value: Any) -> str | None:
    """scikit-learn's verdict on ``param = value`` for ``model``; None when valid."""
    factory = model.factory(task)
    if factory is None:
        return None
    estimator = factory()
    if model.validate is not None:
        return model.validate(param, value, estimator)
    args = {param: value}
    try:
        if model.translate and param in model.extra:
            args = model.translate(args)
        estimator.set_params(**args)
        if hasattr(estimator, "_validate_params"):
            estimator._validate_params()
    except (ValueError, TypeError) as exc:  # InvalidParameterError is both
        return str(exc)
    return None


def _models_named(values: Iterable[tuple[str, str, Any]], what: str, task: str, *, allow_best: bool) -> set[str]:
    out: set[str] = set()
    for where, _label, value in values:
        names = member_names(value) if what == "members" else str(value)
        if names == "best":
            if not allow_best:
                raise ValueError(f"{where}: {what} cannot be 'best'")
            continue
        for n in [names] if isinstance(names, str) else names:
            if n not in MODELS:
                kind = "an ensemble cannot be a member" if n in ENSEMBLES else "unknown model"
                raise ValueError(f"{where}: {what} {n!r}: {kind}; models: {', '.join(MODELS)}"
                                 + (", or best" if allow_best else ""))
            if MODELS[n].factory(task) is None:
                raise ValueError(f"{where}: {what} {n!r} does not do {task}")
            out.add(n)
        if what == "members" and not isinstance(names, str) and (len(names) < 2 or len(set(names)) != len(names)):
            raise ValueError(f"{where}: members {value!r} must name at least two different models, joined by '+'")
    return out


def check(task: Task, params: Mapping[str, Any], space: SearchSpace) -> None:
    """Refuse a spec the trainer cannot run, naming the field, the value and what is valid.

    Raises:
        ValueError: The first problem found.
    """
    for key in FIXED_ONLY:
        if key in space:
            raise ValueError(f"space.{key}: {key} is a fixed setting: put it under trainer.params, not in the space")
    if "model" in space:
        p = space["model"]
        if not isinstance(p, Choice):
            raise ValueError("space.model: the `model` parameter must be a choice of model names")
        names = [str(v) for v in p.values]
    elif "model" in params:
        names = [str(params["model"])]
    else:
        raise ValueError(f"choose a model: a `model` choice in the space or params.model; models: "
                         f"{', '.join([*MODELS, *ENSEMBLES])}")
    unknown = [n for n in names if n not in MODELS and n not in ENSEMBLES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; models: {', '.join(MODELS)}; ensembles: {', '.join(ENSEMBLES)}")
    wrong_task = [n for n in names if (MODELS.get(n) or ENSEMBLES[n]).factory(task) is None]
    if wrong_task:
        raise ValueError(f"model(s) {wrong_task} do not do {task}")

    members = _models_named(_all_values("members", space, params), "members", task, allow_best=True)
    bases = _models_named(_all_values("base", space, params), "base", task, allow_best=True)
    metas = _models_named(_all_values("meta", space, params), "meta", task, allow_best=False) or {"linear"}
    _check_own(task, params, space)

    for key in [*space, *params]:
        if key in OWN_KEYS and key not in ("class_weight", "early_stopping"):
            continue
        if key == "class_weight":
            if task != "classification":
                raise ValueError("class_weight is for classification; remove it for a regression task")
            for where, _label, value in _all_values(key, space, params):
                if value is not None and value != "balanced" and not isinstance(value, Mapping):
                    raise ValueError(f"{where}: class_weight {value!r} must be balanced, none (null) or a mapping")
        head, sep, name = key.partition("__")
        if sep and name in _STOPPING and _boosting(head):
            continue  # checked with the plain keys (_check_own)
        if sep:
            targets = _prefixed_targets(key, head, name, task, metas)
        else:
            allowed = _allowed_models(key, space, names)
            reach = [n for n in allowed if n in MODELS]
            for e in (n for n in allowed if n in ENSEMBLES):
                reach.append(e)
                reach += sorted(bases if e == "bagging" else members)
            targets = [(MODELS.get(n) or ENSEMBLES[n], key) for n in dict.fromkeys(reach)]
            targets = [(m, k) for m, k in targets if k in m.accepts(task)]
            if not targets and key not in ("class_weight", "early_stopping"):
                raise ValueError(
                    f"{'space' if key in space else 'params'}.{key}: {key!r} is not a parameter of any model it can "
                    f"reach ({', '.join(dict.fromkeys(allowed))}); address one model with MODEL__{key}"
                )
        for model, param in targets:
            for where, label, value in _all_values(key, space, params):
                if param == "weight":
                    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                        raise ValueError(f"{where}: {label} {value!r}: a voting weight must be a number >= 0")
                    continue
                problem = _validate(model, task, param, value)
                if problem:
                    raise ValueError(f"{where}: {label} {value!r} is not valid for model {model.name!r}: {problem}")


def _prefixed_targets(key: str, head: str, name: str, task: str, metas: set[str]) -> list[tuple[Model, str]]:
    if head == "meta":
        targets = [(MODELS[m], name) for m in sorted(metas) if name in MODELS[m].accepts(task)]
        if not targets:
            raise ValueError(f"{key}: no meta-learner ({', '.join(sorted(metas))}) has a parameter {name!r}")
        return targets
    model = MODELS.get(head) or ENSEMBLES.get(head)
    if model is None:
        raise ValueError(f"{key}: {head!r} is not a model; models: {', '.join([*MODELS, *ENSEMBLES])} (or meta)")
    if name == "weight" and head in MODELS:
        return [(model, "weight")]
    if name not in model.accepts(task):
        raise ValueError(f"{key}: model {head!r} has no parameter {name!r} for {task}")
    return [(model, name)]


def _boosting(name: str) -> bool:
    model = MODELS.get(name)
    return model is not None and model.growth is not None and model.growth.kind == "boosting"


def _check_own(task: Task, params: Mapping[str, Any], space: SearchSpace) -> None:
    check_prep({k: [v for _w, _l, v in _all_values(k, space, params)] for k in PREP_KEYS})
    metrics = scores_for(task)
    for where, _label, value in _all_values("rank_by", space, params):
        if value not in metrics:
            raise ValueError(f"{where}: rank_by {value!r} is not a {task} metric; use one of {', '.join(metrics)}")
    for where, _label, value in _all_values("export", space, params):
        if value not in EXPORTS:
            raise ValueError(f"{where}: export {value!r} is not a format; use one of {', '.join(EXPORTS)}")
        if value in ("onnx", "auto"):
            try:
                import onnxruntime  # noqa: F401
                import skl2onnx  # noqa: F401
            except ImportError as exc:
                raise ValueError(f"export: {value} needs skl2onnx and onnxruntime: pip install skl2onnx onnxruntime") from exc
    for where, _label, value in _all_values("steps", space, params):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{where}: steps must be a positive integer (budget steps per trial), got {value!r}")
    for where, _label, value in _all_values("fidelity", space, params):
        if value not in FIDELITIES:
            raise ValueError(f"{where}: fidelity {value!r} is not a fidelity; use one of {', '.join(FIDELITIES)}")
    stopping = [k for k in [*space, *params] if k.partition("__")[2 if "__" in k else 0] in _STOPPING]
    for key in dict.fromkeys(stopping):
        for where, label, value in _all_values(key, space, params):
            if key.endswith("early_stopping_rounds"):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"{where}: {label} {value!r}: early_stopping_rounds must be an integer >= 1")
            elif key.startswith(tuple(f"{m}__" for m in MODELS if _boosting(m))) and not isinstance(value, bool):
                raise ValueError(f"{where}: {label} {value!r}: early_stopping must be true or false")
    for where, label, value in _all_values("ensemble_size", space, params):
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ValueError(f"{where}: {label} {value!r}: ensemble_size must be an integer >= 2")
    for where, label, value in _all_values("rank_decay", space, params):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
            raise ValueError(f"{where}: {label} {value!r}: rank_decay must be in (0, 1]")
