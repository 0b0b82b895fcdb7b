"""Shared fixtures: one Ray per test session, specs written to temporary files."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole test run (each start costs seconds); the engine reuses it."""
    import ray

    from automl.engine import _start_ray

    os.environ.setdefault("AUTOML_NUM_CPUS", "2")
    started = _start_ray(None)
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write a YAML spec (dedented) to a temporary file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write



def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``pytest -n 2 --dist loadgroup``, what CI runs), every test that uses the shared Ray
    session goes to one worker, so a test run still starts one Ray session; the other tests keep each module on one
    worker (its module-scoped fixtures run once) and run beside them. Both halves were CPU-bound at ~70% of two
    cores when run one after the other."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = "ray-session" if "ray_session" in getattr(item, "fixturenames", ()) else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
