"""``searcher: auto`` (the default): which installed searcher a spec that names none gets.

Runs in the driver while the plan is built. A search under ``budget.wall_time`` with one
objective gets the first installed of :data:`BUDGETED`, the first whose own check accepts the space:
``learners`` first (automl-flaml: one CFO thread per model, the model of each trial chosen by
estimated cost for improvement, as FLAML's AutoML searches), then FLAML's BlendSearch
(cost-frugal local searches from the trainer's low-cost starting points, seeded by a global TPE).

History, measured on the tabular benchmark (benchmarks/tabular/RESULTS.md). BlendSearch won the
60-second searches that TPE lost, and was the choice below 300 s; ``learners`` was the choice from
300 s, where on six tables it was +0.04 points against FLAML on average with no table 1 point
behind, and BlendSearch, which keeps most trials in the model family that led early, was -0.52
with german -2.8. On the 300 s protocol (16 tables x 3 seeds) ``learners`` met every goal. At 60 s
BlendSearch left letter (15,000 rows, 26 classes) to chance: BlendSearch admits a global TPE proposal
only inside the region its local searches have reached, a region it builds from
``low_cost_partial_config``; in the trainers' space of models the low-cost values are conditional
and reach FLAML through the start points instead (see automl_flaml.searchers), so the region is
empty and the proposals unbounded. 20-30 s trials of 1,000-tree forests took both cores in the
first seconds, and whether one finished decided the cell (93.18 and 95.90 in two runs of one
seed, FLAML 96.04).
``learners`` grows each model's cost step by step: 95.94, 96.58, 96.56 over three seeds against
FLAML's 96.04, 96.28, 96.74. So ``learners`` is now first at every wall time.

Anything else gets ``random``, as before ``auto`` existed: with several objectives the front is
built over all trials, and random draws cover it evenly.
The order is a list of names, not a plugin flag, so an installed package cannot make itself
everyone's default; a spec that names a searcher always gets that one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.errors import PluginError

if TYPE_CHECKING:
    from automl.interfaces import SearcherSpec
    from automl.plugins import PluginManager
    from automl.space import SearchSpace
    from automl.spec import Spec

#: What ``searcher.name`` says to mean "choose for me".
AUTO = "auto"
#: Preference for a single-objective search with a wall time, best first.
BUDGETED = ("learners", "blendsearch", "cfo", "tpe", "random")
#: Everything else.
OTHERWISE = ("random",)


def requested(spec: Spec) -> str:
    """The searcher name to resolve first: the spec's, or ``random`` until :func:`choose_searcher` decides.

    Raises:
        SpecError: ``searcher.options`` with ``auto`` (options belong to one searcher).
    """
    if spec.searcher.name != AUTO:
        return spec.searcher.name
    if spec.searcher.options:
        raise spec.error("searcher options need a searcher name (auto chooses among searchers with other "
                         "options): add searcher.name", "searcher", "options")
    return "random"


def choose_searcher(spec: Spec, pm: PluginManager, space: SearchSpace, objectives: int) -> tuple[SearcherSpec, str]:
    """The searcher for a spec whose ``searcher.name`` is ``auto``, and one line saying why.

    Raises:
        SpecError: No searcher of the list is installed (only when the built-in ``random`` is disabled).
    """
    wall_time = spec.budget.wall_time
    names: tuple[str, ...]
    if wall_time is None or objectives != 1:
        names, why = OTHERWISE, "no wall time or several objectives: random draws"
    else:
        names, why = BUDGETED, "a single-objective search with a wall time: one cost-aware search per model first"
    passed: list[str] = []
    for name in names:
        try:
            record = pm.searchers.get(name)
        except PluginError:
            passed.append(f"{name} not installed")
            continue
        if record.check_space is not None:
            try:
                record.check_space(space)
            except ValueError as exc:
                passed.append(f"{name} cannot search this space ({exc})")
                continue
        skipped = f"; skipped: {', '.join(passed)}" if passed else ""
        return record, f"searcher auto: {name} ({why}{skipped})"
    raise spec.error(f"searcher auto found none of {', '.join(names)} installed; name one (automl plugins lists "
                     "them)", "searcher", "name")
