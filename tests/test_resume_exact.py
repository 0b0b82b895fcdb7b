"""Resume is exact after any driver death: every trial number handed out is either in the store or handed out
again, so a resumed run ends with the budget's count of trials, whatever killed the driver and when.

The driver is killed from inside a plugin's hook (``tests/fixtures/plugins/exit-in-hook``: ``os._exit``, no
cleanup), in a subprocess; the fast tests pin the two rules that make it exact.
"""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import automl
import automl.engine
from automl.builtin.searchers import RandomSearcher
from automl.interfaces import Objective
from automl.run import Run
from automl.searcher_adapter import SearcherAdapter
from automl.space import Float, SearchSpace
from automl.trial_job import NUMBER
from tests.conftest import PluginSite

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name: exact
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:sleepy", metrics: {{loss: min, cost: min}}}}
searcher: {{name: random}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
  sleep: {{type: choice, values: [0.3]}}
objectives:
  - {{metric: loss, mode: min}}
budget: {{trials: {trials}}}
seed: 4
"""


def _searcher() -> RandomSearcher:
    return RandomSearcher(SearchSpace([Float("x", {}, 0.0, 1.0)]), [Objective("loss", "min")], seed=0)


def test_a_number_is_recorded_before_the_state_file_counts_it_handed_out(tmp_path: Path) -> None:
    state = tmp_path / "searcher.pkl"
    seen: list[tuple[int, int]] = []

    def issued(number: int, config: dict[str, Any]) -> None:
        # The driver may die right here: the state file must not yet count this number as handed out.
        counted = pickle.loads(state.read_bytes())["next_number"] if state.exists() else 0
        seen.append((number, counted))

    adapter = SearcherAdapter(_searcher(), max_budget=1, limit=4, state_path=state, save_every=0.0, on_issue=issued)
    numbers = [adapter.suggest(f"t{i}")[NUMBER] for i in range(4)]  # type: ignore[index]
    assert numbers == [0, 1, 2, 3]
    assert seen == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert pickle.loads(state.read_bytes())["next_number"] == 4


def test_numbers_handed_out_but_never_recorded_are_drawn_again_first() -> None:
    issued: list[int] = []
    adapter = SearcherAdapter(_searcher(), max_budget=1, first_number=5, limit=6, reissue=[3, 1],
                              on_issue=lambda number, config: issued.append(number))
    given = [adapter.suggest(f"t{i}") for i in range(4)]
    assert [g[NUMBER] for g in given[:3]] == [1, 3, 5]  # type: ignore[index]
    assert given[3] == SearcherAdapter.FINISHED
    assert issued == [1, 3, 5]


def _counts(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in Run.open(out).trials():
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("when", ["running", "completed"])
def test_a_driver_killed_inside_a_hook_resumes_to_the_full_budget(
    fixture_plugins: Callable[..., PluginSite], write_spec: Callable[..., Path], tmp_path: Path, when: str
) -> None:
    """Killed when the first trial starts (the next number may be handed out, not started) or first completes."""
    site = fixture_plugins("exit-in-hook")
    marker = tmp_path / "killed.txt"
    out = tmp_path / "run"
    spec = write_spec(SPEC.format(trials=6))
    env = site.env(AUTOML_NUM_CPUS="2", FIXTURE_EXIT_MARKER=str(marker), FIXTURE_EXIT_STATUS=when)
    died = subprocess.run([sys.executable, "-m", "automl.cli", "search", str(spec), "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, start_new_session=True)
    assert died.returncode == 1 and marker.is_file(), died.stderr  # killed by the hook, not finished
    before = {t["number"]: t for t in Run.open(out).trials()}
    assert Run.open(out).status == "running"  # nothing ran to mark it
    assert any(t["status"] in ("running", "pending") for t in before.values())  # left behind by the death
    resumed = subprocess.run([sys.executable, "-m", "automl.cli", "resume", str(out)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300, start_new_session=True)
    assert resumed.returncode == 0, resumed.stderr
    trials = {t["number"]: t for t in Run.open(out).trials()}
    assert sorted(trials) == list(range(6))
    assert _counts(out) == {"completed": 6}
    for number, t in before.items():  # completed before the death: kept as they were
        if t["status"] == "completed":
            assert trials[number]["finished_at"] == t["finished_at"]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_resume_draws_again_the_numbers_an_older_driver_lost(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """A run left by a driver that counted numbers in its state file the store never got (before 0.2.0).

    In this process on the shared Ray (the subprocess drivers above cover the CLI; here the store is edited
    between two drivers, not killed)."""
    out = tmp_path / "run"
    spec = write_spec(SPEC.format(trials=4))
    automl.search(spec, out=out)
    # Trials 1 and 3 as that driver left them: handed out (searcher.pkl says next_number 4), never recorded.
    with sqlite3.connect(out / "automl.db") as db:
        db.execute("DELETE FROM trials WHERE number IN (1, 3)")
        db.execute("DELETE FROM steps WHERE number IN (1, 3)")
        db.execute("UPDATE runs SET status = 'running'")
    assert pickle.loads((out / "searcher.pkl").read_bytes())["next_number"] == 4
    kept = {t["number"]: t["finished_at"] for t in Run.open(out).trials()}
    automl.engine.resume(out)
    trials = {t["number"]: t for t in Run.open(out).trials()}
    assert sorted(trials) == [0, 1, 2, 3] and _counts(out) == {"completed": 4}
    assert all(trials[n]["finished_at"] == at for n, at in kept.items())
