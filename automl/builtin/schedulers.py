"""The core's own trial schedulers: fifo, asha, moasha, hyperband, pbt (ours) and median (Ray Tune's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from automl.hookspecs import hookimpl
from automl.interfaces import Objective, SchedulerSpec, Trainer, TrainerSpec
from automl.space import SearchSpace

if TYPE_CHECKING:
    from automl.schedulers import AshaType, HyperBand, HyperBandType, PopulationBasedTraining, RungScheduler

# automl.schedulers (Ray Tune's scheduler classes, about a second to import) is imported when a scheduler is
# made, not when the plugin registers: `automl show`, `report`, `validate`... never need it.


def fifo(objectives: Sequence[Objective], *, max_budget: int) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def asha(
    objectives: Sequence[Objective], *, max_budget: int, grace_period: int = 1, reduction_factor: float = 3,
    type: AshaType = "stopping", max_paused: int = 64,  # noqa: A002 - Syne Tune's name for the choice
) -> RungScheduler:
    """Asynchronous successive halving on the primary objective (stopping or promotion type)."""
    from automl.schedulers import RungScheduler

    return RungScheduler(objectives[:1], max_budget=max_budget, grace_period=grace_period,
                         reduction_factor=reduction_factor, type=type, max_paused=max_paused)


def moasha(
    objectives: Sequence[Objective], *, max_budget: int, grace_period: int = 1, reduction_factor: float = 3,
    type: AshaType = "stopping", max_paused: int = 64,  # noqa: A002
) -> RungScheduler:
    """Multi-objective ASHA: promotion by non-dominated rank and crowding over all objectives."""
    from automl.schedulers import RungScheduler

    return RungScheduler(objectives, max_budget=max_budget, grace_period=grace_period,
                         reduction_factor=reduction_factor, type=type, max_paused=max_paused)


def hyperband(
    objectives: Sequence[Objective], *, max_budget: int, grace_period: int = 1, reduction_factor: float = 3,
    brackets: int = 3, type: HyperBandType = "stopping", max_paused: int = 64,  # noqa: A002
) -> HyperBand:
    """HyperBand on the primary objective: ``brackets`` brackets of successive halving with growing grace periods,
    asynchronous (ASHA brackets, ``type`` stopping or promotion) or synchronous (``type: synchronous``)."""
    from automl.schedulers import HYPERBAND_TYPES, HyperBand, SynchronousHyperBand

    if type not in HYPERBAND_TYPES:
        raise ValueError(f"type must be one of {', '.join(HYPERBAND_TYPES)}, got {type!r}")
    if type == "synchronous":
        return SynchronousHyperBand(objectives[:1], max_budget=max_budget, grace_period=grace_period,
                                    reduction_factor=reduction_factor, brackets=brackets, max_paused=max_paused)
    return HyperBand(objectives[:1], max_budget=max_budget, grace_period=grace_period,
                     reduction_factor=reduction_factor, brackets=brackets, type=type, max_paused=max_paused)


def pbt(
    objectives: Sequence[Objective], *, max_budget: int, space: SearchSpace, trainer: TrainerSpec | None = None,
    seed: int = 0, interval: int = 1, quantile: float = 0.25, mutate: Sequence[str] | None = None,
    resample_probability: float = 0.25, factors: Sequence[float] = (0.8, 1.2),
) -> PopulationBasedTraining:
    """Population Based Training on the primary objective: every ``interval`` steps the bottom ``quantile`` copy
    the checkpoint of one of the top ``quantile`` and go on with its config perturbed (``mutate``)."""
    if trainer is not None and trainer.factory.save_checkpoint is Trainer.save_checkpoint:
        raise ValueError(f"pbt copies checkpoints between trials, but trainer {trainer.name!r} saves none (it does "
                         "not override Trainer.save_checkpoint): set scheduler.name to asha or hyperband, or use a "
                         "trainer that checkpoints")
    from automl.schedulers import PopulationBasedTraining

    return PopulationBasedTraining(objectives, max_budget=max_budget, space=space, interval=interval,
                                   quantile=quantile, mutate=mutate, resample_probability=resample_probability,
                                   factors=factors, seed=seed)


def median(
    objectives: Sequence[Objective], *, max_budget: int, grace_period: int = 1, min_samples_required: int = 3
) -> Any:
    """Ray Tune's median stopping rule on the primary objective."""
    from ray.tune.schedulers import MedianStoppingRule

    primary = objectives[0]
    return MedianStoppingRule(time_attr="budget", metric=primary.metric, mode=primary.mode,
                              grace_period=grace_period, min_samples_required=min_samples_required)


@hookimpl
def automl_register_schedulers() -> list[SchedulerSpec]:
    return [
        SchedulerSpec("fifo", fifo, uses_steps=False, description="no early stopping: every trial runs its full budget"),
        SchedulerSpec("asha", asha, description="asynchronous successive halving on the primary objective "
                      "(type: stopping or promotion)"),
        SchedulerSpec("moasha", moasha, multi_objective=True,
                      description="multi-objective ASHA: non-dominated rank + crowding at each rung "
                      "(type: stopping or promotion)"),
        SchedulerSpec("hyperband", hyperband, description="HyperBand: brackets of successive halving with growing "
                      "grace periods, trials shared out as in Li et al. 2018 (type: stopping or promotion, "
                      "asynchronous; or synchronous)"),
        SchedulerSpec("pbt", pbt, description="Population Based Training: every interval steps the worst trials copy "
                      "a best one's checkpoint and go on with its config perturbed (lineage in the store)"),
        SchedulerSpec("median", median, description="Ray Tune's median stopping rule on the primary objective"),
    ]
