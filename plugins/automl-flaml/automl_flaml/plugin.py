"""Hook implementations of the automl-flaml plugin (FLAML is imported only when used)."""

from __future__ import annotations

from automl.plugin import SearcherSpec, SearchSpace, hookimpl, lazy_import
from automl_flaml.learners import LearnersSearcher
from automl_flaml.searchers import BlendSearchSearcher, CFOSearcher, require
from automl_flaml.space import check_flaml_space


def _check_cfo(space: SearchSpace) -> None:
    require()  # raises PluginError: pip install flaml
    check_flaml_space(space)


def _check_blendsearch(space: SearchSpace) -> None:
    require()
    lazy_import("optuna", "optuna")()
    check_flaml_space(space)


def searcher_specs() -> list[SearcherSpec]:
    """Every searcher of the plugin (names are stable: specs and benchmarks use them)."""
    return [
        SearcherSpec(
            "cfo",
            CFOSearcher,
            check_space=_check_cfo,
            description="FLAML cost-frugal optimisation: local search from low-cost configs (primary objective)",
        ),
        SearcherSpec(
            "blendsearch",
            BlendSearchSearcher,
            check_space=_check_blendsearch,
            description="FLAML BlendSearch: cost-aware local searches seeded by Optuna TPE (primary objective)",
        ),
        SearcherSpec(
            "learners",
            LearnersSearcher,
            check_space=_check_cfo,
            description="FLAML CFO per learner (the space's model choice), the learner picked by estimated cost "
            "for improvement, as FLAML's AutoML (primary objective)",
        ),
    ]


@hookimpl
def automl_register_searchers() -> list[SearcherSpec]:
    return searcher_specs()
