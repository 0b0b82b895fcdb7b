"""The searcher conformance kit: reusable pytest checks every searcher plugin should pass.

A searcher is driven here exactly as the engine drives it (``suggest(number)`` for each
new trial, ``observe(TrialOutcome)`` when one ends, the object pickled with the run's
state), but in-process and without Ray, so the whole kit takes seconds per searcher.

What is checked (each a ``test_*`` method of :class:`SearcherConformance`):

* the registered :class:`~automl.interfaces.SearcherSpec` is well formed and its options
  are keyword arguments of the factory;
* ``check_space`` accepts the spaces the searcher claims to support and refuses the others
  with a :class:`ValueError`;
* every suggestion lies inside the space: exactly the active parameters, in range, on
  their steps, with plain Python types of the right kind (JSON-serialisable);
* conditional spaces are respected and more than one branch is visited;
* failed, early-stopped and incomplete outcomes are absorbed and the search goes on;
* a stopped outcome is not taken as a completed one: told the same value once as
  ``stopped`` and once as ``completed``, a searcher that learns from results continues
  differently (a partial-budget value is no final result);
* outcomes of trials it never suggested (a warm start, a resume) are accepted;
* several workers asking before any result get different configs (a searcher that hands
  every worker its one start point runs the same trial N times);
* several trials can be pending at once (suggested mid-search), and their suggestions differ;
* the same seed gives the same sequence for a sequential run (and another seed another);
* a pickle round trip mid-search (with pending trials) continues the same search;
* several objectives with mixed directions are accepted;
* a searcher that implements the optional ``observe_rung`` (intermediate results at a
  scheduler's rungs) absorbs rung results of its own trials, of trials it never suggested and
  of trials that end failed, keeps suggesting valid configs, continues the same search after a
  pickle round trip, and learns from them (told rung results, it continues differently than
  when told nothing at the rungs);
* on an easy bowl, the best results after a few dozen trials over several seeds beat random
  search with the same number of trials by a one-sided test at ``improve_alpha`` (1%): each
  seed's best is ranked among 2,001 random searches and the ranks' sum must be one random
  search would reach with probability below ``improve_alpha`` (the Irwin-Hall law). Random
  search itself fails it with the default seeds; deterministic (fixed seeds, no timing).
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from automl.plugin import (
    Choice,
    Float,
    Int,
    Objective,
    RungResult,
    Searcher,
    SearcherSpec,
    SearchSpace,
    TrialOutcome,
)

__all__ = [
    "BOOSTED_SIZE_SPACE",
    "BOWL_SPACE",
    "CONDITIONAL_SPACE",
    "MIXED_SPACE",
    "SearcherConformance",
    "bowl",
    "drive",
    "drive_rungs",
    "flat_accuracy_strengths",
    "random_best_median",
    "random_bests",
    "rank_sum_p_value",
]

#: Every parameter kind: linear, log, stepped and log-stepped floats; linear, log and
#: stepped ints; a choice over mixed scalar types; a one-value float. Grid values are given so that the grid
#: searcher can run the same checks (other searchers ignore them).
MIXED_SPACE = SearchSpace([
    Float("x", low=-5.0, high=5.0, grid=(-5.0, 0.0, 5.0)),
    Float("lr", low=1e-4, high=1.0, log=True, grid=(1e-4, 1e-2, 1.0)),
    Float("frac", low=0.0, high=1.0, step=0.25),
    Float("wd", low=1e-3, high=1.0, log=True, step=1e-3, grid=(1e-3, 0.1)),
    Int("units", low=1, high=256, log=True, grid=(1, 16, 256)),
    Int("k", low=0, high=20, step=4),
    Choice("act", values=("relu", "tanh", None, 3, False)),
    Float("fixed", low=2.0, high=2.0, grid=(2.0,)),  # one value: some libraries refuse an empty range
])

#: A tree: ``C`` under two models, ``depth`` under one, ``kernel`` under svm with ``degree``
#: under its poly branch, and ``gamma`` under two parents (``model`` and ``kernel``).
CONDITIONAL_SPACE = SearchSpace([
    Choice("model", values=("linear", "tree", "svm")),
    Float("C", low=1e-3, high=1e3, log=True, when={"model": ("linear", "svm")}, grid=(1e-3, 1.0, 1e3)),
    Int("depth", low=1, high=12, when={"model": ("tree",)}, grid=(1, 6, 12)),
    Choice("kernel", values=("rbf", "poly"), when={"model": ("svm",)}),
    Int("degree", low=2, high=5, when={"kernel": ("poly",)}),
    Float("gamma", low=1e-4, high=10.0, log=True, when={"model": ("svm",), "kernel": ("rbf",)}, grid=(1e-4, 1.0)),
    Float("tol", low=1e-5, high=1e-2, log=True, grid=(1e-5, 1e-2)),
])

#: Numeric only (CMA-ES and friends can search it): two floats and an int.
BOWL_SPACE = SearchSpace([
    Float("x", low=-5.0, high=5.0, grid=tuple(float(v) for v in np.linspace(-5, 5, 11))),
    Float("y", low=-5.0, high=5.0, grid=tuple(float(v) for v in np.linspace(-5, 5, 11))),
    Int("n", low=0, high=20),
])

_BOWL_CENTRE = (1.3, -2.1, 13.0)


def bowl(config: Mapping[str, Any]) -> float:
    """A smooth bowl over :data:`BOWL_SPACE` with its minimum 0 off-centre, at (1.3, -2.1, 13)."""
    cx, cy, cn = _BOWL_CENTRE
    return (config["x"] - cx) ** 2 + (config["y"] - cy) ** 2 + ((config["n"] - cn) / 4) ** 2


def random_bests(n_trials: int, *, repeats: int = 2001, seed: int = 12345) -> np.ndarray:
    """The best :func:`bowl` value of each of ``repeats`` random searches of ``n_trials`` draws, sorted.

    Drawn the way :class:`~automl.builtin.searchers.RandomSearcher` draws (uniform floats,
    uniform integers), vectorised so the reference costs milliseconds.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5.0, 5.0, size=(repeats, n_trials))
    y = rng.uniform(-5.0, 5.0, size=(repeats, n_trials))
    n = rng.integers(0, 21, size=(repeats, n_trials))
    cx, cy, cn = _BOWL_CENTRE
    values = (x - cx) ** 2 + (y - cy) ** 2 + ((n - cn) / 4) ** 2
    return np.sort(values.min(axis=1))


def random_best_median(n_trials: int, *, repeats: int = 2001, seed: int = 12345) -> float:
    """Median over ``repeats`` random searches of the best :func:`bowl` value in ``n_trials`` draws."""
    return float(np.median(random_bests(n_trials, repeats=repeats, seed=seed)))


def rank_sum_p_value(bests: Sequence[float], reference: np.ndarray) -> float:
    """How likely random search is to do as well as ``bests`` (one value per seed, smaller is better).

    Each best is ranked among the sorted ``reference`` (random searches of the same length):
    under random search a rank is uniform on (0, 1), so the sum of ``k`` ranks follows the
    Irwin-Hall law, whose distribution function at the observed sum is the p-value.
    """
    size = len(reference)
    ranks = [
        (np.searchsorted(reference, b, "left") + np.searchsorted(reference, b, "right") + 1) / (2 * size + 2)
        for b in bests
    ]
    total, k = float(sum(ranks)), len(ranks)
    return float(
        sum((-1) ** j * math.comb(k, j) * (total - j) ** k for j in range(int(math.floor(total)) + 1))
        / math.factorial(k)
    )


Evaluate = Callable[[Mapping[str, Any]], Mapping[str, float]]


def drive(
    searcher: Searcher, evaluate: Evaluate, n_trials: int, *, first: int = 0, max_budget: int = 1
) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """Run ``n_trials`` sequential trials (suggest, evaluate, observe) as the engine would.

    Args:
        searcher: The searcher under test.
        evaluate: ``evaluate(config) -> {metric: value}``; an exception makes the trial failed.
        n_trials: Trials to run (fewer when the searcher is exhausted).
        first: The first trial number.
        max_budget: Budget of a full trial (every trial here completes at full budget).

    Returns:
        ``(config, values)`` per trial that ran; values are empty for a failed trial.
    """
    history: list[tuple[dict[str, Any], dict[str, float]]] = []
    for number in range(first, first + n_trials):
        config = searcher.suggest(number)
        if config is None:
            break
        try:
            values = dict(evaluate(config))
        except Exception:
            searcher.observe(TrialOutcome(number, dict(config), "failed", {}, 0, max_budget))
            history.append((dict(config), {}))
            continue
        searcher.observe(TrialOutcome(number, dict(config), "completed", values, max_budget, max_budget))
        history.append((dict(config), values))
    return history


#: The size of a boosted model: trees and learning rate (see :func:`flat_accuracy_strengths`).
BOOSTED_SIZE_SPACE = SearchSpace([Int("n_estimators", low=4, high=1000, log=True),
                                  Float("learning_rate", low=0.01, high=1.0, log=True)])


def flat_accuracy_strengths(searcher: Searcher, *, log_loss: bool, trials: int) -> list[float]:
    """Drive ``searcher`` (over :data:`BOOSTED_SIZE_SPACE`, objective ``accuracy`` to maximise) on a table where
    every config predicts the majority class (accuracy 0.7, as a boosted model of a few trees does on a 70/30
    table) and, with ``log_loss``, the log loss falls as the model grows; the strengths (trees x learning rate)
    it proposed, in order. A searcher that ranks on :meth:`Searcher.primary_loss` (or tells its library
    :meth:`Objective.tie_broken`) grows the model only when told the log loss."""
    strengths = []
    for i in range(trials):
        config = searcher.suggest(i)
        assert config is not None
        strength = float(config["n_estimators"]) * float(config["learning_rate"])
        values = {"accuracy": 0.7} | ({"log_loss": 0.61 / (1 + 0.05 * strength)} if log_loss else {})
        searcher.observe(TrialOutcome(i, config, "completed", values, 1, 1, 0.1))
        strengths.append(strength)
    return strengths


def drive_rungs(
    searcher: Searcher, evaluate: Evaluate, n_trials: int, *, first: int = 0, rungs: Sequence[int] = (1, 3),
    max_budget: int = 9, final_values: bool = True,
) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """Run ``n_trials`` sequential trials as the engine does under a rung scheduler (ASHA's stopping type).

    Each trial is told at each rung (``observe_rung``, values ``evaluate(config)`` worsened by ``1 / rung``:
    longer training helps); one trial in three completes at ``max_budget``, the others are stopped at a
    rung (every other one at the first). ``final_values``: False tells the stopped outcomes without values,
    so that only the rung calls carry the results. Returns ``(config, values at its last budget)``.
    """
    history: list[tuple[dict[str, Any], dict[str, float]]] = []
    for number in range(first, first + n_trials):
        config = searcher.suggest(number)
        if config is None:
            break
        base = dict(evaluate(config))
        completes = number % 3 == 2
        reached = list(rungs) if completes or number % 2 else list(rungs)[:1]
        values: dict[str, float] = {}
        for rung in reached:
            values = {k: v * (1 + 1 / rung) if v >= 0 else v * (1 - 1 / rung) for k, v in base.items()}
            searcher.observe_rung(RungResult(number, dict(config), rung, values, max_budget))
        if completes:
            searcher.observe(TrialOutcome(number, dict(config), "completed", base, max_budget, max_budget))
            history.append((dict(config), base))
        else:
            told = values if final_values else {}
            searcher.observe(TrialOutcome(number, dict(config), "stopped", told, reached[-1], max_budget))
            history.append((dict(config), values))
    return history


def _loss_on(space: SearchSpace) -> Evaluate:
    """A deterministic objective over any space: each value hashed to a number in [0, 1)."""

    def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
        total = 0.0
        for name in space:
            if name in config:
                value = config[name]
                p = space[name]
                if isinstance(p, (Float, Int)):
                    total += p.to_unit(value)
                else:
                    assert isinstance(p, Choice)
                    total += p.values.index(value) / max(len(p.values), 1)
        return {"loss": (total * 0.6180339887) % 1.0, "score": math.sin(total)}

    return evaluate


def _on_step(param: Float | Int, value: float) -> bool:
    step = param.step
    if not step or value in (param.low, param.high):
        return True
    k = (value - param.low) / step
    return abs(k - round(k)) < 1e-6


def assert_in_space(space: SearchSpace, config: Mapping[str, Any]) -> None:
    """Fail unless ``config`` is a valid point of ``space`` with plain Python values of the right kind."""
    active = space.active(config)
    assert set(config) == set(active), (
        f"config has parameters {sorted(config)} but the active ones are {sorted(active)}: {config}"
    )
    for name in active:
        p, value = space[name], config[name]
        assert p.contains(value), f"{name}={value!r} is outside {p}"
        if isinstance(p, Int):
            assert type(value) is int, f"{name}={value!r} is a {type(value).__name__}, expected a Python int"
            assert _on_step(p, value), f"{name}={value!r} is not on step {p.step} from {p.low}"
        elif isinstance(p, Float):
            assert type(value) is float, f"{name}={value!r} is a {type(value).__name__}, expected a Python float"
            assert _on_step(p, value), f"{name}={value!r} is not on step {p.step} from {p.low}"
        else:
            # The exact value of the spec (3 is not 3.0, False is not 0).
            same = [v for v in p.values if v == value and type(v) is type(value)]
            assert same, f"{name}={value!r} ({type(value).__name__}) is not one of {p.values}"
    json.dumps(dict(config))  # the store records configs as JSON


class SearcherConformance:
    """Checks any searcher must pass; subclass it in a ``Test*`` class and set :attr:`searcher`.

    Attributes:
        searcher: The registered name (looked up through the plugin manager).
        options: Spec options passed to the factory in every check (keep budgets small).
        supports_choices: The searcher can search choice parameters; False: its
            ``check_space`` must refuse them.
        supports_conditions: The searcher can search conditional spaces; False: its
            ``check_space`` must refuse them.
        seeded: Different seeds give different suggestions.
        exact_resume: A pickled and restored searcher suggests exactly what the original
            would have; False: it only has to go on suggesting valid configs.
        improves: The searcher is expected to beat random search on the bowl.
        n_improve: Trials per run of the bowl check.
        improve_seeds: Seeds of the bowl check (one run each); their bests together must beat
            random search at ``improve_alpha``. More seeds give the test more power.
        improve_alpha: The chance random search has of passing the bowl check (1%).
        stopped_as_final: True only for a searcher documented to take a stopped trial's
            partial value as its result (FLAML, as under its own schedulers); the check that
            a stopped outcome is not a completed one is then skipped with that reason.
        n_workers: Suggestions asked before any result (workers starting at once).
        n_trials: Trials of the other sequential checks.
    """

    searcher: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}
    supports_choices: ClassVar[bool] = True
    supports_conditions: ClassVar[bool] = True
    seeded: ClassVar[bool] = True
    exact_resume: ClassVar[bool] = True
    improves: ClassVar[bool] = True
    n_improve: ClassVar[int] = 40
    improve_seeds: ClassVar[tuple[int, ...]] = (0, 1, 2, 3, 4)
    improve_alpha: ClassVar[float] = 0.01
    stopped_as_final: ClassVar[bool] = False
    n_workers: ClassVar[int] = 4
    n_trials: ClassVar[int] = 20

    # -- helpers subclasses may override ------------------------------------------------

    def spec(self) -> SearcherSpec:
        """The registered record (override to test a spec that is not installed)."""
        from automl.plugin import get_plugin_manager

        assert self.searcher, f"{type(self).__name__} must set `searcher` to a registered name"
        record: SearcherSpec = get_plugin_manager().searchers.get(self.searcher)
        return record

    def make(self, space: SearchSpace, objectives: Sequence[Objective] | None = None, seed: int = 0) -> Searcher:
        """A fresh searcher, built the way :class:`~automl.plan.Plan` builds one."""
        objectives = list(objectives) if objectives else [Objective("loss", "min")]
        return self.spec().factory(space, objectives, seed=seed, **self.options)

    def _space_or_skip(self, space: SearchSpace, *, choices: bool, conditions: bool) -> SearchSpace:
        if (choices and not self.supports_choices) or (conditions and not self.supports_conditions):
            pytest.skip(f"{self.searcher} does not search this kind of space (its check_space refuses it)")
        return space

    # -- the checks -----------------------------------------------------------------------

    def test_spec_is_well_formed(self) -> None:
        spec = self.spec()
        assert spec.name == self.searcher
        assert spec.description, "give the SearcherSpec a one-line description for `automl plugins`"
        names = spec.option_names()
        assert not {"space", "objectives", "seed"} & set(names)
        unknown = sorted(set(self.options) - set(names))
        assert not unknown, f"options {unknown} are not keyword arguments of the factory ({names})"
        searcher = self.make(BOWL_SPACE)
        assert isinstance(searcher, Searcher)

    def test_check_space(self) -> None:
        check = self.spec().check_space or (lambda space: None)
        check(BOWL_SPACE)  # numeric spaces: every searcher
        for space, supported, what in (
            (MIXED_SPACE, self.supports_choices, "choice parameters"),
            (CONDITIONAL_SPACE, self.supports_conditions and self.supports_choices, "conditional parameters"),
        ):
            if supported:
                check(space)
            else:
                with pytest.raises(ValueError) as info:
                    check(space)
                assert str(info.value), f"check_space must say why it refuses {what}"

    def test_suggestions_inside_space(self) -> None:
        space = self._space_or_skip(MIXED_SPACE, choices=True, conditions=False)
        history = drive(self.make(space), _loss_on(space), self.n_trials)
        assert history, "the searcher suggested nothing"
        for config, _ in history:
            assert_in_space(space, config)

    def test_numeric_suggestions_inside_space(self) -> None:
        history = drive(self.make(BOWL_SPACE), lambda c: {"loss": bowl(c)}, self.n_trials)
        assert history
        for config, _ in history:
            assert_in_space(BOWL_SPACE, config)

    def test_conditional_space(self) -> None:
        space = self._space_or_skip(CONDITIONAL_SPACE, choices=True, conditions=True)
        history = drive(self.make(space), _loss_on(space), self.n_trials)
        for config, _ in history:
            assert_in_space(space, config)
        shapes = {frozenset(config) for config, _ in history}
        assert len(shapes) >= 2, f"only one branch of the conditional space was visited: {sorted(shapes.pop())}"

    def test_failed_stopped_and_incomplete_outcomes(self) -> None:
        space = BOWL_SPACE
        searcher = self.make(space)
        for number in range(self.n_trials):
            config = searcher.suggest(number)
            if config is None:
                break
            assert_in_space(space, config)
            loss = bowl(config)
            kind = number % 4
            if kind == 0:
                outcome = TrialOutcome(number, config, "failed", {}, 0, 9)
            elif kind == 1:  # stopped by the scheduler after 3 of 9 budget steps
                outcome = TrialOutcome(number, config, "stopped", {"loss": loss * 2}, 3, 9)
            elif kind == 2:  # completed but the objective is missing
                outcome = TrialOutcome(number, config, "completed", {"other": 1.0}, 9, 9)
            else:
                outcome = TrialOutcome(number, config, "completed", {"loss": loss}, 9, 9)
            searcher.observe(outcome)

    def test_stopped_outcome_is_not_a_completed_one(self) -> None:
        # Three searchers with the same seed and history are told one more trial with a value
        # better than any so far: as completed, as stopped after 1 of 9 budget steps, and as
        # failed. One that learns from it (completed differs from failed) must not continue
        # after the stopped outcome exactly as after the completed one: the scheduler stopped
        # that trial, and its value at one step is not its result.
        if self.stopped_as_final:
            pytest.skip(f"{self.searcher} takes a stopped trial's partial value as its result (documented)")
        space, max_budget = BOWL_SPACE, 9

        def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
            return {"loss": bowl(config)}

        def continued(status: str) -> list[dict[str, Any]] | None:
            searcher = self.make(space, seed=11)
            n = len(drive(searcher, evaluate, self.n_trials, max_budget=max_budget))
            config = searcher.suggest(n)
            if config is None:
                return None
            values = {} if status == "failed" else {"loss": -1.0}
            budget = {"completed": max_budget, "stopped": 1, "failed": 0}[status]
            searcher.observe(TrialOutcome(n, config, status, values, budget, max_budget))  # type: ignore[arg-type]
            return [c for c, _ in drive(searcher, evaluate, 3, first=n + 1, max_budget=max_budget)]

        completed, stopped, failed = continued("completed"), continued("stopped"), continued("failed")
        if completed is None or completed == failed:
            return  # one more result changes nothing it suggests (random, grid, a waiting generation)
        assert stopped != completed, (
            "told a trial stopped after 1 of 9 budget steps, the searcher continued exactly as when told the same "
            "value as a completed trial: it takes a partial-budget value as a final result (tell its library the "
            "trial was pruned, or ignore its value)"
        )

    def test_outcomes_of_trials_it_did_not_suggest(self) -> None:
        # A warm start tells another run's trials (negative numbers); a resume may tell a
        # trial suggested after the last saved state. Learn from them or ignore them, and
        # go on suggesting valid configs.
        spaces = [BOWL_SPACE]
        if self.supports_choices:
            spaces.append(MIXED_SPACE)
        if self.supports_choices and self.supports_conditions:
            spaces.append(CONDITIONAL_SPACE)
        for space in spaces:
            evaluate = _loss_on(space)
            rng = np.random.default_rng(5)
            searcher = self.make(space)
            kinds = ["completed"] * 4 + ["stopped", "failed", "completed"]
            for i, status in enumerate(kinds):
                config = space.sample(rng)
                values = {} if status == "failed" else dict(evaluate(config))
                budget = 3 if status == "completed" else 1
                searcher.observe(TrialOutcome(-1 - i, config, status, values, budget, 3))  # type: ignore[arg-type]
            history = drive(searcher, evaluate, max(self.n_trials // 2, 2))
            assert history
            for config, _ in history:
                assert_in_space(space, config)
            config = space.sample(rng)
            searcher.observe(TrialOutcome(10_000, config, "completed", dict(evaluate(config)), 1, 1))
            assert_in_space(space, searcher.suggest(len(history)) or history[0][0])

    def test_completed_after_pause(self) -> None:
        # Under a promotion-type scheduler a trial paused at a rung is told stopped there and, when it is promoted
        # and completes later, told again under the same number as completed: learn from it or ignore it, never
        # raise, and go on suggesting valid configs.
        space, max_budget = BOWL_SPACE, 9
        searcher = self.make(space)
        paused = []
        for number in range(4):
            config = searcher.suggest(number)
            if config is None:
                break
            searcher.observe(TrialOutcome(number, config, "stopped", {"loss": 2 * bowl(config)}, 1, max_budget))
            paused.append((number, config))
        for number, config in paused:
            searcher.observe(TrialOutcome(number, config, "completed", {"loss": bowl(config)}, max_budget, max_budget))
        history = drive(searcher, lambda c: {"loss": bowl(c)}, 3, first=len(paused), max_budget=max_budget)
        for config, _ in history:
            assert_in_space(space, config)

    def test_workers_starting_together_get_different_configs(self) -> None:
        # The engine asks one suggestion per free worker before any result arrives.
        searcher = self.make(BOWL_SPACE)
        configs = []
        for number in range(self.n_workers):
            config = searcher.suggest(number)
            if config is None:
                break
            assert_in_space(BOWL_SPACE, config)
            configs.append(config)
        assert configs, "the searcher suggested nothing before any result"
        distinct = {tuple(sorted(c.items())) for c in configs}
        assert len(distinct) == len(configs), (
            f"{len(configs)} workers asking before any result got {len(distinct)} distinct config(s): {configs}"
        )

    def test_pending_trials(self) -> None:
        space = BOWL_SPACE
        searcher = self.make(space)
        warm = drive(searcher, lambda c: {"loss": bowl(c)}, max(self.n_trials // 2, 2))
        first = len(warm)
        pending: list[tuple[int, dict[str, Any]]] = []
        for number in range(first, first + 6):
            config = searcher.suggest(number)
            if config is None:
                break
            assert_in_space(space, config)
            pending.append((number, config))
        if len(pending) > 1:
            distinct = {tuple(sorted(c.items())) for _, c in pending}
            assert len(distinct) == len(pending), f"concurrent suggestions repeat each other: {pending}"
        for i, (number, config) in enumerate(reversed(pending)):  # results arrive out of order
            status = "failed" if i == 1 else "completed"
            values = {"loss": bowl(config)} if status == "completed" else {}
            searcher.observe(TrialOutcome(number, config, status, values, 1, 1))  # type: ignore[arg-type]
        for config, _ in drive(searcher, lambda c: {"loss": bowl(c)}, 5, first=first + len(pending)):
            assert_in_space(space, config)

    def test_reproducible_with_seed(self) -> None:
        space = MIXED_SPACE if self.supports_choices else BOWL_SPACE
        evaluate = _loss_on(space)
        a = [c for c, _ in drive(self.make(space, seed=7), evaluate, self.n_trials)]
        b = [c for c, _ in drive(self.make(space, seed=7), evaluate, self.n_trials)]
        assert a == b, "the same seed gave different suggestions"
        if self.seeded:
            c = [c for c, _ in drive(self.make(space, seed=8), evaluate, self.n_trials)]
            assert a != c, "another seed gave the same suggestions: is the seed passed on?"

    def test_pickle_resume(self) -> None:
        space = BOWL_SPACE

        def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
            return {"loss": bowl(config)}

        original = self.make(space, seed=3)
        n = len(drive(original, evaluate, max(self.n_trials // 2, 2)))
        pending = [(number, original.suggest(number)) for number in (n, n + 1)]
        restored = pickle.loads(pickle.dumps(original))
        assert type(restored) is type(original)
        runs = []
        for searcher in (original, restored):
            for number, config in pending:
                if config is not None:
                    searcher.observe(TrialOutcome(number, config, "completed", evaluate(config), 1, 1))
            runs.append([c for c, _ in drive(searcher, evaluate, max(self.n_trials // 2, 2), first=n + 2)])
        for config in runs[1]:
            assert_in_space(space, config)
        if self.exact_resume:
            assert runs[0] == runs[1], "after a pickle round trip the searcher continued differently"

    def test_multi_objective(self) -> None:
        objectives = [Objective("loss", "min"), Objective("score", "max")]
        space = BOWL_SPACE

        def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
            return {"loss": bowl(config), "score": float(config["x"])}

        history = drive(self.make(space, objectives), evaluate, self.n_trials)
        assert history
        for config, _ in history:
            assert_in_space(space, config)

    def test_rung_results(self) -> None:
        # Only for a searcher that implements the optional observe_rung (the driver tells no other).
        probe = self.make(BOWL_SPACE)
        if not probe.observes_rungs:
            pytest.skip(f"{self.searcher} does not implement observe_rung (optional)")

        def evaluate(config: Mapping[str, Any]) -> dict[str, float]:
            return {"loss": bowl(config)}

        for space in [BOWL_SPACE] + ([CONDITIONAL_SPACE] if self.supports_choices and self.supports_conditions else []):
            searcher = self.make(space)
            rng = np.random.default_rng(3)
            for i in range(3):  # rung results of trials it never suggested (start points, re-issued trials)
                foreign = space.sample(rng)
                searcher.observe_rung(RungResult(-1 - i, foreign, 1, dict(_loss_on(space)(foreign)), 9))
            history = drive_rungs(searcher, _loss_on(space), self.n_trials)
            assert history, "the searcher suggested nothing"
            for config, _ in history:
                assert_in_space(space, config)
            failing = searcher.suggest(len(history))
            if failing is not None:  # a rung result, then the trial fails
                searcher.observe_rung(RungResult(len(history), failing, 1, {"loss": 0.5}, 9))
                searcher.observe(TrialOutcome(len(history), failing, "failed", {}, 1, 9))
            for config, _ in drive_rungs(searcher, _loss_on(space), 3, first=len(history) + 1):
                assert_in_space(space, config)
        # Exact resume with rung results recorded and a trial pending between two rungs.
        original = self.make(BOWL_SPACE, seed=3)
        n = len(drive_rungs(original, evaluate, self.n_trials))
        pending = original.suggest(n)
        assert pending is not None
        config = dict(pending)
        original.observe_rung(RungResult(n, config, 1, evaluate(config), 9))
        restored = pickle.loads(pickle.dumps(original))
        runs = []
        for searcher in (original, restored):
            searcher.observe_rung(RungResult(n, config, 3, evaluate(config), 9))
            searcher.observe(TrialOutcome(n, config, "stopped", evaluate(config), 3, 9))
            runs.append([c for c, _ in drive_rungs(searcher, evaluate, 5, first=n + 1)])
        if self.exact_resume:
            assert runs[0] == runs[1], "after a pickle round trip the searcher continued differently"
        # It learns from rung results: the same trials told only their rung results (their stopped outcomes carry
        # no values) against told nothing at the rungs.
        told = [c for c, _ in drive_rungs(self.make(BOWL_SPACE, seed=5), evaluate, self.n_trials, final_values=False)]
        blind = self.make(BOWL_SPACE, seed=5)
        blind.observe_rung = lambda result: None  # type: ignore[method-assign]
        untold = [c for c, _ in drive_rungs(blind, evaluate, self.n_trials, final_values=False)]
        assert told != untold, "told every trial's rung results, the searcher continued as when told none of them"

    def test_improves_over_random(self) -> None:
        if not self.improves:
            pytest.skip(f"{self.searcher} is not expected to beat random search")
        # Maximised on purpose: a searcher that ignores the objective's direction fails.
        objectives = [Objective("score", "max")]
        bests = []
        for seed in self.improve_seeds:
            history = drive(
                self.make(BOWL_SPACE, objectives, seed=seed), lambda c: {"score": -bowl(c)}, self.n_improve
            )
            scored = [-v["score"] for _, v in history if "score" in v]
            assert scored, f"seed {seed}: no trial of the bowl check returned a result"
            bests.append(min(scored))
        reference = random_bests(self.n_improve)
        p = rank_sum_p_value(bests, reference)
        assert p < self.improve_alpha, (
            f"best bowl values {[round(b, 4) for b in bests]} after {self.n_improve} trials (seeds "
            f"{list(self.improve_seeds)}) do not beat random search (median best {float(np.median(reference)):.4f}): "
            f"random search does as well with probability {p:.3f} >= {self.improve_alpha} (give the check more "
            f"seeds or trials, or set improves = False)"
        )
