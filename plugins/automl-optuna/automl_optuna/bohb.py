"""BOHB-style model-based multi-fidelity search with Optuna's TPE (Falkner et al. 2018).

One Optuna study per budget (rung) holds the configurations seen at that budget with their
results there; each new configuration is proposed by ``TPESampler`` (``GPSampler`` with
``model="gp"``) on the study of the highest budget that has at least ``min_points`` results
(a fraction ``random_fraction`` of proposals, and all of them before any budget has enough
points, is drawn at random, as in BOHB). The studies are filled from every rung (:meth:`Searcher.observe_rung`, which the
engine's driver calls under ``asha``, ``hyperband`` or ``moasha``) and from completed trials
(at the full budget), so the model learns from the many cheap low-rung results long before
full-budget ones exist, and moves to the higher budgets as they fill.

Why several studies driven by ask/tell rather than Optuna's own ``HyperbandPruner``: the
engine's scheduler (ours, fed by Ray Tune) decides which trials stop; the pruner would decide
inside one study, and a TPE fitted on pruned trials ranks them by their last step, mixing
budgets. BOHB's rule (model the highest budget with enough points) needs the results kept
apart by budget, which a study per budget gives with Optuna's public API only
(``ask``, ``tell``, ``add_trial``, ``create_trial``).

With several objectives (MO-ASHA), every study is multi-objective and TPE is Optuna's MOTPE;
a rung result missing one of the objectives (one measured only at the end) is not recorded.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from automl.plugin import Objective, RungResult, SearchSpace, TrialOutcome
from automl_optuna.searchers import (
    OptunaSearcher,
    _distribution,
    _optuna,
    _positive,
    _quiet,
    _sample,
    one_torch_thread,
    require,
)

if TYPE_CHECKING:
    import optuna

__all__ = ["BOHBSearcher"]

#: The models a budget's study may use.
MODELS: tuple[str, ...] = ("tpe", "gp")

#: The proposal source of a configuration drawn at random (not from a budget's model).
_RANDOM = -1


class BOHBSearcher(OptunaSearcher):
    """Model-based multi-fidelity search: TPE on the highest budget with enough results (BOHB).

    Use it with a rung scheduler (``scheduler: {name: hyperband}`` as in BOHB, or ``asha`` /
    ``moasha``); under ``fifo`` it learns from full-budget results only and is TPE with a random
    fraction. Multi-objective: with several objectives it optimises all of them (MOTPE per budget).

    Args:
        min_points: Results a budget needs before its model proposes (None: the number of
            parameters plus one, BOHB's rule, but at least 10, Optuna TPE's random start: with
            fewer, TPE's good set is one or two points and the search collapses onto them; measured
            on S2, benchmarks/README.md).
        random_fraction: Share of proposals drawn at random once a model exists (BOHB: 1/3),
            which keeps exploring regions a low-budget model misjudges.
        n_ei_candidates: Candidates TPE scores per proposal.
        multivariate: Model the parameters jointly (BOHB's multivariate KDE); False: one by one.
        constant_liar: Treat configurations still running at a budget as bad there, so
            concurrent proposals spread out.
        model: The model of each budget: ``tpe`` (BOHB's, Optuna's ``TPESampler``) or ``gp`` (a Gaussian
            process per budget, Optuna's ``GPSampler``, needs torch and scipy; ``n_ei_candidates``,
            ``multivariate`` and ``constant_liar`` are TPE's and do not apply to it).
    """

    multi_objective = True
    #: The class default for a searcher pickled before the option existed (its studies are TPE's).
    model: str = "tpe"

    def __init__(
        self, space: SearchSpace, objectives: Sequence[Objective], *, seed: int = 0, min_points: int | None = None,
        random_fraction: float = 1 / 3, n_ei_candidates: int = 24, multivariate: bool = True,
        constant_liar: bool = True, model: str = "tpe",
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
        if min_points is not None:
            _positive(min_points=min_points, minimum=1)
        _positive(n_ei_candidates=n_ei_candidates, minimum=1)
        if not (isinstance(random_fraction, (int, float)) and 0.0 <= random_fraction <= 1.0):
            raise ValueError(f"random_fraction must be a probability in [0, 1], got {random_fraction!r}")
        self.min_points = min_points if min_points is not None else max(10, len(list(space.items())) + 1)
        self.random_fraction = float(random_fraction)
        self.n_ei_candidates = n_ei_candidates
        self.multivariate = multivariate
        self.constant_liar = constant_liar
        self.model = model
        if model == "gp":
            require("torch", "scipy")
        #: budget -> the study of the results seen at that budget.
        self._models: dict[int, optuna.Study] = {}
        #: budget -> how many results its study holds (complete trials).
        self._counts: dict[int, int] = {}
        #: (trial number, budget) pairs recorded already: each result is recorded once.
        self._recorded: set[tuple[int, int]] = set()
        #: trial number -> the budget whose model proposed it (``_RANDOM``: drawn at random).
        self._source: dict[int, int] = {}
        self._coin = random.Random(seed)
        super().__init__(space, objectives, seed=seed)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        # The base study: where random proposals are drawn (and told), seeded.
        return _optuna().samplers.RandomSampler(seed=self.seed)

    def _model(self, budget: int) -> optuna.Study:
        if budget not in self._models:
            seed = (self.seed * 1_000_003 + budget) % 2**32
            with _quiet():
                sampler = _optuna().samplers.GPSampler(
                    seed=seed, n_startup_trials=0, warn_independent_sampling=False,
                ) if self.model == "gp" else _optuna().samplers.TPESampler(
                    seed=seed, n_startup_trials=0,
                    n_ei_candidates=self.n_ei_candidates, multivariate=self.multivariate, group=self.multivariate,
                    constant_liar=self.constant_liar,
                )
                self._models[budget] = self._new_study(sampler)
            self._counts[budget] = 0
        return self._models[budget]

    def model_budget(self) -> int | None:
        """The budget whose model proposes now: the highest with at least ``min_points`` results, or None."""
        ready = [b for b, n in self._counts.items() if n >= self.min_points]
        return max(ready, default=None)

    # -- ask ------------------------------------------------------------------------------------

    def suggest(self, number: int) -> dict[str, Any] | None:
        budget = self.model_budget()
        # Drawn even without a model, so the proposals after one exists do not depend on when it appeared.
        explore = self._coin.random() < self.random_fraction
        source = _RANDOM if budget is None or explore else budget
        study = self._study if source == _RANDOM else self._models[source]
        with _quiet(), one_torch_thread() if source != _RANDOM and self.model == "gp" else contextlib.nullcontext():
            trial = study.ask()
            config: dict[str, Any] = {}
            for name, param in self.space.items():
                if param.is_active(config):
                    config[name] = _sample(trial, name, param)
        self._live[number] = trial
        self._source[number] = source
        return config

    # -- tell -----------------------------------------------------------------------------------

    def observe_rung(self, result: RungResult) -> None:
        values = self._losses_of(result.values)
        if values is not None:
            self._record(result.number, result.config, int(result.budget), values)

    def observe(self, outcome: TrialOutcome) -> None:
        values = self._losses_of(outcome.values) if outcome.status != "failed" else None
        if values is not None and outcome.status == "completed":
            self._record(outcome.number, outcome.config, int(outcome.max_budget), values)
        elif values is not None and outcome.status == "stopped" and outcome.budget > 0:
            # Its rung result when the driver did not tell it (a warm start, a driver without rungs): a result at
            # the budget it reached, never a full-budget one.
            self._record(outcome.number, outcome.config, int(outcome.budget), values)
        trial = self._live.pop(outcome.number, None)
        self._source.pop(outcome.number, None)
        if trial is not None:
            # Proposed but never recorded at its proposing budget (stopped below it, failed, or drawn at random):
            # no result there. FAIL keeps it out of that budget's model.
            with _quiet():
                trial.study.tell(trial, state=_optuna().trial.TrialState.FAIL)

    def _losses_of(self, values: Mapping[str, float]) -> list[float] | None:
        outcome = TrialOutcome(0, {}, "completed", values)
        if self._n_values > 1:
            return self.losses(outcome)
        loss = self.primary_loss(outcome)
        return None if loss is None else [loss]

    def _record(self, number: int, config: Mapping[str, Any], budget: int, values: list[float]) -> None:
        """Add one result at ``budget``: told to the trial that budget's model proposed, else added."""
        if (number, budget) in self._recorded or budget < 1:
            return
        study = self._model(budget)
        trial = self._live.get(number)
        with _quiet():
            if trial is not None and self._source.get(number) == budget:
                study.tell(trial, values)
                del self._live[number]
                self._source.pop(number, None)
            else:
                if not self.space.contains(dict(config)):
                    return
                params = {name: config[name] for name in self.space.active(dict(config))}
                distributions = {name: _distribution(self.space[name]) for name in params}
                optuna = _optuna()
                try:
                    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                              values=values))
                except ValueError:
                    return  # a value Optuna refuses for this distribution: nothing to learn from
        self._recorded.add((number, budget))
        self._counts[budget] += 1
