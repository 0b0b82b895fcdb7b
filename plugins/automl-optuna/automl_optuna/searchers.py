"""Optuna samplers as automl searchers, driven through Optuna's own ask/tell interface.

Every searcher here keeps one in-memory :class:`optuna.Study`: :meth:`suggest` asks a
trial and samples the active parameters define-by-run (so conditional spaces keep their
tree shape), :meth:`observe` tells it. All objectives are minimised inside the study
(values arrive through :meth:`Searcher.losses`, already turned into minimisation form).

How outcomes are told:

* ``completed``: ``COMPLETE`` with the objective values (the primary one only for a
  single-objective sampler or a single-objective spec). A completed trial missing an
  objective is told ``FAIL``.
* ``stopped`` (early-stopped by the scheduler below the full budget): ``PRUNED``, as
  Optuna's own pruners do. For a single objective the last value is first reported as
  an intermediate value at the budget reached, so the sampler sees it as a partial
  result (Optuna uses the last intermediate value of a pruned trial), never as a full one.
* ``failed``: ``FAIL``.

Resume: the engine pickles the searcher with the run's state. Optuna's ``Study`` and
``InMemoryStorage`` pickle themselves (the storage drops its lock and makes a new one on
load); the genetic samplers' own lock (NSGA-II/III, Optuna 5.1) does not, so the searcher
pickles its state with a pickler that writes every threading lock as a new one. The study
travels whole: trials, study system attributes (QMC's sequence
position, NSGA-II's generations), the sampler and its random state, and the asked trials'
handles, which still point at the restored study. A restored searcher continues exactly
the search it left (the conformance kit checks this).

Optuna is imported lazily so that the plugin loads (and ``automl plugins`` lists it)
without Optuna; using a searcher then says which package to install.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from automl.plugin import Choice, Float, Int, Objective, Searcher, SearchSpace, TrialOutcome, lazy_import

if TYPE_CHECKING:
    import optuna

__all__ = [
    "CmaEsSearcher",
    "GPSearcher",
    "NSGA2Searcher",
    "NSGA3Searcher",
    "OptunaSearcher",
    "QMCSearcher",
    "TPESearcher",
    "check_cmaes_space",
    "require",
]

_REQUIREMENTS = {"optuna": "optuna", "cmaes": "cmaes", "torch": "torch", "scipy": "scipy"}


def require(*modules: str) -> None:
    """Import ``modules`` or raise :class:`PluginError` naming the package to install."""
    for module in modules:
        lazy_import(module, _REQUIREMENTS.get(module, module))()


def _optuna() -> Any:
    optuna = lazy_import("optuna", "optuna")()
    # Optuna logs one INFO line per told trial; the engine's store and progress display
    # already report trials.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class _quiet(warnings.catch_warnings):
    """Silence warnings that are about Optuna's API status, not about the search.

    ``ExperimentalWarning`` (multivariate TPE, GP, QMC, NSGA-III...: the options are
    documented as ours), and the warning that a stepped range is not divisible by its
    step (Optuna then shortens ``high`` to the last step, as the space itself does).
    """

    def __enter__(self) -> Any:
        out = super().__enter__()
        optuna = _optuna()
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=r".*not divisible by.*")
        warnings.filterwarnings("ignore", message=r".*range is not divisible.*")
        return out


_LOCKS = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


class _LockSafePickler(pickle.Pickler):
    """Pickles a threading lock as a new, released one.

    By hand because Optuna offers nothing for it: from 5.1 its genetic samplers hold a
    ``threading.Lock`` and define no pickle support. A lock guards nothing across processes,
    so a fresh one is what the restored sampler needs (Optuna's storage does the same).
    """

    def reducer_override(self, obj: Any) -> Any:
        factory = _LOCKS.get(type(obj))
        return (factory, ()) if factory is not None else NotImplemented


#: Key of the searcher's pickled state (older runs' files hold the plain attribute dict).
_STATE = "lock_safe_state"


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run a GP fit on one torch thread, restored after.

    The GP is fitted in the driver process while the trials use the cores: one thread was about twice
    as fast as two on 2 busy cores (measured).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class OptunaSearcher(Searcher):
    """Base of the Optuna searchers: a study, define-by-run sampling, honest tells.

    Subclasses build their sampler in :meth:`make_sampler` from their own options.
    Multi-objective samplers set :attr:`multi_objective` and then optimise every
    objective of the spec; the others optimise the primary one.
    """

    #: Whether the sampler is told every objective (False: the primary one only).
    multi_objective: bool = False
    #: Modules the sampler needs besides Optuna.
    needs: tuple[str, ...] = ()

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0) -> None:
        super().__init__(space, objectives, seed=seed)
        require("optuna", *self.needs)
        self._n_values = len(self.objectives) if self.multi_objective else 1
        # Our trial number -> Optuna's trial number, and the asked trials not yet told.
        self._numbers: dict[int, int] = {}
        self._live: dict[int, optuna.Trial] = {}
        with _quiet():
            self._study = self._new_study(self.make_sampler())

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        """The Optuna sampler, built from this searcher's options and seed."""
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # One pickle for all attributes: the asked trials' handles keep pointing at the study.
        buffer = io.BytesIO()
        _LockSafePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(self.__dict__)
        return {_STATE: buffer.getvalue()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Only the engine's own searcher file reaches here (it unpickles nothing it did not write).
        self.__dict__.update(pickle.loads(state[_STATE]) if _STATE in state else state)

    @property
    def study(self) -> optuna.Study:
        """The study holding every asked and told trial (read it, do not tell it)."""
        return self._study

    def _new_study(self, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
        optuna = _optuna()
        return optuna.create_study(sampler=sampler, directions=["minimize"] * self._n_values)

    # -- ask / tell ---------------------------------------------------------------------

    def suggest(self, number: int) -> dict[str, Any] | None:
        with _quiet():
            trial = self._study.ask()
            config: dict[str, Any] = {}
            for name, param in self.space.items():
                if param.is_active(config):
                    config[name] = _sample(trial, name, param)
        self._numbers[number] = trial.number
        self._live[number] = trial
        return config

    def observe(self, outcome: TrialOutcome) -> None:
        trial = self._live.pop(outcome.number, None)
        if trial is None:
            self._add_foreign(outcome)
            return
        state = _optuna().trial.TrialState
        with _quiet():
            if outcome.status == "completed":
                values = self._values(outcome)
                if values is None:
                    self._study.tell(trial, state=state.FAIL)
                else:
                    self._study.tell(trial, values)
            elif outcome.status == "stopped":
                loss = self.primary_loss(outcome)
                if self._n_values == 1 and loss is not None:
                    trial.report(loss, step=max(outcome.budget, 0))
                self._study.tell(trial, state=state.PRUNED)
            else:
                self._study.tell(trial, state=state.FAIL)

    def _values(self, outcome: TrialOutcome) -> list[float] | None:
        if self._n_values > 1:
            return self.losses(outcome)
        loss = self.primary_loss(outcome)
        return None if loss is None else [loss]

    def _add_foreign(self, outcome: TrialOutcome) -> None:
        """Learn from a trial this study never asked (warm start, or a resume's lost trial).

        It is added as a finished trial with the distributions :meth:`suggest` uses, told
        the same way as our own; a config outside the space is ignored.
        """
        optuna = _optuna()
        state = optuna.trial.TrialState
        config = dict(outcome.config)
        if not self.space.contains(config):
            return
        params = {name: config[name] for name in self.space.active(config)}
        distributions = {name: _distribution(self.space[name]) for name in params}
        kwargs: dict[str, Any] = {"state": state.FAIL}
        loss = self.primary_loss(outcome)
        if outcome.status == "completed" and (values := self._values(outcome)) is not None:
            kwargs = {"state": state.COMPLETE, "values": values}
        elif outcome.status == "stopped":
            kwargs = {"state": state.PRUNED}
            if self._n_values == 1 and loss is not None:
                kwargs.update(values=[loss], intermediate_values={max(outcome.budget, 0): loss})
        with _quiet():
            try:
                trial = optuna.trial.create_trial(params=params, distributions=distributions, **kwargs)
                self._study.add_trial(trial)
            except ValueError:
                return  # a value Optuna refuses for this distribution: nothing to learn from


def _distribution(param: Any) -> Any:
    """The distribution :func:`_sample` asks for ``param`` (the same arguments as its suggest call)."""
    d = _optuna().distributions
    if isinstance(param, Float):
        return d.FloatDistribution(param.low, param.high, log=param.log, step=None if param.log else param.step)
    if isinstance(param, Int):
        return d.IntDistribution(param.low, param.high, log=param.log, step=1 if param.log else param.step)
    return d.CategoricalDistribution(list(param.values))


def _sample(trial: optuna.Trial, name: str, param: Any) -> Any:
    """Sample one parameter; the value is snapped onto the space (steps, bounds, types)."""
    if isinstance(param, Float):
        # Optuna has no stepped log scale: sample the log scale and snap to the step
        # (the sampler models the continuous value, the objective sees the stepped one).
        step = None if param.log else param.step
        return param.clip(trial.suggest_float(name, param.low, param.high, log=param.log, step=step))
    if isinstance(param, Int):
        step = 1 if param.log else param.step
        return int(param.clip(trial.suggest_int(name, param.low, param.high, log=param.log, step=step)))
    if isinstance(param, Choice):
        return trial.suggest_categorical(name, list(param.values))
    raise TypeError(f"unknown parameter type {type(param).__name__}")


# -- the samplers -------------------------------------------------------------------------


class TPESearcher(OptunaSearcher):
    """Tree-structured Parzen estimator (``optuna.samplers.TPESampler``).

    Multi-objective: with several objectives it optimises all of them (MOTPE).

    Args:
        n_startup_trials: Random trials before the model is used.
        n_ei_candidates: Candidates scored per suggestion.
        multivariate: Model the parameters jointly instead of one by one. Unset, optuna's
            own default: jointly with one objective, one by one with several.
        group: Model each conditional branch as its own group (the right choice for
            conditional spaces); implies ``multivariate``.
        constant_liar: Treat trials still running as bad, so concurrent suggestions
            spread out instead of piling onto one point.
    """

    multi_objective = True

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, n_startup_trials: int = 10,
        n_ei_candidates: int = 24, multivariate: bool | None = None, group: bool = False, constant_liar: bool = True,
    ) -> None:
        if group and multivariate is False:
            raise ValueError("group: true needs multivariate: true (groups are modelled jointly); leave multivariate unset or true")
        _positive(n_startup_trials=n_startup_trials, n_ei_candidates=n_ei_candidates, minimum=0)
        self.n_startup_trials = n_startup_trials
        self.n_ei_candidates = n_ei_candidates
        self.multivariate = multivariate
        self.group = group
        self.constant_liar = constant_liar
        super().__init__(space, objectives, seed=seed)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return _optuna().samplers.TPESampler(
            seed=self.seed, n_startup_trials=self.n_startup_trials, n_ei_candidates=self.n_ei_candidates,
            multivariate=True if self.group else self.multivariate, group=self.group,
            constant_liar=self.constant_liar,
        )


class GPSearcher(OptunaSearcher):
    """Gaussian-process Bayesian optimisation (``optuna.samplers.GPSampler``, needs torch).

    Multi-objective: with several objectives it optimises all of them (LogEHVI).
    Parameters outside the space shared by every finished trial (conditional ones) are
    sampled at random, as Optuna does.

    Args:
        n_startup_trials: Random trials before the model is used.
        deterministic_objective: The objective has no noise (fits a noiseless GP).
    """

    multi_objective = True
    needs = ("torch", "scipy")

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, n_startup_trials: int = 10,
        deterministic_objective: bool = False,
    ) -> None:
        _positive(n_startup_trials=n_startup_trials, minimum=0)
        self.n_startup_trials = n_startup_trials
        self.deterministic_objective = deterministic_objective
        super().__init__(space, objectives, seed=seed)

    def suggest(self, number: int) -> dict[str, Any] | None:
        with one_torch_thread():
            return super().suggest(number)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return _optuna().samplers.GPSampler(
            seed=self.seed, n_startup_trials=self.n_startup_trials,
            deterministic_objective=self.deterministic_objective, warn_independent_sampling=False,
        )


class CmaEsSearcher(OptunaSearcher):
    """CMA-ES (``optuna.samplers.CmaEsSampler``, backend ``cmaes``): float and int parameters only.

    Single-objective: it optimises the primary objective.

    Args:
        n_startup_trials: Random trials before CMA-ES starts.
        sigma0: Initial step size (None: a sixth of the smallest range).
        popsize: Population size (None: CMA-ES's default for the dimension).
        restart_strategy: ``ipop`` or ``bipop`` to restart with a larger population on
            stagnation; None never restarts.
        with_margin: CMA-ES with margin, which keeps integer parameters from stalling.
        use_separable_cma: Diagonal covariance (faster in high dimension).
        lr_adapt: Adapt the learning rate (for noisy or multimodal objectives).
        consider_pruned_trials: Use early-stopped trials' partial values as results.
    """

    needs = ("cmaes",)

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, n_startup_trials: int = 1,
        sigma0: float | None = None, popsize: int | None = None, restart_strategy: str | None = None,
        with_margin: bool = False, use_separable_cma: bool = False, lr_adapt: bool = False,
        consider_pruned_trials: bool = False,
    ) -> None:
        check_cmaes_space(space)
        _positive(n_startup_trials=n_startup_trials, minimum=0)
        if popsize is not None:
            _positive(popsize=popsize, minimum=2)
        if sigma0 is not None and not sigma0 > 0:
            raise ValueError(f"sigma0 must be positive, got {sigma0!r}")
        if restart_strategy not in (None, "ipop", "bipop"):
            raise ValueError(f"restart_strategy must be ipop, bipop or null, got {restart_strategy!r}")
        if with_margin and use_separable_cma:
            raise ValueError("with_margin and use_separable_cma cannot be combined: choose one")
        self.n_startup_trials = n_startup_trials
        self.sigma0 = sigma0
        self.popsize = popsize
        self.restart_strategy = restart_strategy
        self.with_margin = with_margin
        self.use_separable_cma = use_separable_cma
        self.lr_adapt = lr_adapt
        self.consider_pruned_trials = consider_pruned_trials
        super().__init__(space, objectives, seed=seed)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return _optuna().samplers.CmaEsSampler(
            seed=self.seed, n_startup_trials=self.n_startup_trials, sigma0=self.sigma0, popsize=self.popsize,
            restart_strategy=self.restart_strategy, with_margin=self.with_margin,
            use_separable_cma=self.use_separable_cma, lr_adapt=self.lr_adapt,
            consider_pruned_trials=self.consider_pruned_trials, warn_independent_sampling=False,
        )


def check_cmaes_space(space: SearchSpace) -> None:
    """CMA-ES searches a continuous vector: refuse choices (Optuna would sample them at random)."""
    choices = [name for name, p in space.items() if isinstance(p, Choice)]
    if choices:
        raise ValueError(
            f"CMA-ES searches only float and int parameters, and {', '.join(map(repr, choices))} "
            f"{'is a choice' if len(choices) == 1 else 'are choices'} (conditions need choices too). "
            "Use tpe or gp for mixed spaces, or ng-cma (nevergrad encodes choices for CMA)."
        )


class NSGA2Searcher(OptunaSearcher):
    """NSGA-II genetic algorithm (``optuna.samplers.NSGAIISampler``); multi-objective.

    Args:
        population_size: Individuals per generation (the first generation is random).
        mutation_prob: Probability of mutating each parameter (None: 1 / number of parameters).
        crossover_prob: Probability of crossover when producing a child.
        swapping_prob: Probability of swapping each parameter between the parents.
    """

    multi_objective = True

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, population_size: int = 50,
        mutation_prob: float | None = None, crossover_prob: float = 0.9, swapping_prob: float = 0.5,
    ) -> None:
        _positive(population_size=population_size, minimum=2)
        _probabilities(mutation_prob=mutation_prob, crossover_prob=crossover_prob, swapping_prob=swapping_prob)
        self.population_size = population_size
        self.mutation_prob = mutation_prob
        self.crossover_prob = crossover_prob
        self.swapping_prob = swapping_prob
        super().__init__(space, objectives, seed=seed)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return _optuna().samplers.NSGAIISampler(
            seed=self.seed, population_size=self.population_size, mutation_prob=self.mutation_prob,
            crossover_prob=self.crossover_prob, swapping_prob=self.swapping_prob,
        )


class NSGA3Searcher(OptunaSearcher):
    """NSGA-III (``optuna.samplers.NSGAIIISampler``): NSGA-II with reference points, for many objectives.

    Args:
        population_size: Individuals per generation (the first generation is random).
        mutation_prob: Probability of mutating each parameter (None: 1 / number of parameters).
        crossover_prob: Probability of crossover when producing a child.
        swapping_prob: Probability of swapping each parameter between the parents.
        dividing_parameter: Divisions per objective axis of the reference points.
    """

    multi_objective = True

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, population_size: int = 50,
        mutation_prob: float | None = None, crossover_prob: float = 0.9, swapping_prob: float = 0.5,
        dividing_parameter: int = 3,
    ) -> None:
        _positive(population_size=population_size, minimum=2)
        _positive(dividing_parameter=dividing_parameter, minimum=1)
        _probabilities(mutation_prob=mutation_prob, crossover_prob=crossover_prob, swapping_prob=swapping_prob)
        self.population_size = population_size
        self.mutation_prob = mutation_prob
        self.crossover_prob = crossover_prob
        self.swapping_prob = swapping_prob
        self.dividing_parameter = dividing_parameter
        super().__init__(space, objectives, seed=seed)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return _optuna().samplers.NSGAIIISampler(
            seed=self.seed, population_size=self.population_size, mutation_prob=self.mutation_prob,
            crossover_prob=self.crossover_prob, swapping_prob=self.swapping_prob,
            dividing_parameter=self.dividing_parameter,
        )


class QMCSearcher(OptunaSearcher):
    """Quasi-Monte Carlo sampling (``optuna.samplers.QMCSampler``): low-discrepancy points, no model.

    Covers the space more evenly than random draws; it ignores results, so every
    objective is kept on the front. Conditional parameters are drawn at random.

    Args:
        qmc_type: ``sobol`` or ``halton``.
        scramble: Randomise the sequence with the seed (False: the same points for every seed).
    """

    multi_objective = True

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, qmc_type: str = "sobol",
        scramble: bool = True,
    ) -> None:
        if qmc_type not in ("sobol", "halton"):
            raise ValueError(f"qmc_type must be sobol or halton, got {qmc_type!r}")
        self.qmc_type = qmc_type
        self.scramble = scramble
        super().__init__(space, objectives, seed=seed)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        optuna = _optuna()
        return optuna.samplers.QMCSampler(
            qmc_type=self.qmc_type, scramble=self.scramble, seed=self.seed, warn_independent_sampling=False,
            warn_asynchronous_seeding=False,
            # Drawn for conditional parameters: seeded too, so a run is reproducible.
            independent_sampler=optuna.samplers.RandomSampler(seed=self.seed),
        )


# -- option checks --------------------------------------------------------------------------


def _positive(*, minimum: int, **values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _probabilities(**values: Any) -> None:
    for name, value in values.items():
        if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")

