"""FLAML's cost-frugal searchers as automl searchers: CFO and BlendSearch.

Both are driven through FLAML's own ask/tell interface (``suggest(trial_id)``,
``on_trial_complete(trial_id, result, error)``), the trial id being the automl trial number.
The space becomes a ``flaml.tune`` space (conditions as FLAML's hierarchical choices over
dicts, see :mod:`automl_flaml.space`); FLAML optimises the primary objective with its
direction (``metric``/``mode``); the Pareto front is still built from every objective.

Cost: each result carries the trial's seconds (``TrialOutcome.cost_s``) as FLAML's
``time_total_s``, and the searchers are built with ``cost_attr="time_total_s"``, so CFO's
local search and BlendSearch's choice between its search threads weigh what a region of the
space costs. A trial of unknown cost counts the mean cost of the trials seen so far (1 s
before any).

How outcomes are told:

* ``completed`` with the primary objective: its value.
* ``stopped`` (early-stopped or paused by the scheduler) with the objective: the value at
  the budget it reached, as FLAML does itself under its schedulers; the scheduler judged the
  trial not among the best, and a partial value is usually worse than a full one, which is
  what CFO should learn about that region.
* ``failed``, or ended without the objective (a trial the engine did not start for lack of
  time): ``error=True``.

Ties: FLAML hears the objective as :meth:`automl.plugin.Objective.tie_broken` gives it, the trial's
log loss (or RMSE) breaking ties below a millionth. Accuracy is flat where a model moves no row
across the decision threshold: LightGBM's and XGBoost's low-cost starting points (4 trees of 4
leaves) predict the majority class of a 70/30 table, and so do their neighbours, so CFO, which
moves only on a strict improvement, stayed there (21 of 23 such trials on german at 60 s) while
the log loss said which way the model improves. The recorded metrics are the measured ones; the
flat-branch rule below and the learners' statistics use the measured value.

Trials FLAML never suggested: the outcomes told before the first :meth:`suggest` (a warm
start from another run) become FLAML's ``points_to_evaluate`` with their
``evaluated_rewards`` (values only: FLAML gives them a cost of 1 and keeps the best ones as
starting points). Afterwards such outcomes (a trial suggested after the last saved state of
a resumed run, a fallback trial, see below) are ignored: FLAML's ``on_trial_complete`` drops
ids it did not suggest, and it has no public way to add a finished point later.

Concurrency: FLAML's ``suggest`` returns None while it waits for results (CFO proposes only
so many neighbours of its incumbent before hearing back, its start point is pending, or the
proposal repeats a known config). For automl, None means the search is exhausted, so the
searcher then draws a random config from the space with its own seeded generator; FLAML is
not told about these fallback trials. The search never ends early.

Plateaus: CFO's local search shrinks its step only as one over the square root of its trial
count, so a cheap model whose value no longer changes (a logistic regression's ``C`` beyond
where regularisation matters: the same accuracy to the last digit) can hold the search for
dozens of trials; FLAML's AutoML escapes by choosing among learners, a hierarchical space has
no such choice. Once :data:`FLAT_PATIENCE` results in a row of one branch (the values of the
choices that pick dicts: ``model``) equal its best, the branch is flat: a proposal in it is
told to FLAML as failed and FLAML is asked again (a few times), then a config of another
branch is drawn at random. A branch that moves again is not flat any more.

Resume: the engine pickles the searcher; FLAML's searchers pickle themselves (their ``save``
is a pickle of the object), BlendSearch's Optuna study included.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from automl.plugin import Objective, Searcher, SearchSpace, TrialOutcome, lazy_import
from automl_flaml.space import FlamlSpace, check_flaml_space, default_low_cost, is_number

__all__ = ["BlendSearchSearcher", "CFOSearcher", "FlamlSearcher", "require"]

#: The result key FLAML reads a trial's cost from (``cost_attr``).
COST = "time_total_s"
_RESERVED = {COST, "config", "training_iteration"}
#: Results in a row equal to their branch's best after which the branch counts as flat (module docs).
FLAT_PATIENCE = 10
#: Times FLAML is asked again when it proposes a config of a flat branch.
FLAT_RETRIES = 5
#: Loggers silenced (to WARNING) while FLAML runs: FLAML logs its advice at INFO, Optuna
#: (BlendSearch's global search) one line per study and trial.
_LOGGERS = ("flaml", "optuna", "ray.tune.search.optuna")


def require() -> None:
    """Import FLAML or raise :class:`~automl.errors.PluginError` naming the package to install."""
    lazy_import("flaml.tune.searcher", "flaml")()


@contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings():
            # Optuna flags its own API status (ExperimentalWarning) and FLAML's Optuna wrapper
            # warns about quantisation it drops: noise for the user, not about the search.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class FlamlSearcher(Searcher):
    """Base of the FLAML searchers: one FLAML searcher object, built at the first suggestion.

    Args:
        space: What to search.
        objectives: The spec's objectives; FLAML optimises the first.
        seed: Seeds FLAML (its local search and, for BlendSearch, Optuna) and the fallback draws.
        low_cost_partial_config: Starting values of the parameters whose cost grows with
            the value (``{n_estimators: 4}``). None: ``low`` for every int/float named
            ``n_estimators``, ``num_leaves``, ``max_iter``, ``max_leaves`` or ``n_neighbors``
            (also as ``<prefix>.<name>``) and for every int with ``log: true``; ``{}``: none.
        points_to_evaluate: Configs to try first (each may be partial: FLAML completes it at
            random), completed with the low-cost values. None: in a conditional space, one
            point per value of each choice that picks a dict (see :meth:`start_points`); ``[]``: none.
    """

    #: Name of the ``flaml.tune.searcher`` class.
    algorithm: ClassVar[str] = ""

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        *,
        seed: int = 0,
        low_cost_partial_config: Mapping[str, Any] | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(space, objectives, seed=seed)
        require()
        check_flaml_space(space)
        if low_cost_partial_config is None:
            low_cost = default_low_cost(space)
        else:
            low_cost = _partial(space, low_cost_partial_config, "low_cost_partial_config", parents=False)
        if points_to_evaluate is not None and (
            isinstance(points_to_evaluate, (str, bytes, Mapping)) or not isinstance(points_to_evaluate, Sequence)
        ):
            raise ValueError(f"points_to_evaluate must be a list of configs, got {points_to_evaluate!r}")
        self.low_cost_partial_config = low_cost
        self._user_points = (
            None
            if points_to_evaluate is None
            else [_partial(space, p, f"points_to_evaluate[{i}]") for i, p in enumerate(points_to_evaluate)]
        )
        objective = self.objectives[0]
        # FLAML reads its cost and config from the same result dict: a metric of that name gets another key.
        self._metric = objective.metric if objective.metric not in _RESERVED else "_automl_objective"
        self._mode = objective.mode
        self._converter = FlamlSpace(space)
        self._flaml: Any = None
        self._warm: list[tuple[dict[str, Any], float]] = []  # (FLAML config, value) told before FLAML was built
        self._pending: dict[int, dict[str, Any]] = {}  # trial number -> FLAML's config, for FLAML's trials
        self._pending_ids: dict[int, str] = {}  # trial number -> FLAML's id, where not the number (plateaus)
        self._costs: list[float] = []
        self._rng = np.random.default_rng(seed)
        self.fallbacks = 0  # suggestions drawn at random because FLAML had none (see the module docs)
        self._branch_best: dict[tuple[Any, ...], float] = {}  # best value per branch (module docs: plateaus)
        self._flat_run: dict[tuple[Any, ...], int] = {}  # results in a row equal to that best
        self.flat_skips = 0  # FLAML proposals in a flat branch, told as failed

    # -- FLAML's searcher ---------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        """Constructor options of the FLAML class besides space, metric, mode and points."""
        return {}

    def _build(self) -> Any:
        searcher_module = lazy_import("flaml.tune.searcher", "flaml")()
        factory = getattr(searcher_module, self.algorithm)
        encode = self._converter.encode
        points, rewards = self._initial_points([encode(p, partial=True) for p in self.start_points()])
        # Low-cost values inside a conditional dict reach FLAML through the start points: its
        # per-dict form of low_cost_partial_config (a list of dicts plus the chosen index) loses
        # them for an unordered choice. A dict choice's own low-cost value orders the start points.
        branches = set(self._converter.branches())
        top = {n: v for n, v in self.low_cost_partial_config.items() if not self.space[n].when and n not in branches}
        with _quiet():
            return factory(
                metric=self._metric,
                mode=self._mode,
                space=self._converter.domains(),
                low_cost_partial_config=encode(top, partial=True) or None,
                points_to_evaluate=points or None,
                evaluated_rewards=rewards or None,
                # FLAML's local search seeds numpy's RandomState (below 2**32, plus an offset).
                seed=self.seed % (2**31),
                cost_attr=COST,
                **self._options(),
            )

    def _initial_points(self, starts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[float]]:
        """FLAML's ``points_to_evaluate`` and ``evaluated_rewards``: the warm-start trials (with
        their values) first, then the start points."""
        return [encoded for encoded, _ in self._warm] + starts, [value for _, value in self._warm]

    def start_points(self) -> list[dict[str, Any]]:
        """The configs FLAML tries first, completed with the low-cost values active in each.

        ``points_to_evaluate`` when given; otherwise, in a conditional space, one point per
        value of each choice that picks a dict (``model``), so that every model is tried at its
        low cost before CFO's local search settles in the best one (CFO's local search stays
        inside the dict it started in until it converges). A low-cost value of such a choice
        puts its point first.
        """
        if self._user_points is not None:
            points = [dict(p) for p in self._user_points]
        else:
            branches = self._converter.branches()
            sizes = {name: len(self.space[name].values) for name in branches}  # type: ignore[union-attr]
            first = {
                name: self._converter.index(name, self.low_cost_partial_config[name])
                if name in self.low_cost_partial_config
                else 0
                for name in branches
            }
            points = [
                {name: self.space[name].values[(first[name] + j) % sizes[name]] for name in branches}  # type: ignore[union-attr]
                for j in range(max(sizes.values(), default=0))
            ]
        for point in points:
            for name, value in self.low_cost_partial_config.items():
                if name not in point and self.space[name].is_active(point):
                    point[name] = value
        return points

    # -- ask/tell -----------------------------------------------------------------------------

    def suggest(self, number: int) -> dict[str, Any] | None:
        if self._flaml is None:
            self._flaml = self._build()
        flat = {key for key, run in self._flat_run.items() if run >= FLAT_PATIENCE}
        for attempt in range(FLAT_RETRIES + 1):
            # Each retry is a new FLAML trial id (FLAML keeps one config per id), never an automl number.
            trial_id = str(number) if attempt == 0 else f"{number}-flat{attempt}"
            with _quiet():
                config = self._flaml.suggest(trial_id)
            if config is None:
                # FLAML waits for results (or proposed a known config): None would end the search.
                return self._fallback(flat)
            decoded = self._converter.decode(config)
            if self._branch(decoded) not in flat or len(flat) >= self._branch_count():
                if attempt:  # FLAML hears of this trial under the id it proposed it with
                    self._pending_ids[number] = trial_id
                self._pending[number] = config
                return decoded
            self.flat_skips += 1
            with _quiet():
                self._flaml.on_trial_complete(trial_id, None, error=True)
        return self._fallback(flat)

    def _fallback(self, flat: set[tuple[Any, ...]]) -> dict[str, Any] | None:
        """The suggestion when FLAML has none: a random config (module docs: concurrency)."""
        self.fallbacks += 1
        return self._sample(flat)

    def _branch(self, config: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(config.get(name) for name in self._converter.branches())

    def _branch_count(self) -> int:
        count = 1
        for name in self._converter.branches():
            count *= len(self.space[name].values)  # type: ignore[union-attr]
        return count

    def _sample(self, flat: set[tuple[Any, ...]]) -> dict[str, Any]:
        """A random config, outside the flat branches when one is found in a few draws."""
        config = self.space.sample(self._rng)
        for _ in range(100):
            if self._branch(config) not in flat:
                break
            config = self.space.sample(self._rng)
        return config

    def _note_value(self, config: Mapping[str, Any], value: float) -> None:
        key = self._branch(config)
        best = self._branch_best.get(key)
        if best is not None and abs(value - best) <= 1e-12 * max(1.0, abs(best)):
            self._flat_run[key] = self._flat_run.get(key, 0) + 1
        else:
            self._flat_run[key] = 0
        if best is None or self.objectives[0].to_min(value) < self.objectives[0].to_min(best):
            self._branch_best[key] = value

    def observe(self, outcome: TrialOutcome) -> None:
        seconds = getattr(outcome, "cost_s", None)  # TrialOutcome.cost_s is new: tolerate an older core
        cost = float(seconds) if is_number(seconds) else None
        if cost is not None:
            self._costs.append(float(cost))
        raw = outcome.values.get(self.objectives[0].metric)
        value = float(raw) if outcome.status in ("completed", "stopped") and is_number(raw) else None
        if value is not None and outcome.status == "completed":
            self._note_value(outcome.config, value)  # flat: equal to the last digit, whatever the log loss
        if value is not None:
            value = self._told(outcome, value)
        config = self._pending.pop(outcome.number, None)
        trial_id = self._pending_ids.pop(outcome.number, str(outcome.number))
        if config is None:
            if self._flaml is None and value is not None and self.space.contains(outcome.config):
                self._warm.append((self._converter.encode(outcome.config), value))
            return
        if cost is None:
            cost = float(np.mean(self._costs)) if self._costs else 1.0
        result: dict[str, Any] | None = None
        if value is not None:
            # FLAML reads the config from "config" and, for CFO's choice among its start
            # points, from "config/<key>" entries (as Ray Tune's flattened results have them).
            result = {
                self._metric: value,
                COST: cost,
                "config": config,
                **{f"config/{key}": item for key, item in config.items()},
            }
        with _quiet():
            self._flaml.on_trial_complete(trial_id, result, error=result is None)

    def _told(self, outcome: TrialOutcome, value: float) -> float:
        """The value FLAML hears: ties on a coarse objective broken by the trial's log loss (module docs)."""
        tie_broken = getattr(self.objectives[0], "tie_broken", None)  # Objective.tie_broken is new: an older core
        broken = tie_broken(outcome.values) if tie_broken is not None else None
        return float(broken) if broken is not None else value

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A searcher pickled by an earlier version (a resumed run) lacks the plateau bookkeeping.
        self.__dict__.update(state)
        for name in ("_pending_ids", "_branch_best", "_flat_run"):
            self.__dict__.setdefault(name, {})
        self.__dict__.setdefault("flat_skips", 0)

    @property
    def flaml(self) -> Any:
        """FLAML's searcher object (None before the first suggestion); read it, do not change it."""
        return self._flaml


class CFOSearcher(FlamlSearcher):
    """FLAML's cost-frugal optimisation (``flaml.tune.searcher.CFO``): a randomised local search
    (FLOW2) that starts from the low-cost corner and moves towards costly configs only as far
    as they pay off, restarting when it converges. Primary objective only."""

    algorithm = "CFO"

    def _initial_points(self, starts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[float]]:
        # CFO keeps only the best evaluated point (it starts its local search there). With
        # start points besides, CFO first runs them all and starts from the best one, reading
        # each one's config from its result, which FLAML does not record for an evaluated point:
        # the warm start's best config is then run again as the first start point instead.
        if not self._warm:
            return starts, []
        best, value = min(self._warm, key=lambda item: self.objectives[0].to_min(item[1]))
        return ([best], [value]) if not starts else ([best, *starts], [])


class BlendSearchSearcher(FlamlSearcher):
    """FLAML's BlendSearch (``flaml.tune.searcher.BlendSearch``): CFO's local searches started
    from points proposed by a global Bayesian search (Optuna TPE), the threads prioritised by
    their expected improvement per cost. Primary objective only; needs Optuna.

    In a conditional space the low-cost values inside a dict reach FLAML as start points
    (:meth:`FlamlSearcher.start_points`), not as ``low_cost_partial_config``, from which FLAML
    builds the region its global proposals must fall in: the region is then empty and those
    proposals are not bounded by cost (``learners`` is the cost-bounded choice there). Giving
    FLAML the per-dict form as well bounds them, and scored worse on the tabular benchmark's
    largest table at 60 s (the plugin README), so it is not done.

    Args:
        experimental: FLAML's ``experimental`` flag: a multivariate, grouped TPE for the global
            search (flat spaces: it then also learns from the local searches' results).
    """

    algorithm = "BlendSearch"

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        *,
        seed: int = 0,
        low_cost_partial_config: Mapping[str, Any] | None = None,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        experimental: bool = False,
    ) -> None:
        if not isinstance(experimental, bool):
            raise ValueError(f"experimental must be true or false, got {experimental!r}")
        lazy_import("optuna", "optuna")()
        self.experimental = experimental
        super().__init__(
            space,
            objectives,
            seed=seed,
            low_cost_partial_config=low_cost_partial_config,
            points_to_evaluate=points_to_evaluate,
        )

    def _options(self) -> dict[str, Any]:
        return {"experimental": self.experimental}


def _partial(space: SearchSpace, config: Any, field: str, *, parents: bool = True) -> dict[str, Any]:
    """Check a (possibly partial) config given in the spec: known names, values in range and
    (``parents``) the choices that make each parameter active given too."""
    if not isinstance(config, Mapping):
        raise ValueError(f"{field} must be a mapping of parameter names to values, got {config!r}")
    out: dict[str, Any] = {}
    for name, value in config.items():
        if name not in space:
            raise ValueError(f"{field}: unknown parameter {name!r}; the space has {sorted(space)}")
        param = space[name]
        if not param.contains(value) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"{field}: {name}={value!r} is outside {param}")
        out[name] = value
    for name in out if parents else ():
        for parent, allowed in space[name].when.items():
            if parent not in out or out[parent] not in allowed:
                raise ValueError(
                    f"{field}: {name!r} exists only when {parent!r} is one of {list(allowed)}; give {parent!r} too"
                )
    return out
