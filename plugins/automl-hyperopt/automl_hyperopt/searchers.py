"""hyperopt's algorithms as automl searchers: TPE, adaptive TPE and annealing.

hyperopt has no public ask/tell interface; its ``fmin`` loop calls an algorithm's
``suggest(new_ids, domain, trials, seed)`` and then fills the trial documents in. We drive
``Trials`` and the algorithms' ``suggest`` the same way (and the way Ray Tune's
``HyperOptSearch`` does): ask for one new document, evaluate the space expression with its
values, and later write the result into the document.

The space becomes a hyperopt *tree*: a choice that other parameters depend on becomes an
``hp.choice`` between branches, each holding the parameters active under that value, so
TPE models each branch separately, as it was designed to. hyperopt labels must be unique,
so a parameter that appears in several branches gets one label per branch
(``C|model='svm'``); configs still use the spec's names.

How outcomes are told (hyperopt's TPE and annealing give a document without a loss an
infinite loss, which puts it among the bad trials, as they do for running ones):

* ``completed``: status ``ok`` with the primary objective as the loss (hyperopt is
  single-objective; the front is still built from every objective).
* ``stopped`` below the full budget: status ``suspended`` and no loss: it is not a full
  result, and the scheduler judged it not among the best, which is what an infinite loss
  tells TPE. The partial value is kept in the document as ``partial_loss``.
* ``failed``, or completed without the objective: status ``fail`` and no loss.

hyperopt is imported lazily so the plugin loads without it.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from automl.plugin import Choice, Float, Int, Objective, Param, Searcher, SearchSpace, TrialOutcome, lazy_import

__all__ = [
    "AnnealSearcher",
    "ATPESearcher",
    "HyperoptSearcher",
    "TPESearcher",
    "build_expression",
    "check_hyperopt_space",
    "require",
]

#: Refuse a tree with more leaves than this: each conditional branch copies the parameters under it.
MAX_LEAVES = 2000
_BRANCH = "__branch__"
_REQUIREMENTS = {"hyperopt": "hyperopt", "lightgbm": "lightgbm", "sklearn": "scikit-learn"}


def require(*modules: str) -> None:
    """Import ``modules`` or raise :class:`~automl.errors.PluginError` naming the package to install."""
    for module in modules:
        lazy_import(module, _REQUIREMENTS.get(module, module))()


def _hyperopt() -> Any:
    return lazy_import("hyperopt", "hyperopt")()


# -- the space as a hyperopt tree -------------------------------------------------------------


def _components(space: SearchSpace) -> list[list[str]]:
    """Parameters grouped by the conditions linking them, each group in space order."""
    group = {name: name for name in space}

    def find(name: str) -> str:
        while group[name] != name:
            group[name] = group[group[name]]
            name = group[name]
        return name

    for name, param in space.items():
        for parent in param.when:
            group[find(name)] = find(parent)
    out: dict[str, list[str]] = {}
    for name in space:
        out.setdefault(find(name), []).append(name)
    return list(out.values())


def _leaf(hp: Any, param: Param, label: str) -> Any:
    if isinstance(param, Choice):
        return hp.choice(label, list(param.values))
    if isinstance(param, Float):
        lo, hi = param.low, param.high
        if param.log:
            if param.step:
                return hp.qloguniform(label, math.log(lo), math.log(hi), param.step)
            return hp.loguniform(label, math.log(lo), math.log(hi))
        return hp.quniform(label, lo, hi, param.step) if param.step else hp.uniform(label, lo, hi)
    assert isinstance(param, Int)
    # Integers: a quantised range widened by half a step each side so the end values are
    # as likely as the others; the value is snapped onto the space's steps afterwards.
    if param.log:
        return hp.qloguniform(label, math.log(param.low - 0.49), math.log(param.high + 0.49), param.step)
    half = 0.49 * param.step
    return hp.quniform(label, param.low - half, param.high + half, param.step)


@dataclass(frozen=True)
class _Label:
    """One hyperopt label: the parameter it stands for and the branch values it lives under."""

    name: str
    param: Param
    context: tuple[tuple[str, Any], ...]


def build_expression(space: SearchSpace, hp: Any | None, labels: dict[str, _Label] | None = None) -> dict[str, Any]:
    """The hyperopt space for ``space``: a dict of leaves and ``hp.choice`` branches.

    Args:
        space: The space to translate.
        hp: The ``hyperopt.hp`` module; None only counts and labels (no hyperopt objects).
        labels: Filled with every hyperopt label and what it stands for, when given.

    Raises:
        ValueError: When the conditions multiply into more than :data:`MAX_LEAVES` leaves.
    """
    parents = {parent for param in space.values() for parent in param.when}
    labels = {} if labels is None else labels

    def build(names: list[str], start: int, context: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in range(start, len(names)):
            name = names[i]
            param = space[name]
            if not param.is_active(context):
                continue
            label = name + path
            if isinstance(param, (Float, Int)) and param.low == param.high:
                out[name] = param.low  # one value: a constant (hyperopt refuses an empty range)
                continue
            if len(labels) >= MAX_LEAVES:
                raise ValueError(
                    f"the conditions multiply into more than {MAX_LEAVES} hyperopt parameters "
                    "(each branch holds its own copy of the parameters under it); "
                    "use fewer nested conditions, or tpe (Optuna) which samples define-by-run"
                )
            labels[label] = _Label(name, param, tuple(context.items()))
            if isinstance(param, Choice) and name in parents:
                # Every later parameter of the group goes inside each branch, where this
                # choice's value is known.
                branches = []
                for value in param.values:
                    sub = build(names, i + 1, {**context, name: value}, f"{path}|{name}={value!r}")
                    branches.append({name: value, **sub})
                out[f"{_BRANCH}{label}"] = hp.choice(label, branches) if hp is not None else branches
                return out
            out[name] = _leaf(hp, param, label) if hp is not None else None
        return out

    expression: dict[str, Any] = {}
    for names in _components(space):
        expression.update(build(names, 0, {}, ""))
    return expression


def _same(a: Any, b: Any) -> bool:
    return bool(a == b and type(a) is type(b))


def encode(labels: Mapping[str, _Label], config: Mapping[str, Any]) -> dict[str, list[Any]]:
    """hyperopt's ``vals`` for ``config``: the value (a choice: its index) under each label it reaches."""
    vals: dict[str, list[Any]] = {}
    for label, info in labels.items():
        reached = info.name in config and all(k in config and _same(config[k], v) for k, v in info.context)
        if not reached:
            vals[label] = []
        elif isinstance(info.param, Choice):
            index = [i for i, v in enumerate(info.param.values) if _same(v, config[info.name])]
            vals[label] = index[:1]
        else:
            vals[label] = [config[info.name]]
    return vals


def _flatten(value: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if key.startswith(_BRANCH):
            _flatten(item, out)
        else:
            out[key] = item
    return out


def _snap(space: SearchSpace, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Config in space order with values snapped to steps and bounds, as plain Python types."""
    config: dict[str, Any] = {}
    for name, param in space.items():
        if not param.is_active(config):
            continue
        value = raw[name]
        if isinstance(param, Int):
            config[name] = int(param.clip(float(value)))
        elif isinstance(param, Float):
            config[name] = float(param.clip(float(value)))
        else:
            config[name] = value
    return config


def check_hyperopt_space(space: SearchSpace) -> None:
    """hyperopt searches every parameter kind; refuse only a tree too large to build."""
    require("hyperopt")
    build_expression(space, None)


# -- the searchers -------------------------------------------------------------------------------


class HyperoptSearcher(Searcher):
    """Base of the hyperopt searchers: a ``Trials`` object driven one suggestion at a time.

    Subclasses give :meth:`algorithm`, the hyperopt ``suggest`` function with its options.
    Single-objective: it minimises the primary objective.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0) -> None:
        super().__init__(space, objectives, seed=seed)
        require("hyperopt", *self.needs)
        hyperopt = _hyperopt()
        self._trials = hyperopt.Trials()
        # One generator for the per-suggestion seeds, so a sequential run repeats itself.
        self._rng = np.random.default_rng(seed)
        self._tids: dict[int, int] = {}  # our trial number -> hyperopt tid, while pending
        self._setup()

    def _setup(self) -> None:
        hyperopt = _hyperopt()
        self._labels: dict[str, _Label] = {}
        self._domain = hyperopt.Domain(_identity, build_expression(self.space, hyperopt.hp, self._labels))

    def algorithm(self) -> Callable[..., Any]:
        """hyperopt's ``suggest(new_ids, domain, trials, seed)`` with this searcher's options."""
        raise NotImplementedError

    @property
    def trials(self) -> Any:
        """The ``hyperopt.Trials`` holding every suggested trial (read it, do not change it)."""
        return self._trials

    def suggest(self, number: int) -> dict[str, Any] | None:
        hyperopt = _hyperopt()
        new_ids = self._trials.new_trial_ids(1)
        self._trials.refresh()
        seed = int(self._rng.integers(2**31 - 1))
        docs = self._call(self.algorithm(), new_ids, seed)
        self._trials.insert_trial_docs(docs)
        self._trials.refresh()
        doc = self._doc(new_ids[0])
        doc["state"] = hyperopt.JOB_STATE_RUNNING
        doc["book_time"] = doc["refresh_time"] = hyperopt.utils.coarse_utcnow()  # as fmin does when a job starts
        spec = hyperopt.base.spec_from_misc(doc["misc"])
        raw = hyperopt.pyll.rec_eval(self._domain.expr, memo=self._domain.memo_from_config(spec))
        self._tids[number] = new_ids[0]
        return _snap(self.space, _flatten(raw, {}))

    def _call(self, algorithm: Callable[..., Any], new_ids: list[int], seed: int) -> list[Any]:
        return list(algorithm(new_ids, self._domain, self._trials, seed))

    def observe(self, outcome: TrialOutcome) -> None:
        tid = self._tids.pop(outcome.number, None)
        if tid is None:
            self._add_foreign(outcome)
            return
        hyperopt = _hyperopt()
        doc = self._doc(tid)
        doc["result"] = self._result(outcome)
        doc["state"] = hyperopt.JOB_STATE_DONE
        doc["refresh_time"] = hyperopt.utils.coarse_utcnow()
        self._trials.refresh()

    def _add_foreign(self, outcome: TrialOutcome) -> None:
        """Learn from a trial hyperopt never suggested (warm start, or a resume's lost trial).

        Its config is encoded into the labels of the tree (as ``generate_trials_to_calculate``
        does for fmin's ``points_to_evaluate``) and inserted as a finished document.
        """
        config = dict(outcome.config)
        if not self.space.contains(config):
            return
        hyperopt = _hyperopt()
        vals = encode(self._labels, config)
        (tid,) = self._trials.new_trial_ids(1)
        misc = {
            "tid": tid, "cmd": self._domain.cmd, "workdir": self._domain.workdir,
            "idxs": {label: [tid] if v else [] for label, v in vals.items()}, "vals": vals,
        }
        (doc,) = self._trials.new_trial_docs([tid], [None], [self._result(outcome)], [misc])
        now = hyperopt.utils.coarse_utcnow()
        doc.update(state=hyperopt.JOB_STATE_DONE, book_time=now, refresh_time=now)
        self._trials.insert_trial_docs([doc])
        self._trials.refresh()

    def _result(self, outcome: TrialOutcome) -> dict[str, Any]:
        hyperopt = _hyperopt()
        loss = self.primary_loss(outcome)
        if outcome.status == "completed" and loss is not None:
            result: dict[str, Any] = {"status": hyperopt.STATUS_OK, "loss": loss}
        elif outcome.status == "stopped":
            result = {"status": hyperopt.STATUS_SUSPENDED, "budget": outcome.budget, "max_budget": outcome.max_budget}
            if loss is not None:
                result["partial_loss"] = loss
        else:
            result = {"status": hyperopt.STATUS_FAIL}
        return result

    def _doc(self, tid: int) -> dict[str, Any]:
        for doc in reversed(self._trials.trials):
            if doc["tid"] == tid:
                return doc  # type: ignore[no-any-return]
        raise KeyError(f"hyperopt has no trial {tid}")

    # The domain wraps a function and compiled pyll graphs: rebuild it from the space
    # instead of pickling it. Trials, tids and the seed generator are plain data.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_domain"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()


def _identity(config: Any) -> Any:
    return config


class TPESearcher(HyperoptSearcher):
    """hyperopt's tree-structured Parzen estimator (``hyperopt.tpe.suggest``).

    Args:
        n_startup_jobs: Random trials before the model is used.
        n_ei_candidates: Candidates scored per suggestion.
        gamma: Fraction of trials that count as good.
        prior_weight: Weight of the prior against the observations.
    """

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, n_startup_jobs: int = 20,
        n_ei_candidates: int = 24, gamma: float = 0.25, prior_weight: float = 1.0,
    ) -> None:
        _integers(n_startup_jobs=(n_startup_jobs, 0), n_ei_candidates=(n_ei_candidates, 1))
        if not 0 < gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
        if not prior_weight > 0:
            raise ValueError(f"prior_weight must be positive, got {prior_weight!r}")
        self.n_startup_jobs = n_startup_jobs
        self.n_ei_candidates = n_ei_candidates
        self.gamma = gamma
        self.prior_weight = prior_weight
        super().__init__(space, objectives, seed=seed)

    def algorithm(self) -> Callable[..., Any]:
        return partial(
            _hyperopt().tpe.suggest, n_startup_jobs=self.n_startup_jobs, n_EI_candidates=self.n_ei_candidates,
            gamma=self.gamma, prior_weight=self.prior_weight, verbose=False,
        )


class AnnealSearcher(HyperoptSearcher):
    """hyperopt's simulated annealing (``hyperopt.anneal.suggest``): samples near good trials, ever closer.

    Args:
        avg_best_idx: Mean rank of the trial sampled around (lower: greedier).
        shrink_coef: How fast the neighbourhood shrinks with the number of trials.
    """

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, avg_best_idx: float = 2.0,
        shrink_coef: float = 0.1,
    ) -> None:
        if not avg_best_idx > 0:
            raise ValueError(f"avg_best_idx must be positive, got {avg_best_idx!r}")
        if not shrink_coef > 0:
            raise ValueError(f"shrink_coef must be positive, got {shrink_coef!r}")
        self.avg_best_idx = avg_best_idx
        self.shrink_coef = shrink_coef
        super().__init__(space, objectives, seed=seed)

    def algorithm(self) -> Callable[..., Any]:
        return partial(_hyperopt().anneal.suggest, avg_best_idx=self.avg_best_idx, shrink_coef=self.shrink_coef)


class ATPESearcher(HyperoptSearcher):
    """hyperopt's adaptive TPE (``hyperopt.atpe.suggest``): TPE whose own settings are
    predicted from the search so far by pretrained LightGBM models.

    Takes no options. Needs ``lightgbm`` and ``scikit-learn``.
    """

    needs = ("lightgbm", "sklearn")

    def algorithm(self) -> Callable[..., Any]:
        return lazy_import("hyperopt.atpe", "hyperopt")().suggest  # type: ignore[no-any-return]

    def _call(self, algorithm: Callable[..., Any], new_ids: list[int], seed: int) -> list[Any]:
        hyperopt = _hyperopt()
        # ATPE reads every document's loss (a running or failed one has none) and ignores
        # its seed argument, drawing from the global `random` and `numpy.random` instead.
        # So it gets a Trials with the documents that have a loss only (it starts with
        # random draws while there are none), and the global generators are seeded from
        # ours for the call and then put back, so that a run repeats with its seed and
        # nothing else in the process is disturbed.
        finished = hyperopt.Trials()
        docs = [
            dict(doc) for doc in self._trials.trials
            if doc["state"] == hyperopt.JOB_STATE_DONE and doc["result"].get("loss") is not None
        ]
        if docs:
            finished.insert_trial_docs(docs)
            finished.refresh()
        saved_random, saved_numpy = random.getstate(), np.random.get_state()
        try:
            random.seed(seed)
            np.random.seed(seed)
            # Its LightGBM models predict one row at a time: OpenMP threads only add
            # start-up cost there (about 10x slower on 2 busy cores).
            with threadpool_limits(limits=1, user_api="openmp"), warnings.catch_warnings():
                # Its statistics over a handful of trials warn about constant inputs (NaN
                # correlations, which it handles): noise for the user.
                warnings.simplefilter("ignore", RuntimeWarning)
                return list(algorithm(new_ids, self._domain, finished, seed))
        finally:
            random.setstate(saved_random)
            np.random.set_state(saved_numpy)


def _integers(**values: tuple[Any, int]) -> None:
    for name, (value, minimum) in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
