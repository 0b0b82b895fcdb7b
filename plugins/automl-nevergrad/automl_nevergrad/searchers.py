"""nevergrad optimizers as automl searchers, driven through nevergrad's ``ask``/``tell``.

The space becomes a ``ng.p.Dict`` parametrization: ``Scalar`` for linear floats, ``Log``
for log-scaled ones, integer casting for ints (a stepped int is searched as its step
index), ``Choice`` for choices. nevergrad has no conditional parameters: every parameter
is in the vector, and those inactive under a config are left out of the trial (they do not
change its result, so the optimizer learns they do not matter). Float steps and log-scaled
int steps are applied by snapping the value onto the space.

Several ``ask`` calls may come before any ``tell`` (concurrent trials): nevergrad's
optimizers are built for that (``num_workers`` tells them how many to expect).

How outcomes are told (nevergrad has no state besides a loss):

* ``completed``: the primary objective's loss, or with several objectives the list of all
  of them (nevergrad's multi-objective ``tell``: it ranks candidates by hypervolume
  contribution and keeps a Pareto front).
* ``failed``, or completed without the objective: the worst loss seen so far (per
  objective), so the optimizer learns to leave a region that fails, on the same scale as
  real results. nevergrad's own convention, an infinite loss clipped to 5e20, would wreck
  the scale that multi-objective and model-based optimizers use. Before any loss has been
  seen there is nothing to compare with, and the failure is not told.
* ``stopped`` below the full budget: not told. Its value is a partial-budget one, which
  nevergrad would take for a full result; the candidate simply never gets a loss, as with
  a worker that never returns, which nevergrad's optimizers tolerate.

nevergrad is imported lazily so the plugin loads without it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from automl.plugin import Choice, Float, Int, Objective, Param, Searcher, SearchSpace, TrialOutcome, lazy_import

__all__ = [
    "CMASearcher",
    "DESearcher",
    "NevergradSearcher",
    "NGOptSearcher",
    "OnePlusOneSearcher",
    "PSOSearcher",
    "build_parametrization",
    "decode",
    "encode",
    "require",
]


def require() -> None:
    """Import nevergrad or raise :class:`~automl.errors.PluginError` naming the package to install."""
    _nevergrad()


def _nevergrad() -> Any:
    with warnings.catch_warnings():
        # pycma (nevergrad's CMA backend) warns on import when matplotlib is missing:
        # plotting is not used here.
        warnings.filterwarnings("ignore", message=r".*matplotlib.*")
        ng = lazy_import("nevergrad", "nevergrad")()
        with contextlib.suppress(ImportError):  # optional: only nevergrad's CMA uses it
            import cma  # noqa: F401
    return ng


def _ng_param(ng: Any, param: Param) -> Any:
    if isinstance(param, Choice):
        return ng.p.Choice(list(param.values))
    if isinstance(param, Float):
        if param.log:
            return ng.p.Log(lower=param.low, upper=param.high)
        return ng.p.Scalar(lower=param.low, upper=param.high)
    assert isinstance(param, Int)
    if param.log:
        return ng.p.Log(lower=param.low, upper=param.high).set_integer_casting()
    steps = (param.high - param.low) // param.step
    return ng.p.Scalar(lower=0, upper=steps).set_integer_casting()


def _constant(param: Param) -> tuple[bool, Any]:
    """Whether ``param`` can take one value only, and that value (kept out of the vector:
    nevergrad's one-option choices divide by zero in their softmax)."""
    if isinstance(param, Choice):
        return len(param.values) == 1, param.values[0]
    return param.low == param.high, param.low


def build_parametrization(space: SearchSpace, seed: int) -> Any:
    """The ``ng.p.Dict`` for ``space`` (one-value parameters left out), seeded with ``seed``."""
    ng = _nevergrad()
    params = {name: _ng_param(ng, param) for name, param in space.items() if not _constant(param)[0]}
    parametrization = ng.p.Dict(**params)
    parametrization.random_state = np.random.RandomState(seed)
    return parametrization


def decode(space: SearchSpace, value: Mapping[str, Any]) -> dict[str, Any]:
    """The config for a parametrization value: active parameters only, snapped onto the space."""
    config: dict[str, Any] = {}
    for name, param in space.items():
        if not param.is_active(config):
            continue
        constant, only = _constant(param)
        raw = only if constant else value[name]
        if isinstance(param, Int):
            k = int(round(float(raw)))
            # A log or one-value int holds the value itself; a linear one its step index.
            number = k if param.log or constant else param.low + k * param.step
            config[name] = int(param.clip(number))
        elif isinstance(param, Float):
            config[name] = float(param.clip(float(raw)))
        else:
            config[name] = raw
    return config


def encode(space: SearchSpace, config: Mapping[str, Any], default: Mapping[str, Any]) -> dict[str, Any]:
    """The parametrization's value for ``config`` (inactive parameters keep ``default``)."""
    value = dict(default)
    for name in space.active(config):
        param = space[name]
        if _constant(param)[0]:
            continue
        if isinstance(param, Int) and not param.log:
            value[name] = (config[name] - param.low) // param.step
        else:
            value[name] = config[name]
    return value


class NevergradSearcher(Searcher):
    """Base of the nevergrad searchers: one optimizer from ``ng.optimizers.registry``.

    Multi-objective: with several objectives every one is told (nevergrad's multi-objective
    mode); with one, the primary objective.

    Args:
        budget: Trials the optimizer may plan for (None: unknown); set it to the spec's
            ``budget.trials`` so optimizers that adapt to it can.
        num_workers: Trials expected to run at once (the spec's ``resources.max_concurrent``).
    """

    #: The name in ``nevergrad.optimizers.registry``.
    optimizer_name: str = ""

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, budget: int | None = None,
        num_workers: int = 1,
    ) -> None:
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
            raise ValueError(f"budget must be a positive integer or null, got {budget!r}")
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 1:
            raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")
        super().__init__(space, objectives, seed=seed)
        self.budget = budget
        self.num_workers = num_workers
        ng = _nevergrad()
        parametrization = build_parametrization(space, seed)
        self._default = dict(parametrization.value)
        self._optimizer = ng.optimizers.registry[self.optimizer_name](
            parametrization=parametrization, budget=budget, num_workers=num_workers
        )
        self._multi = len(self.objectives) > 1
        self._live: dict[int, Any] = {}  # our trial number -> asked candidate
        self._worst: list[float] | None = None  # per objective, over the losses told

    @property
    def optimizer(self) -> Any:
        """The nevergrad optimizer (read it, do not ask or tell it)."""
        return self._optimizer

    def suggest(self, number: int) -> dict[str, Any] | None:
        with warnings.catch_warnings():
            # Asking past `budget` is allowed (the engine decides when to stop).
            warnings.simplefilter("ignore", _nevergrad().errors.NevergradRuntimeWarning)
            candidate = self._optimizer.ask()
        self._live[number] = candidate
        return decode(self.space, candidate.value)

    def observe(self, outcome: TrialOutcome) -> None:
        candidate = self._live.pop(outcome.number, None)
        if outcome.status == "stopped":
            return  # a partial-budget value is not a result nevergrad can take (see the module doc)
        if candidate is None:
            # A trial nevergrad never asked (warm start, a resume's lost trial): nevergrad
            # takes a told point it did not ask as a child of the parametrization.
            if not self.space.contains(outcome.config):
                return
            value = encode(self.space, outcome.config, self._default)
            try:
                candidate = self._optimizer.parametrization.spawn_child(new_value=value)
            except (ValueError, TypeError):
                return
        losses = self.losses(outcome) if self._multi else (
            None if (loss := self.primary_loss(outcome)) is None else [loss]
        )
        if outcome.status == "completed" and losses is not None:
            self._worst = losses if self._worst is None else [max(a, b) for a, b in zip(self._worst, losses)]
        elif self._worst is not None:
            losses = list(self._worst)
        else:
            return  # failed before any loss was seen: nothing to rank it against
        with warnings.catch_warnings():
            # In multi-objective mode nevergrad gives points outside its hypervolume bounds an
            # infinite pseudo-loss and warns about it on every such tell: that is its design.
            warnings.simplefilter("ignore", _nevergrad().errors.BadLossWarning)
            self._optimizer.tell(candidate, losses if self._multi else losses[0])


class NGOptSearcher(NevergradSearcher):
    """nevergrad's NGOpt: picks and combines optimizers from the space, budget and workers.

    Args:
        budget: Trials it plans for (it chooses its algorithm from this): set it to the
            spec's ``budget.trials``.
        num_workers: Trials expected to run at once.
    """

    optimizer_name = "NGOpt"

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, budget: int = 100,
        num_workers: int = 1,
    ) -> None:
        if budget is None:
            raise ValueError("ngopt needs a budget (it chooses its algorithm from it): set it to budget.trials")
        super().__init__(space, objectives, seed=seed, budget=budget, num_workers=num_workers)


class OnePlusOneSearcher(NevergradSearcher):
    """nevergrad's (1+1) evolution strategy with one-fifth-rule step adaptation."""

    optimizer_name = "OnePlusOne"


class DESearcher(NevergradSearcher):
    """nevergrad's differential evolution (``TwoPointsDE``, its variant for parallel evaluations)."""

    optimizer_name = "TwoPointsDE"


class CMASearcher(NevergradSearcher):
    """nevergrad's CMA-ES (pycma); choices are searched through nevergrad's softmax encoding."""

    optimizer_name = "CMA"


class PSOSearcher(NevergradSearcher):
    """nevergrad's particle swarm optimisation."""

    optimizer_name = "PSO"
