"""The scheduler conformance kit: reusable pytest checks every trial scheduler plugin should pass.

A scheduler is built here as the engine builds it (:meth:`~automl.plugin.SchedulerSpec.build`: the
objectives first, ``max_budget`` and the spec's options by keyword, and the engine arguments the
factory names: the search space, the trainer's record, the seed), in-process and without Ray.

What is checked (each a ``test_*`` method of :class:`SchedulerConformance`):

* the registered :class:`~automl.plugin.SchedulerSpec` is well formed: a description, a factory the
  engine can call (:meth:`~automl.plugin.SchedulerSpec.signature_problem`: the plugin manager refuses
  one it cannot), the kit's options among its keyword arguments and none of them an engine argument;
* it builds a Ray Tune ``TrialScheduler`` from the engine's arguments;
* the factory gets, by keyword, exactly the engine arguments it names (``space``, ``trainer``,
  ``seed``), the very objects the engine has, and the objectives as its first argument.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, ClassVar

from automl.plugin import SCHEDULER_ENGINE_ARGUMENTS, Objective, SchedulerSpec, SearchSpace, TrainerSpec
from automl.testing.searchers import BOWL_SPACE

__all__ = ["SchedulerConformance"]


class SchedulerConformance:
    """Checks any trial scheduler must pass; subclass it in a ``Test*`` class and set :attr:`scheduler`.

    Attributes:
        scheduler: The registered name (looked up through the plugin manager).
        options: Spec options passed to the factory in every check.
        trainer: The registered trainer whose record the engine passes (a checkpointing one: a scheduler
            that copies checkpoints refuses others).
        max_budget: Budget steps of a full trial.
        space: The search space the engine passes.
        seed: The seed the engine passes.
    """

    scheduler: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}
    trainer: ClassVar[str] = "function"
    max_budget: ClassVar[int] = 9
    space: ClassVar[SearchSpace] = BOWL_SPACE
    seed: ClassVar[int] = 7

    # -- helpers subclasses may override ------------------------------------------------

    def spec(self) -> SchedulerSpec:
        """The registered record (override to test a spec that is not installed)."""
        from automl.plugin import get_plugin_manager

        assert self.scheduler, f"{type(self).__name__} must set `scheduler` to a registered name"
        record: SchedulerSpec = get_plugin_manager().schedulers.get(self.scheduler)
        return record

    def trainer_spec(self) -> TrainerSpec:
        from automl.plugin import get_plugin_manager

        record: TrainerSpec = get_plugin_manager().trainers.get(self.trainer)
        return record

    def objectives(self) -> list[Objective]:
        """One objective, or two with mixed directions for a multi-objective scheduler."""
        first = Objective("loss", "min")
        return [first, Objective("accuracy", "max")] if self.spec().multi_objective else [first]

    def build(self, spec: SchedulerSpec | None = None, **options: Any) -> Any:
        """A scheduler built as the engine builds one, with :attr:`options` (and ``options`` over them)."""
        spec = spec or self.spec()
        return spec.build(self.objectives(), max_budget=self.max_budget, options={**self.options, **options},
                          space=self.space, trainer=self.trainer_spec(), seed=self.seed)

    # -- the checks -----------------------------------------------------------------------

    def test_spec_is_well_formed(self) -> None:
        spec = self.spec()
        assert spec.name == self.scheduler
        assert spec.description, "give the SchedulerSpec a one-line description for `automl plugins`"
        problem = spec.signature_problem()
        assert problem is None, f"the engine cannot call the factory: {problem}"
        names = spec.option_names()
        assert not set(SCHEDULER_ENGINE_ARGUMENTS) & set(names)
        target = spec.factory.__init__ if inspect.isclass(spec.factory) else spec.factory
        takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(target).parameters.values())
        unknown = sorted(set(self.options) - set(names))
        assert takes_any or not unknown, f"options {unknown} are not keyword arguments of the factory ({names})"

    def test_builds_a_ray_tune_scheduler(self) -> None:
        from ray.tune.schedulers import TrialScheduler

        built = self.build()
        assert isinstance(built, TrialScheduler), f"the factory returned a {type(built).__name__}, not a TrialScheduler"

    def test_gets_the_engine_arguments_it_names(self) -> None:
        spec = self.spec()
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        @functools.wraps(spec.factory)
        def recording(*args: Any, **kwargs: Any) -> Any:
            calls.append((args, kwargs))
            return spec.factory(*args, **kwargs)

        self.build(dataclasses.replace(spec, factory=recording))
        (args, kwargs), = calls
        assert args and list(args[0]) == self.objectives(), "the objectives come first, positionally"
        given = {"space": self.space, "trainer": self.trainer_spec(), "seed": self.seed}
        named = spec.engine_arguments()
        assert {k for k in kwargs if k in given} == set(named)
        for name in named:
            assert kwargs[name] is given[name] or kwargs[name] == given[name], f"{name} is not the engine's"
