"""The suite's own layout under pytest-xdist (README's test command, ``-n 2 --dist loadgroup``): every test that uses
the shared Ray session runs on one worker, so a run starts one Ray session, first on that worker (they are the
run's longest path), and the other tests run beside them.

Checked on a small generated suite that loads the repository's ``conftest.py`` hook, with a stand-in for the Ray
session: a fixture of the same name that starts nothing."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = f"""
import importlib.util, os, pytest

_spec = importlib.util.spec_from_file_location("automl_root_conftest", {str(ROOT / "conftest.py")!r})
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
pytest_collection_modifyitems = _root.pytest_collection_modifyitems
pytest_configure = _root.pytest_configure


@pytest.fixture(scope="session")
def ray_session():
    yield os.environ["PYTEST_XDIST_WORKER"]
"""

TESTS = """
import os, time, pytest

pytestmark = pytest.mark.usefixtures({uses})

@pytest.mark.parametrize("n", range({count}))
def test_it(n):
    time.sleep(0.05)
"""


def test_the_ray_session_tests_share_one_worker_and_the_rest_run_beside_them(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    # test_plain_b and test_plain_c each have more tests than the Ray session's two modules together: in
    # pytest-xdist's default order (largest group first) each worker would start with one of them.
    for name, uses, count in (("test_plain_a", "", 6), ("test_ray_a", '"ray_session"', 6), ("test_plain_b", "", 16),
                              ("test_ray_b", '"ray_session"', 6), ("test_plain_c", "", 14)):
        (tmp_path / f"{name}.py").write_text(TESTS.format(uses=uses, count=count))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not this run's worker or options
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                           "no:cacheprovider"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.findall(r"\[(gw\d)\] .*?PASSED (test_\w+)\.py::", done.stdout)
    assert len(ran) == 48, done.stdout
    ray_workers = {w for w, module in ran if module.startswith("test_ray")}
    assert len(ray_workers) == 1, done.stdout
    # On its worker the Ray session's tests ran first: nothing else before the last of them.
    on_it = [m.startswith("test_ray") for w, m in ran if w in ray_workers]
    assert on_it[:12] == [True] * 12, done.stdout
    # Each plain module stays on one worker, and the two workers both ran tests.
    for module in ("test_plain_a", "test_plain_b", "test_plain_c"):
        assert len({w for w, m in ran if m == module}) == 1, done.stdout
    assert {w for w, _ in ran} == {"gw0", "gw1"}, done.stdout


def test_a_second_worker_that_needs_the_ray_session_is_told_to_use_loadgroup(tmp_path: Path) -> None:
    # Without --dist loadgroup the groups are ignored; the session fixture then refuses a second Ray, saying why.
    root = _root_conftest()
    root.claim_ray_session(tmp_path, "gw0")
    root.claim_ray_session(tmp_path, "gw0")  # the same worker again: still its session
    with pytest.raises(pytest.fail.Exception, match="already runs on xdist worker gw0, and gw1 needs it too: run "
                       "with --dist loadgroup"):
        root.claim_ray_session(tmp_path, "gw1")


def _root_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("automl_root_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
