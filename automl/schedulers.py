"""Trial schedulers: asynchronous successive halving for one objective (ASHA) and several
(MO-ASHA), HyperBand (several ASHA brackets, or synchronous brackets over blocks of trials:
:class:`SynchronousHyperBand`) and Population Based Training
(:class:`PopulationBasedTraining`, on the same pause and re-issue), presented to Ray Tune as
``TrialScheduler`` objects.

Why our own rung bookkeeping rather than Ray's ``AsyncHyperBandScheduler``: MO-ASHA needs the
same rungs with a multi-objective ranking, a resumed search must rebuild the rungs from the
store (Ray's scheduler keys its rungs by Tune trial ids of the killed process), and Ray has no
promotion-type ASHA. Two types, as in Syne Tune's ``HyperbandScheduler``:

- ``stopping`` (Ray's ASHA): a trial reaching a rung goes on unless it is below the
  ``1 - 1/rf`` percentile of the results recorded there so far; a test checks the decisions
  against Ray's scheduler. Generous while rungs are nearly empty: the first trial at a rung
  always goes on.
- ``promotion`` (Li et al. 2020, Algorithm 2): a trial reaching a rung goes on only when it is
  among the top ``floor(n/rf)`` of the ``n`` recorded there and not promoted yet; otherwise it
  is *paused*: Tune stops it, its checkpoint stays, and it is re-issued (the engine's searcher
  adapter asks :meth:`RungScheduler.next_promotion` before drawing a new configuration) once
  enough later trials rank below it. Pausing through Tune's own ``PAUSE`` would keep every paused
  trial counted against ``max_concurrent_trials``; a stop plus a re-issue of the same trial
  number, restarted from its checkpoint by the engine, keeps Tune's view plain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from automl.interfaces import Objective
from automl.pareto import crowding_distance, non_dominated_sort
from automl.records import estimate_key
from automl.space import Choice, Float, SearchSpace

__all__ = ["ASHA_TYPES", "HYPERBAND_TYPES", "Exploit", "HyperBand", "PopulationBasedTraining", "RungScheduler",
           "SynchronousHyperBand", "rung_milestones"]

NUMBER = "_automl_number"
FINAL = "_automl_final"
ERROR = "_automl_error"
AshaType = Literal["stopping", "promotion"]
ASHA_TYPES: tuple[str, ...] = ("stopping", "promotion")
#: HyperBand also runs synchronously (:class:`SynchronousHyperBand`).
HyperBandType = Literal["stopping", "promotion", "synchronous"]
HYPERBAND_TYPES: tuple[str, ...] = (*ASHA_TYPES, "synchronous")


def rung_milestones(grace_period: int, reduction_factor: float, max_budget: int) -> list[int]:
    """Budgets at which trials are compared: grace * rf^k below ``max_budget``, ascending."""
    out: list[int] = []
    k = 0
    while True:
        m = int(round(grace_period * reduction_factor**k))
        if m >= max_budget:
            return out
        if not out or m > out[-1]:
            out.append(m)
        k += 1


class RungScheduler(FIFOScheduler):
    """ASHA / MO-ASHA: successive halving at rungs ``grace * rf^k``, stopping or promotion type.

    Args:
        objectives: What to compare; one objective gives ASHA, several give MO-ASHA
            (ranked by non-dominated sorting, ties broken by crowding distance, as in
            Schmucker et al. 2021's NSGA-II variant).
        max_budget: Budget steps of a full trial.
        grace_period: First rung: no trial is stopped before this many steps.
        reduction_factor: Keep about one trial in ``reduction_factor`` at each rung.
        budget_attr: The result key holding the budget reached.
        type: ``stopping`` (decide once, on arrival at a rung) or ``promotion`` (pause at a
            rung until promotable; see the module's docstring).
        max_paused: Promotion type: the most paused trials kept resumable (each keeps a
            checkpoint). Beyond it, the paused trial least likely to be promoted (the lowest
            rank quantile at its rung) is stopped for good (:meth:`take_dropped`).
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        max_budget: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        budget_attr: str = "budget",
        type: AshaType = "stopping",  # noqa: A002 - Syne Tune's name for the same choice
        max_paused: int = 64,
    ) -> None:
        super().__init__()
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be above 1, got {reduction_factor}")
        if not 1 <= grace_period <= max_budget:
            raise ValueError(f"grace_period must be between 1 and the trainer's {max_budget} budget steps, got {grace_period}")
        if type not in ASHA_TYPES:
            raise ValueError(f"type must be one of {', '.join(ASHA_TYPES)}, got {type!r}")
        if max_paused < 1:
            raise ValueError(f"max_paused must be at least 1, got {max_paused}")
        self.objectives = list(objectives)
        self.max_budget = max_budget
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.budget_attr = budget_attr
        self.type = type
        self.max_paused = max_paused
        self.milestones = rung_milestones(grace_period, reduction_factor, max_budget)
        #: milestone -> {trial number: objective vector in minimisation form}
        self.recorded: dict[int, dict[int, list[float]]] = {m: {} for m in self.milestones}
        self.stopped: set[int] = set()
        #: Promotion type: milestone -> trials that went on from it (promoted).
        self.promoted: dict[int, set[int]] = {m: set() for m in self.milestones}
        #: Promotion type: paused trial number -> the milestone it waits at.
        self.paused: dict[int, int] = {}
        self._dropped: list[int] = []
        self._order: dict[int, list[int]] = {}

    @property
    def promotes(self) -> bool:
        """True for the promotion type: stopped trials may be re-issued (see :meth:`next_promotion`)."""
        return self.type == "promotion"

    @property
    def metric(self) -> str | None:
        # None: Tune must not insist that every result carries one metric (ours are checked here).
        return None

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    def _vector(self, values: Mapping[str, Any]) -> list[float] | None:
        out = []
        for o in self.objectives:
            v = values.get(o.metric)
            if v is None:  # latency / size at a rung: the worker's estimate, under its own name
                v = values.get(estimate_key(o.metric))
            if v is None or isinstance(v, bool) or not math.isfinite(float(v)):
                return None
            out.append(o.to_min(float(v)))
        return out

    def decide(self, number: int, budget: int, values: Mapping[str, Any]) -> str:
        """Record trial ``number`` at the highest rung it newly reached and say whether it goes on.

        ``STOP`` from the promotion type pauses the trial (:attr:`paused`) rather than ending it.
        """
        vector = self._vector(values)
        if vector is None:
            return TrialScheduler.CONTINUE
        for milestone in reversed(self.milestones):
            if budget < milestone:
                continue
            recorded = self.recorded[milestone]
            if number in recorded:
                break  # decided at this rung already
            if self.promotes:
                recorded[number] = vector
                self._order.pop(milestone, None)
                if number in self._promotable(milestone):
                    self.promoted[milestone].add(number)
                    break
                self._pause(number, milestone)
                return TrialScheduler.STOP
            keep = self._keep(vector, recorded)
            recorded[number] = vector
            if not keep:
                self.stopped.add(number)
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def _keep(self, vector: list[float], recorded: Mapping[int, list[float]]) -> bool:
        if not recorded:
            return True
        if len(self.objectives) == 1:
            losses = [v[0] for v in recorded.values()]
            # Ray's rule in minimisation form: stop above the 1/rf percentile of recorded losses.
            cutoff = float(np.nanpercentile(losses, 100 / self.reduction_factor))
            return vector[0] <= cutoff
        points = np.asarray([*recorded.values(), vector], dtype=float)
        me = len(points) - 1
        keep = max(1, math.ceil(len(points) / self.reduction_factor))
        return _ranking(points).index(me) < keep

    # -- promotion type ---------------------------------------------------------------------

    def _ranked(self, milestone: int) -> list[int]:
        """Trial numbers at ``milestone``, best first (cached until the rung changes)."""
        if milestone not in self._order:
            numbers = list(self.recorded[milestone])
            points = np.asarray([self.recorded[milestone][n] for n in numbers], dtype=float)
            self._order[milestone] = [numbers[i] for i in _ranking(points)] if numbers else []
        return self._order[milestone]

    def _promotable(self, milestone: int) -> list[int]:
        """Li et al.'s candidates: the top ``floor(n/rf)`` at the rung not promoted yet, best first."""
        ranked = self._ranked(milestone)
        top = ranked[: int(len(ranked) / self.reduction_factor + 1e-9)]
        return [n for n in top if n not in self.promoted[milestone]]

    def _pause(self, number: int, milestone: int) -> None:
        self.paused[number] = milestone
        while len(self.paused) > self.max_paused:
            # Least likely to be promoted: the worst rank quantile at its rung (lower rungs first on ties).
            def quantile(n: int) -> tuple[float, int]:
                m = self.paused[n]
                ranked = self._ranked(m)
                return ranked.index(n) / len(ranked), -m

            worst = max(self.paused, key=quantile)
            del self.paused[worst]
            self.stopped.add(worst)
            self._dropped.append(worst)

    def next_promotion(self) -> int | None:
        """A paused trial to resume now, from the highest rung first (Li et al.'s ``get_job``), or None.

        The trial counts as promoted from here on: the caller must re-issue it.
        """
        for milestone in reversed(self.milestones):
            for number in self._promotable(milestone):
                if self.paused.get(number) == milestone:
                    del self.paused[number]
                    self.promoted[milestone].add(number)
                    return number
        return None

    def has_promotion(self) -> bool:
        """True when :meth:`next_promotion` would return a trial now (without promoting it)."""
        return any(self.paused.get(n) == m for m in self.milestones for n in self._promotable(m))

    def take_dropped(self) -> list[int]:
        """Paused trials stopped for good since the last call (their checkpoints can go)."""
        out, self._dropped = self._dropped, []
        return out

    # -- Tune's TrialScheduler interface ----------------------------------------------------

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if NUMBER not in trial.config or self.budget_attr not in result:
            return TrialScheduler.CONTINUE
        budget = int(result[self.budget_attr])
        if budget >= self.max_budget or result.get(FINAL):
            return TrialScheduler.CONTINUE  # the final report (at a trainer's early stop too): the trial ends by itself
        return self.decide(int(trial.config[NUMBER]), budget, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        if result and result.get(ERROR):  # a failure the worker reported and outlived: an error all the same
            self.on_trial_error(tune_controller, trial)
            return
        # A final report below the full budget is a trainer's early stop (patience): completed, not at a rung.
        if result and NUMBER in trial.config and self.budget_attr in result and not result.get(FINAL):
            budget = int(result[self.budget_attr])
            if budget < self.max_budget:
                self.decide(int(trial.config[NUMBER]), budget, result)

    def no_more_trials(self, first_unissued: int) -> None:
        """The search hands out no trial number from ``first_unissued`` on (its trial budget is spent, or its
        searcher has nothing left): a synchronous scheduler stops waiting for them. Nothing to do here."""

    def trials_ended(self, numbers: Iterable[int]) -> None:
        """Trials that will not report again (failed, or ended by an earlier driver), on a resume: a
        synchronous scheduler stops waiting for them. Nothing to do here."""

    def replay(self, steps: Sequence[Mapping[str, Any]], paused: Mapping[int, int] = {}) -> None:  # noqa: B006 - read only
        """Rebuild the rungs from stored step rows (``number``, ``step``, ``metrics``) in time order.

        Args:
            steps: The run's step rows.
            paused: Promotion type: trials the store holds as paused -> the budget they reached.
                Every other trial recorded at a rung that has a later step was promoted from it.
        """
        if not self.promotes:
            for row in steps:
                if row["step"] < self.max_budget:
                    self.decide(int(row["number"]), int(row["step"]), row["metrics"] or {})
            return
        furthest: dict[int, int] = {}
        for row in steps:
            number, step = int(row["number"]), int(row["step"])
            furthest[number] = max(furthest.get(number, 0), step)
            vector = self._vector(row["metrics"] or {})
            if step in self.recorded and vector is not None:
                self.recorded[step].setdefault(number, vector)
        self._order.clear()
        for milestone, recorded in self.recorded.items():
            self.promoted[milestone] = {n for n in recorded if furthest[n] > milestone}
        for number, budget in paused.items():
            at = [m for m in self.milestones if m <= budget and number in self.recorded[m]]
            if at:
                self.paused[number] = at[-1]

    def debug_string(self) -> str:
        rungs = ", ".join(f"{m}: {len(r)}" for m, r in self.recorded.items())
        return f"{type(self).__name__}({self.type}; rungs {rungs}; stopped {len(self.stopped)}; paused {len(self.paused)})"


def _ranking(points: np.ndarray) -> list[int]:
    """Row indices of ``points`` (minimised), best first: by value for one column, else by
    non-dominated rank and, within a front, by crowding distance (largest first); stable."""
    if points.shape[1] == 1:
        return [int(i) for i in np.argsort(points[:, 0], kind="stable")]
    order: list[int] = []
    for front in non_dominated_sort(points):
        crowd = crowding_distance(points[front])
        order += [front[i] for i in np.argsort(-crowd, kind="stable")]
    return order


class HyperBand(RungScheduler):
    """Asynchronous HyperBand: several brackets of ASHA, each with its own grace period.

    Bracket ``b`` starts comparing trials at ``grace_period * rf^b`` steps, so the first bracket
    stops early and often (aggressive, as ASHA) and the last runs trials longer before judging
    them (for tasks whose early results mislead). Each trial belongs to one bracket, chosen from
    its trial number alone (a resumed search puts it back in the same bracket), with Li et al.'s
    (2018) HyperBand proportions: a bracket with ``s`` rungs gets a share ``rf^s / (s + 1)``.
    Trials are compared only with the trials of their own bracket; both ASHA types work per
    bracket (``max_paused`` is shared out between the brackets).

    Args:
        brackets: How many brackets (at most one per rung of the first; fewer when the budget
            has fewer rungs).
        Others: as :class:`RungScheduler`.
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        max_budget: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        brackets: int = 3,
        budget_attr: str = "budget",
        type: AshaType = "stopping",  # noqa: A002 - Syne Tune's name for the same choice
        max_paused: int = 64,
    ) -> None:
        if brackets < 1:
            raise ValueError(f"brackets must be at least 1, got {brackets}")
        first = RungScheduler(objectives, max_budget=max_budget, grace_period=grace_period,
                              reduction_factor=reduction_factor, budget_attr=budget_attr, type=type,
                              max_paused=max_paused)  # checks the shared options
        # A bracket needs a rung below the full budget: at most one bracket per rung of the first.
        count = max(1, min(brackets, len(first.milestones)))
        share = max(1, max_paused // count)
        FIFOScheduler.__init__(self)
        self.objectives = list(objectives)
        self.max_budget = max_budget
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.budget_attr = budget_attr
        self.type = type
        self.max_paused = max_paused
        self.brackets = [
            RungScheduler(objectives, max_budget=max_budget, grace_period=m, reduction_factor=reduction_factor,
                          budget_attr=budget_attr, type=type, max_paused=share)
            for m in first.milestones[:count]
        ] or [first]
        weights = np.asarray([reduction_factor ** len(b.milestones) / (len(b.milestones) + 1) for b in self.brackets])
        self.shares = weights / weights.sum()
        self.milestones = sorted({m for b in self.brackets for m in b.milestones})

    def bracket_of(self, number: int) -> int:
        """The bracket of trial ``number``: a low-discrepancy sequence over the shares (no state to keep)."""
        u = (number * 0.6180339887498949) % 1.0  # golden-ratio points fill [0, 1) evenly in any prefix
        return min(int(np.searchsorted(np.cumsum(self.shares), u, side="right")), len(self.brackets) - 1)

    def _parts(self) -> list[RungScheduler]:
        """The rung schedulers that hold the trials, in the order promotions are looked for: the brackets."""
        return self.brackets

    @property
    def paused(self) -> dict[int, int]:  # type: ignore[override]  # read-only: each bracket keeps its own
        return {n: m for b in self._parts() for n, m in b.paused.items()}

    @property
    def stopped(self) -> set[int]:  # type: ignore[override]  # read-only: each bracket keeps its own
        return set().union(*(b.stopped for b in self._parts()))

    @property
    def recorded(self) -> dict[int, dict[int, list[float]]]:  # type: ignore[override]  # read-only: each bracket keeps its own
        out: dict[int, dict[int, list[float]]] = {m: {} for m in self.milestones}
        for b in self._parts():
            for m, rows in b.recorded.items():
                out[m].update(rows)
        return out

    def decide(self, number: int, budget: int, values: Mapping[str, Any]) -> str:
        return self.brackets[self.bracket_of(number)].decide(number, budget, values)

    def next_promotion(self) -> int | None:
        for bracket in self._parts():
            number = bracket.next_promotion()
            if number is not None:
                return number
        return None

    def has_promotion(self) -> bool:
        return any(b.has_promotion() for b in self._parts())

    def take_dropped(self) -> list[int]:
        return [n for b in self._parts() for n in b.take_dropped()]

    def replay(self, steps: Sequence[Mapping[str, Any]], paused: Mapping[int, int] = {}) -> None:  # noqa: B006 - read only
        for i, bracket in enumerate(self.brackets):
            bracket.replay([r for r in steps if self.bracket_of(int(r["number"])) == i],
                           {n: b for n, b in paused.items() if self.bracket_of(n) == i})

    def debug_string(self) -> str:
        return f"HyperBand({len(self.brackets)} brackets: " + "; ".join(b.debug_string() for b in self.brackets) + ")"


class _SyncBracket(RungScheduler):
    """One bracket of synchronous successive halving over a fixed block of trial numbers (``members``).

    The promotion type's pause and re-issue, with Li et al.'s synchronous rule: a rung promotes its top
    ``floor(n / rf)`` only once every trial expected there (all members at the first rung, the promoted ones at
    the next) has reported there or will not (:attr:`gone`: failed, ended by its trainer below the full
    budget, or a result that cannot be ranked).
    """

    def __init__(self, objectives: Sequence[Objective], *, members: range, **options: Any) -> None:
        super().__init__(objectives, type="promotion", **options)
        self.members = members
        self.gone: set[int] = set()

    def closed(self, milestone: int) -> bool:
        """True when every trial expected at ``milestone`` has reported there or never will."""
        i = self.milestones.index(milestone)
        expected = self.members if i == 0 else self.promoted[self.milestones[i - 1]]
        recorded = self.recorded[milestone]
        return all(n in recorded or n in self.gone for n in expected)

    def _promotable(self, milestone: int) -> list[int]:
        return super()._promotable(milestone) if self.closed(milestone) else []

    def decide(self, number: int, budget: int, values: Mapping[str, Any]) -> str:
        if budget in self.recorded and number not in self.recorded[budget] and self._vector(values) is None:
            # A result that cannot be ranked (missing, NaN): the trial ends here and the rung does not wait for it.
            self.gone.add(number)
            self.stopped.add(number)
            return TrialScheduler.STOP
        return super().decide(number, budget, values)


class SynchronousHyperBand(HyperBand):
    """Synchronous HyperBand (Li et al. 2018; Ray Tune's ``HyperBandScheduler``, Syne Tune's
    ``SynchronousHyperbandScheduler``): brackets of successive halving over fixed numbers of trials.

    The brackets' grace periods are :class:`HyperBand`'s (``grace * rf^b``); bracket ``b`` with ``s`` rungs
    takes ``ceil((S + 1) / (s + 1) * rf^s)`` trials (``S``: the first bracket's rungs), in blocks of consecutive
    trial numbers, most aggressive bracket first, round after round; so a trial's bracket and block follow from
    its number alone (a resumed search rebuilds them). A trial at a rung is paused until every trial of its
    block expected there has reported (or failed), then the top ``floor(n / rf)`` go on from their
    checkpoints; meanwhile the workers start the next block's trials. Against the asynchronous types it never
    promotes on a half-filled rung (ASHA's early promotions of mediocre trials), at the price of trials waiting
    paused. When the search hands out no more trials (``budget.trials`` reached), the open rungs rank what they
    have (:meth:`no_more_trials`).

    Args: as :class:`HyperBand` (no ``type``); ``max_paused`` bounds the paused trials of each block.
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        max_budget: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        brackets: int = 3,
        budget_attr: str = "budget",
        max_paused: int = 64,
    ) -> None:
        super().__init__(objectives, max_budget=max_budget, grace_period=grace_period,
                         reduction_factor=reduction_factor, brackets=brackets, budget_attr=budget_attr,
                         type="promotion", max_paused=max_paused)
        self.type = "synchronous"  # type: ignore[assignment]  # HyperBandType, wider than the rungs' AshaType
        top = len(self.brackets[0].milestones)
        #: Trials per block of each bracket (Li et al.'s n_s); a round is one block of each, in order.
        self.sizes = [math.ceil((top + 1) / (len(b.milestones) + 1) * reduction_factor ** len(b.milestones) - 1e-9)
                      for b in self.brackets]
        self.round = sum(self.sizes)
        #: (round, bracket) -> its block's rungs, created as its trials first appear.
        self.blocks: dict[tuple[int, int], _SyncBracket] = {}
        self._first_unissued: int | None = None

    @property
    def promotes(self) -> bool:
        return True

    def block_of(self, number: int) -> tuple[int, int]:
        """(round, bracket) of trial ``number``."""
        r, position = divmod(number, self.round)
        return r, int(np.searchsorted(np.cumsum(self.sizes), position, side="right"))

    def bracket_of(self, number: int) -> int:
        return self.block_of(number)[1]

    def _block(self, number: int) -> _SyncBracket:
        key = self.block_of(number)
        if key not in self.blocks:
            r, b = key
            start = r * self.round + sum(self.sizes[:b])
            members = range(start, start + self.sizes[b])
            if self._first_unissued is not None:
                members = range(start, max(start, min(members.stop, self._first_unissued)))
            template = self.brackets[b]
            self.blocks[key] = _SyncBracket(
                self.objectives, members=members, max_budget=self.max_budget, grace_period=template.grace_period,
                reduction_factor=self.reduction_factor, budget_attr=self.budget_attr, max_paused=self.max_paused)
        return self.blocks[key]

    def _parts(self) -> list[RungScheduler]:
        # The oldest round first, the most aggressive bracket first within it.
        return [self.blocks[k] for k in sorted(self.blocks)]

    def decide(self, number: int, budget: int, values: Mapping[str, Any]) -> str:
        return self._block(number).decide(number, budget, values)

    def next_promotion(self) -> int | None:
        number = super().next_promotion()
        if number is not None:
            self._block(number).gone.discard(number)  # re-issued: it reports again
        return number

    def no_more_trials(self, first_unissued: int) -> None:
        self._first_unissued = first_unissued
        for block in self.blocks.values():
            block.members = range(block.members.start, max(block.members.start, min(block.members.stop, first_unissued)))

    def trials_ended(self, numbers: Iterable[int]) -> None:
        for number in numbers:
            self._block(number).gone.add(number)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        # A final report below the full budget (the trainer stopped early): the trial reports no more.
        if result and NUMBER in trial.config and result.get(FINAL) and int(result.get(self.budget_attr, 0)) < self.max_budget:
            self._block(int(trial.config[NUMBER])).gone.add(int(trial.config[NUMBER]))
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        if NUMBER in trial.config:
            self._block(int(trial.config[NUMBER])).gone.add(int(trial.config[NUMBER]))

    def replay(self, steps: Sequence[Mapping[str, Any]], paused: Mapping[int, int] = {}) -> None:  # noqa: B006 - read only
        numbers = sorted({int(r["number"]) for r in steps} | set(paused))
        for number in numbers:
            self._block(number)
        for block in self.blocks.values():
            block.replay([r for r in steps if int(r["number"]) in block.members],
                         {n: b for n, b in paused.items() if n in block.members})

    def debug_string(self) -> str:
        return (f"SynchronousHyperBand({len(self.brackets)} brackets of {self.sizes} trials; "
                + "; ".join(f"{k}: {b.debug_string()}" for k, b in sorted(self.blocks.items())) + ")")


@dataclass(frozen=True)
class Exploit:
    """One PBT exploit-and-explore decision: trial ``number`` goes on from ``donor``'s checkpoint at ``step``
    with ``config`` (the donor's config perturbed); ``previous`` is the config it had."""

    number: int
    donor: int
    step: int
    config: dict[str, Any]
    previous: dict[str, Any]


#: What an exploit needs from the engine (:class:`automl.recorder.Recorder` binds it): keep a copy of a trial's
#: checkpoint at a step (True when it had one), and carry an exploit out (copy, store, re-issue with the new config).
Snapshot = Callable[[int, int], bool]
Apply = Callable[[Exploit], None]
Drop = Callable[[int, int], None]
#: After a resume: a trial's config at a step and whether its kept checkpoint of that step is there (from the store
#: and the trial's directory), for trials recorded before this driver started.
Lookup = Callable[[int, int], "dict[str, Any] | None"]


class PopulationBasedTraining(RungScheduler):
    """Population Based Training (Jaderberg et al. 2017), asynchronous, on the engine's own checkpoints.

    Every ``interval`` budget steps a trial's primary objective is ranked among the values every trial
    reported at that same step. A trial in the bottom ``quantile`` *exploits* one of the top ``quantile``
    (drawn with a seeded generator): the engine copies that trial's checkpoint of the step into this
    trial's, and the trial *explores*: it goes on with the donor's config, each parameter in ``mutate``
    either resampled from the space (``resample_probability``) or multiplied by one of ``factors``
    (numbers, clipped into the space) or moved to a neighbouring value (choices). The trial is stopped
    there and re-issued at once under its own number with the new config (the promotion-type ASHA's
    pause and re-issue), so it restarts from the copied checkpoint; the store records each exploit in
    the trial's ``lineage``. Others go on.

    Why not Ray Tune's ``PopulationBasedTraining``: it refuses a search algorithm (the engine numbers,
    records and resumes trials through its own), draws from Python's unseeded ``random``, ranks trials
    at different steps, and its state (Tune checkpoints, trial ids) does not survive a killed driver,
    whereas these decisions are rebuilt from the store's step rows and lineage.

    Args:
        objectives: The spec's; PBT ranks on the primary.
        max_budget: Budget steps of a full trial.
        space: The search space (what ``mutate`` names, and the ranges values are clipped into).
        interval: Budget steps between two chances to exploit (the perturbation interval).
        quantile: The fraction of the trials at a step that copy (bottom) and are copied (top); at most half.
        mutate: Parameters to perturb; default: every float parameter of the space (numbers like ``lr``
            and ``weight_decay`` that a checkpoint can go on with; integer and choice parameters often
            change a network's shape, so they are perturbed only when named).
        resample_probability: Chance to draw a parameter afresh instead of perturbing it.
        factors: What a number is multiplied by (one drawn per parameter).
        seed: Seed of the exploit and explore draws (with the trial number and the step).
    """

    def __init__(
        self,
        objectives: Sequence[Objective],
        *,
        max_budget: int,
        space: SearchSpace,
        interval: int = 1,
        quantile: float = 0.25,
        mutate: Sequence[str] | None = None,
        resample_probability: float = 0.25,
        factors: Sequence[float] = (0.8, 1.2),
        seed: int = 0,
        budget_attr: str = "budget",
    ) -> None:
        if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval < max_budget:
            raise ValueError(f"interval must be an integer from 1 to {max_budget - 1} (the trainer reports "
                             f"{max_budget} budget steps), got {interval!r}")
        if not 0 < quantile <= 0.5:
            raise ValueError(f"quantile must be in (0, 0.5], got {quantile!r}")
        if not 0 <= resample_probability <= 1:
            raise ValueError(f"resample_probability must be in [0, 1], got {resample_probability!r}")
        if not factors or any(not isinstance(f, (int, float)) or f <= 0 for f in factors):
            raise ValueError(f"factors must be positive numbers, got {factors!r}")
        names = list(mutate) if mutate is not None else [n for n, p in space.items() if isinstance(p, Float)]
        unknown = [n for n in names if n not in space]
        if unknown:
            raise ValueError(f"mutate names {unknown}, not in the space (its parameters: {', '.join(space)})")
        if not names:
            raise ValueError("nothing to perturb: the space has no float parameter; name the parameters in "
                             "scheduler.options.mutate")
        super().__init__(objectives[:1], max_budget=max_budget, grace_period=interval, reduction_factor=2,
                         budget_attr=budget_attr, type="promotion", max_paused=10**9)
        self.space = space
        self.interval = interval
        self.quantile = float(quantile)
        self.mutate = names
        self.resample_probability = float(resample_probability)
        self.factors = tuple(float(f) for f in factors)
        self.seed = int(seed)
        self.milestones = list(range(interval, max_budget, interval))
        self.recorded = {m: {} for m in self.milestones}
        self.promoted = {m: set() for m in self.milestones}
        #: (trial, step) -> the config the trial had when it reached that step (what a copy of it explores from).
        self.configs: dict[tuple[int, int], dict[str, Any]] = {}
        #: (trial, step) pairs whose checkpoint the engine keeps (only those can be copied).
        self.snapshots: set[tuple[int, int]] = set()
        #: Exploited trials waiting to be re-issued, in decision order.
        self.waiting: list[int] = []
        self.exploits: list[Exploit] = []
        self._snapshot: Snapshot | None = None
        self._apply: Apply | None = None
        self._drop: Drop | None = None
        self._lookup: Lookup | None = None

    def bind(self, snapshot: Snapshot, apply: Apply, drop: Drop | None = None, lookup: Lookup | None = None) -> None:
        """Connect the engine: ``snapshot(number, step)`` keeps a trial's checkpoint of a step; ``apply(exploit)``
        copies the donor's into the trial's, records the lineage and sets the config the trial is re-issued with;
        ``drop(number, step)`` removes a kept checkpoint that ranks too low to be copied; ``lookup(number, step)``
        is the config a trial recorded before a resume had at a step when its kept checkpoint is there, else None."""
        self._snapshot, self._apply, self._drop, self._lookup = snapshot, apply, drop, lookup

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if NUMBER not in trial.config or self.budget_attr not in result:
            return TrialScheduler.CONTINUE
        budget = int(result[self.budget_attr])
        if budget >= self.max_budget:
            return TrialScheduler.CONTINUE
        config = {k: v for k, v in trial.config.items() if k != NUMBER}
        return self.decide(int(trial.config[NUMBER]), budget, result, config)

    def decide(self, number: int, budget: int, values: Mapping[str, Any],  # type: ignore[override]
               config: Mapping[str, Any] | None = None) -> str:
        """Record trial ``number`` at the interval step it reached; STOP when it exploits another (re-issued at once)."""
        vector = self._vector(values)
        reached = [m for m in self.milestones if m <= budget]
        if vector is None or not reached or number in self.recorded[reached[-1]]:
            return TrialScheduler.CONTINUE
        step = reached[-1]
        self.recorded[step][number] = vector
        if config is not None:
            self.configs[(number, step)] = dict(config)
        if self._snapshot is None or self._snapshot(number, step):
            self.snapshots.add((number, step))
        self._prune(step)
        exploit = self._choose(number, step, config)
        if exploit is None:
            return TrialScheduler.CONTINUE
        if self._apply is not None:
            self._apply(exploit)
        self.exploits.append(exploit)
        self.paused[number] = step
        self.waiting.append(number)
        return TrialScheduler.STOP

    def _choose(self, number: int, step: int, config: Mapping[str, Any] | None) -> Exploit | None:
        """The exploit of trial ``number`` at ``step``, or None when it is not in the bottom quantile there."""
        at = self.recorded[step]
        if len(at) < 2:
            return None
        ranked = sorted(at, key=lambda n: (at[n][0], n))  # best first; ties by number (deterministic)
        k = min(max(1, math.ceil(len(ranked) * self.quantile)), len(ranked) // 2)
        if number not in ranked[-k:]:
            return None
        donors = [d for d in ranked[:k] if d != number and self._copyable(d, step)]
        if not donors:
            return None
        rng = np.random.default_rng([self.seed, number, step])
        donor = donors[int(rng.integers(len(donors)))]
        new = self.explore(self.configs[(donor, step)], rng)
        return Exploit(number, donor, step, new, dict(config) if config is not None else {})

    def _copyable(self, number: int, step: int) -> bool:
        """Whether trial ``number``'s checkpoint of ``step`` is kept and its config then known (asked of the store for
        a trial recorded before a resume)."""
        if (number, step) in self.snapshots and (number, step) in self.configs:
            return True
        if self._lookup is None:
            return False
        config = self._lookup(number, step)
        if config is None:
            return False
        self.snapshots.add((number, step))
        self.configs[(number, step)] = config
        return True

    def _prune(self, step: int) -> None:
        """Drop the kept checkpoints of the bottom half at ``step`` (from 4 trials on): disk stays bounded. The top
        quantile (at most half) is what is copied; a dropped one returns to it only if the trials at ``step`` double."""
        at = self.recorded[step]
        if len(at) < 4:
            return
        ranked = sorted(at, key=lambda n: (at[n][0], n))
        for number in ranked[math.ceil(len(ranked) / 2):]:
            if (number, step) in self.snapshots:
                self.snapshots.discard((number, step))
                if self._drop is not None:
                    self._drop(number, step)

    def explore(self, config: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """``config`` with each of :attr:`mutate` perturbed (see the class); parameters it makes inactive go, newly
        active ones are drawn."""
        out = dict(config)
        for name in self.mutate:
            if name not in out:
                continue  # inactive under this config
            param = self.space[name]
            if rng.random() < self.resample_probability:
                out[name] = param.sample(rng)
            elif isinstance(param, Choice):
                i = param.index(out[name]) + (1 if rng.random() < 0.5 else -1)
                out[name] = param.values[min(max(i, 0), len(param.values) - 1)]
            else:
                out[name] = param.clip(float(out[name]) * self.factors[int(rng.integers(len(self.factors)))])
        kept: dict[str, Any] = {}
        for name, param in self.space.items():
            if param.is_active(kept):
                kept[name] = out[name] if name in out else param.sample(rng)
        return kept

    def next_promotion(self) -> int | None:
        """An exploited trial to re-issue now (it goes on from the copied checkpoint with its new config)."""
        while self.waiting:
            number = self.waiting.pop(0)
            if self.paused.pop(number, None) is not None:
                return number
        return None

    def has_promotion(self) -> bool:
        return any(n in self.paused for n in self.waiting)

    def take_dropped(self) -> list[int]:
        return []

    def replay(self, steps: Sequence[Mapping[str, Any]], paused: Mapping[int, int] = {}) -> None:  # noqa: B006 - read only
        """Rebuild the values at each interval step from the store's step rows; a trial the store holds as paused
        was exploited and not yet re-issued when the last driver stopped: it is re-issued first."""
        for row in steps:
            number, step = int(row["number"]), int(row["step"])
            vector = self._vector(row["metrics"] or {})
            if step in self.recorded and vector is not None:
                self.recorded[step].setdefault(number, vector)
        for number, budget in paused.items():
            self.paused[number] = int(budget)
            self.waiting.append(number)

    def debug_string(self) -> str:
        return f"PopulationBasedTraining(every {self.interval} steps; {len(self.exploits)} exploits)"
