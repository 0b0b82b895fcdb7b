"""One FLAML CFO search thread per learner, the learner of each trial chosen by its estimated
cost for improvement: the way FLAML's ``AutoML`` searches, as an automl searcher (``learners``).

FLAML's ``AutoML`` keeps one cost-frugal local search (CFO) per estimator and, before each
trial, picks the estimator whose search is expected to improve for the least time
(``AutoML._select_estimator``; the estimate is ``SearchState.estimated_cost4improvement``).
A search over one hierarchical space (BlendSearch, CFO) has no such choice: it spends most
trials in the model family that led early. This searcher splits the space at its top-level
choice that other parameters depend on (``model`` in the trainers' default spaces) and runs
one :class:`~automl_flaml.searchers.CFOSearcher` per value over the parameters active under
it. A space without such a choice is searched by one CFO thread (plain CFO).

Learner statistics are FLAML's, in the trials' seconds (``TrialOutcome.cost_s``; a trial of
unknown cost counts the mean cost seen) and FLAML's loss (``1 - value`` for a maximised
objective, the value for a minimised one), from completed trials:

* ECI (estimated cost for improvement) = max(time between its last two improvements, time
  since its last improvement), both in the learner's own seconds;
* a learner behind the best of all by a gap needs at least ``2 * gap / speed`` (its speed of
  improvement so far) when ``gap_penalty`` is on (FLAML's default; FLAML turns it off when it
  builds an ensemble, to keep more learners in play);
* the next learner is drawn with probability proportional to ``1 / ECI`` (seeded).

A learner no trial has completed yet (and none of its trials is running) is tried first, in the order of the choice's values
(the trainers list them cheapest first), except while trials issued before this searcher was
first asked are still running: the engine runs the trainer's starting points (one per model)
first, and those tell each learner's first cost and result. When the chosen learner's CFO
waits for results of its running trials (it proposes only so many neighbours before hearing
back), the next learner by ECI is asked; when a CFO has no proposal and no trial running (it
proposed a config it knows), or no learner has one, a random config of that learner is drawn
(counted in :attr:`LearnersSearcher.fallbacks`; CFO is not told about it).

A learner whose first :data:`FAIL_LIMIT` trials all failed is dropped, with the reason in
:attr:`LearnersSearcher.dropped` and a warning in the log, unless it is the last one left. A
trial the engine did not start for lack of time (``stopped`` at budget 0 without values) sets
its learner aside until another trial ends. A learner whose parameters are all fixed has one
config: it is suggested once.

Resume: the object pickles whole (the CFO threads as in :mod:`automl_flaml.searchers`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.plugin import Choice, Objective, Searcher, SearchSpace, TrialOutcome
from automl_flaml.searchers import CFOSearcher, require
from automl_flaml.space import check_flaml_space, is_number

__all__ = ["FAIL_LIMIT", "LearnersSearcher", "split_choice"]

#: Failed trials, with none completed, after which a learner is dropped.
FAIL_LIMIT = 3

_log = logging.getLogger("automl_flaml")


def split_choice(space: SearchSpace) -> str | None:
    """The first unconditional choice that other parameters depend on (the learner), or None."""
    parents = {parent for p in space.values() for parent in p.when}
    for name, p in space.items():
        if isinstance(p, Choice) and not p.when and name in parents:
            return name
    return None


def branch_space(space: SearchSpace, split: str, value: Any) -> SearchSpace:
    """The parameters of ``space`` active when ``split`` is ``value``, without ``split`` itself."""
    kept: list[Any] = []
    names: set[str] = set()
    for name, p in space.items():
        if name == split:
            continue
        if split in p.when:
            if value not in p.when[split]:
                continue
            p = dataclasses.replace(p, when={k: v for k, v in p.when.items() if k != split})
        if all(parent in names for parent in p.when):
            kept.append(p)
            names.add(name)
    return SearchSpace(kept)


class _Thread(CFOSearcher):
    """CFO over one learner's parameters; None (instead of a random draw) while CFO waits."""

    def _fallback(self, flat: set[tuple[Any, ...]]) -> dict[str, Any] | None:
        return None


@dataclass
class _Learner:
    """FLAML's ``SearchState`` bookkeeping for one learner (seconds are the learner's own)."""

    value: Any
    thread: _Thread | None  # None: every parameter fixed, one config
    fixed: dict[str, Any]
    total_s: float = 0.0
    best_loss: float = math.inf
    best_loss_old: float = math.inf
    time_best: float = 0.0
    time_best_old: float = 0.0
    completed: int = 0
    failed: int = 0
    pending: int = 0
    used: bool = False  # a fixed learner's one config was suggested

    def eci(self) -> float:
        return max(self.time_best - self.time_best_old, self.total_s - self.time_best)

    def tell(self, loss: float | None, seconds: float) -> None:
        self.total_s += seconds
        if loss is None:
            return
        self.completed += 1
        if loss < self.best_loss:
            # FLAML counts the first improvement as one from twice the loss.
            self.best_loss_old = self.best_loss if self.best_loss < math.inf else 2 * loss
            self.best_loss = loss
            self.time_best_old, self.time_best = self.time_best, self.total_s


class LearnersSearcher(Searcher):
    """Per-learner CFO search threads, the learner chosen by estimated cost for improvement.

    Args:
        space: What to search; its first unconditional choice that others depend on is the learner.
        objectives: The spec's objectives; the first is optimised.
        seed: Seeds the learner draws, each thread's CFO (``seed + i``) and the fallback draws.
        low_cost_partial_config: As for ``cfo`` (names of the whole space; each thread takes its
            own). None: each thread's default low-cost values.
        gap_penalty: FLAML's penalty on a learner behind the best by a gap (module docs); False
            keeps more learners in play, as FLAML does when it builds an ensemble.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        *,
        seed: int = 0,
        low_cost_partial_config: Mapping[str, Any] | None = None,
        gap_penalty: bool = True,
    ) -> None:
        super().__init__(space, objectives, seed=seed)
        require()
        check_flaml_space(space)
        if not isinstance(gap_penalty, bool):
            raise ValueError(f"gap_penalty must be true or false, got {gap_penalty!r}")
        if low_cost_partial_config is not None and not isinstance(low_cost_partial_config, Mapping):
            raise ValueError(f"low_cost_partial_config must be a mapping, got {low_cost_partial_config!r}")
        for name in low_cost_partial_config or {}:
            if name not in space:
                raise ValueError(f"low_cost_partial_config: unknown parameter {name!r}; the space has {sorted(space)}")
        self.gap_penalty = gap_penalty
        self.split = split_choice(space)
        values = self.space[self.split].values if self.split is not None else (None,)  # type: ignore[union-attr]
        self.learners: list[_Learner] = [self._learner(i, v, low_cost_partial_config) for i, v in enumerate(values)]
        self._rng = np.random.default_rng(seed)
        self._pending: dict[int, int] = {}  # trial number -> learner index
        self._seen: set[int] = set()
        self._before: set[int] | None = None  # numbers issued before the first suggest, not reported yet
        self._aside: set[int] = set()  # learners set aside after a trial skipped for lack of time
        # Known trial costs, summed and counted: their mean is what a trial of unknown cost is charged (ECI
        # itself needs only each learner's times of its last two improvements, kept in _Learner).
        self._cost_sum = 0.0
        self._cost_count = 0
        #: Learners dropped, by value, with the reason.
        self.dropped: dict[Any, str] = {}
        #: Suggestions drawn at random because no learner's CFO had one.
        self.fallbacks = 0

    def _learner(self, index: int, value: Any, low_cost: Mapping[str, Any] | None) -> _Learner:
        sub = branch_space(self.space, self.split, value) if self.split is not None else self.space
        fixed = {self.split: value} if self.split is not None else {}
        if all(len(p.values) == 1 if isinstance(p, Choice) else p.low == p.high for p in sub.values()):
            sample = sub.sample(np.random.default_rng(0))  # every parameter has one value
            return _Learner(value, None, {**fixed, **sample})
        own = None if low_cost is None else {k: v for k, v in low_cost.items() if k in sub}
        thread = _Thread(sub, self.objectives, seed=self.seed + index, low_cost_partial_config=own)
        return _Learner(value, thread, fixed)

    # -- choosing a learner ---------------------------------------------------------------------

    def _loss(self, value: float) -> float:
        """FLAML's loss: ``1 - value`` for a maximised objective, the value for a minimised one."""
        return 1.0 - value if self.objectives[0].mode == "max" else value

    def _estimate(self, learner: _Learner, best: float) -> float:
        cost = learner.eci()
        gap = learner.best_loss - best
        if self.gap_penalty and gap > 0:
            delta = (learner.best_loss_old - learner.best_loss) or learner.best_loss
            elapsed = (learner.total_s - learner.time_best_old) or 1e-10
            speed = delta / elapsed
            if speed > 0:
                cost = max(2 * gap / speed, cost)
        return cost or 1e-9

    def _order(self) -> list[int]:
        """Learner indices in the order to ask them: untried first, then one drawn by 1/ECI, then by ECI."""
        live = [i for i, lr in enumerate(self.learners)
                if lr.value not in self.dropped and not (lr.thread is None and lr.used)]
        if not live:
            return []
        ready = [i for i in live if i not in self._aside] or live
        # A learner whose trials failed so far is tried again until it completes one or is dropped.
        untried = [i for i in ready if self.learners[i].completed + self.learners[i].pending == 0]
        tried = [i for i in ready if self.learners[i].completed]
        waiting = [i for i in ready if i not in untried and i not in tried]
        best = min((self.learners[i].best_loss for i in tried), default=math.inf)
        cost = {i: self._estimate(self.learners[i], best) for i in tried}
        by_cost = sorted(tried, key=lambda i: (cost[i], i))
        if by_cost:
            weights = np.array([1.0 / cost[i] for i in tried])
            first = tried[int(self._rng.choice(len(tried), p=weights / weights.sum()))]
            by_cost.remove(first)
            by_cost.insert(0, first)
        if self._before:  # the trainer's starting points may still be running: learn from them first
            return by_cost + untried + waiting
        return untried + by_cost + waiting

    def suggest(self, number: int) -> dict[str, Any] | None:
        if self._before is None:
            self._before = {n for n in range(number) if n not in self._seen}
        order = self._order()
        for index in order:
            learner = self.learners[index]
            if learner.thread is None:
                config: dict[str, Any] | None = {} if not learner.used else None
                learner.used = learner.used or config is not None
            else:
                config = learner.thread.suggest(number)
                if config is None and not learner.pending:
                    # CFO has nothing new without waiting for results (it proposed a config it knows).
                    config = self._sample(learner)
            if config is not None:
                return self._issue(number, index, {**learner.fixed, **config})
        if not order:
            return None
        return self._issue(number, order[0], {**self.learners[order[0]].fixed, **self._sample(self.learners[order[0]])})

    def _sample(self, learner: _Learner) -> dict[str, Any]:
        self.fallbacks += 1
        return learner.thread.space.sample(self._rng) if learner.thread is not None else {}

    def _issue(self, number: int, index: int, config: dict[str, Any]) -> dict[str, Any]:
        self._pending[number] = index
        self.learners[index].pending += 1
        # Parameters in the space's order, as the other searchers give them.
        return {name: config[name] for name in self.space if name in config}

    # -- outcomes -------------------------------------------------------------------------------

    def _index(self, config: Mapping[str, Any]) -> int | None:
        if self.split is None:
            return 0
        value = config.get(self.split)
        for i, learner in enumerate(self.learners):
            if learner.value == value and type(learner.value) is type(value):
                return i
        return None

    def observe(self, outcome: TrialOutcome) -> None:
        self._seen.add(outcome.number)
        if self._before is not None:
            self._before.discard(outcome.number)
        mine = self._pending.pop(outcome.number, None)
        index = self._index(outcome.config) if mine is None else mine
        if index is None:
            return  # a config from outside the space (another run's warm start)
        learner = self.learners[index]
        if mine is not None:
            learner.pending -= 1
        if learner.thread is not None:
            sub = {k: v for k, v in outcome.config.items() if k != self.split}
            learner.thread.observe(dataclasses.replace(outcome, config=sub))
        skipped = outcome.status == "stopped" and not outcome.values and outcome.budget == 0
        if skipped:
            self._aside.add(index)
            return
        self._aside.clear()
        seconds = outcome.cost_s if is_number(outcome.cost_s) and outcome.number >= 0 else None
        if seconds is not None:
            self._cost_sum += float(seconds)
            self._cost_count += 1
        else:
            seconds = self._cost_sum / self._cost_count if self._cost_count else 1.0
        raw = outcome.values.get(self.objectives[0].metric)
        value = float(raw) if outcome.status == "completed" and is_number(raw) and math.isfinite(raw) else None
        learner.tell(None if value is None else self._loss(value), float(seconds))
        if outcome.status == "failed":
            learner.failed += 1
            self._maybe_drop(learner)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A searcher pickled by an earlier version (a resumed run) kept every known cost in a list.
        costs = state.pop("_costs", None)
        if costs is not None:
            state.update(_cost_sum=float(sum(costs)), _cost_count=len(costs))
        self.__dict__.update(state)

    def _maybe_drop(self, learner: _Learner) -> None:
        left = [lr for lr in self.learners if lr.value not in self.dropped]
        if learner.completed or learner.failed < FAIL_LIMIT or len(left) <= 1 or learner.value in self.dropped:
            return
        reason = f"its first {learner.failed} trials all failed"
        self.dropped[learner.value] = reason
        _log.warning("searcher learners: %s=%r dropped: %s", self.split, learner.value, reason)

    @property
    def eci(self) -> dict[Any, float]:
        """Each tried learner's estimated cost for improvement in seconds, by value (for reports and tests)."""
        tried = [lr for lr in self.learners if lr.completed]
        best = min((lr.best_loss for lr in tried), default=math.inf)
        return {lr.value: self._estimate(lr, best) for lr in tried}
