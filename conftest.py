"""Shared fixtures: one Ray per test session, specs written to temporary files."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from automl.plan import Plan

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local Ray for the whole test run (each start costs seconds); the engine reuses it.

    Under pytest-xdist its tests all go to one worker (``pytest_collection_modifyitems`` below); a second worker
    that reaches this fixture fails its test, saying so, rather than start a second Ray. Its searches run one trial
    at a time unless their spec says otherwise (``one_trial_at_a_time``)."""
    import ray

    from automl import engine
    from automl.engine import _start_ray

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        claim_ray_session(tmp_path_factory.getbasetemp().parent, worker)  # the run's directory, shared by its workers
    os.environ.setdefault("AUTOML_NUM_CPUS", "2")
    started = _start_ray(None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "_concurrency", one_trial_at_a_time(engine._concurrency))
        yield
    if started:
        ray.shutdown()


def one_trial_at_a_time(concurrency: Callable[[Plan], int]) -> Callable[[Plan], int]:
    """The engine's ``_concurrency``, but a search on the shared session runs one trial at a time unless its spec
    sets ``resources.max_concurrent`` (or its trainer asks for workers of its own, whose room the engine checks).

    Tune reuses a trial's actor only within one search, and each actor is a new process that imports Ray Tune and
    the trainer (2-5 s of CPU) before its first trial: with two trials at once, the suite's many small searches
    start a second actor each, about a quarter of the shared session's CPU, while the other pytest-xdist worker
    needs the second core. The tests that check what concurrency does say so in their specs; the searches the
    suite runs through ``automl`` in subprocesses keep the default (as many trials as the CPUs hold)."""

    def wrapped(plan: Plan) -> int:
        n = concurrency(plan)  # its checks and refusals stay
        return n if plan.max_concurrent or plan.trainer_resources() else 1

    return wrapped


def claim_ray_session(run_dir: Path, worker: str) -> None:
    """Note in ``run_dir`` that ``worker`` holds the test run's Ray session; fail if another worker already does."""
    claim = run_dir / "ray-session-worker"
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        owner = claim.read_text()
        if owner != worker:
            pytest.fail(f"the shared Ray session already runs on xdist worker {owner}, and {worker} needs it too: "
                        "run with --dist loadgroup, which keeps its tests on one worker", pytrace=False)
        return
    os.write(fd, worker.encode())
    os.close(fd)


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write a YAML spec (dedented) to a temporary file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


def pytest_configure(config: pytest.Config) -> None:
    """Under ``--dist loadgroup``, pytest-xdist hands out the groups in the order the tests come (the hook below
    puts the Ray session's first), not largest group first (its default), so that the Ray session's worker starts
    with them and runs nothing else before they end: they are the run's longest path."""
    if getattr(config.option, "dist", "no") == "loadgroup":
        config.option.loadscopereorder = False  # what --no-loadscope-reorder sets


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``pytest -n 2 --dist loadgroup``, what CI runs), every test that uses the shared Ray
    session goes to one worker, so a test run still starts one Ray session; the other tests keep each module on one
    worker (its module-scoped fixtures run once) and run beside them. Run one after the other, the two halves
    kept the two cores of a CI machine busy only ~69% of the time.

    The Ray session's tests come first, then the other groups, the largest first (as pytest-xdist would order
    them), each group's tests in their collected order."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        group = "ray-session" if "ray_session" in getattr(item, "fixturenames", ()) else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
        groups.setdefault(group, []).append(item)
    if hasattr(config, "workerinput"):  # an xdist worker: the one that collects, and sends the order on
        order = sorted(groups, key=lambda g: (g != "ray-session", -len(groups[g])))  # stable: ties keep their order
        items[:] = [item for group in order for item in groups[group]]
