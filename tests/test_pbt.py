"""Population Based Training (``scheduler: pbt``, :class:`automl.schedulers.PopulationBasedTraining`): its decisions
without Ray, the refusals at validate, and one search end to end (slow) whose lineage the store keeps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

import automl
from automl.errors import SpecError
from automl.interfaces import Objective
from automl.schedulers import Exploit, PopulationBasedTraining
from automl.space import Choice, Float, Int, SearchSpace

SPACE = SearchSpace([Float("lr", low=1e-4, high=0.5, log=True), Float("wd", low=0.0, high=0.1),
                     Int("units", low=8, high=64), Choice("schedule", values=("constant", "step", "cosine"))])
LOSS = [Objective("loss", "min")]


def _pbt(**options: Any) -> PopulationBasedTraining:
    return PopulationBasedTraining(LOSS, max_budget=8, space=SPACE, **{"interval": 2, "seed": 5, **options})


def _config(lr: float) -> dict[str, Any]:
    return {"lr": lr, "wd": 0.01, "units": 16, "schedule": "step"}


def test_the_worst_trial_at_an_interval_step_copies_a_best_one_and_is_reissued() -> None:
    pbt = _pbt()
    assert pbt.milestones == [2, 4, 6]
    applied: list[Exploit] = []
    kept: list[tuple[int, int]] = []
    pbt.bind(lambda n, step: kept.append((n, step)) is None, applied.append)
    assert pbt.decide(0, 1, {"loss": 0.9}, _config(0.1)) == TrialScheduler.CONTINUE  # not an interval step
    assert pbt.decide(0, 2, {"loss": 0.5}, _config(0.1)) == TrialScheduler.CONTINUE  # alone at step 2
    assert pbt.decide(1, 2, {"loss": 0.2}, _config(0.01)) == TrialScheduler.CONTINUE  # the best
    assert pbt.decide(2, 2, {"loss": 0.9}, _config(0.3)) == TrialScheduler.STOP  # the worst of three: exploits
    assert kept == [(0, 2), (1, 2), (2, 2)]
    [exploit] = applied
    assert (exploit.number, exploit.donor, exploit.step) == (2, 1, 2)
    assert exploit.previous == _config(0.3)
    assert SPACE.contains(exploit.config) and exploit.config != _config(0.01)
    assert pbt.paused == {2: 2} and pbt.has_promotion()
    assert pbt.next_promotion() == 2 and pbt.next_promotion() is None and not pbt.has_promotion()
    # Its restarted run reports step 2 again (restored): decided there already, it goes on.
    assert pbt.decide(2, 2, {"loss": 0.2}, exploit.config) == TrialScheduler.CONTINUE


def test_the_decisions_are_seeded() -> None:
    def decisions(seed: int) -> list[Exploit]:
        pbt = _pbt(seed=seed)
        for n in range(8):
            pbt.decide(n, 2, {"loss": float(n + 1)}, _config(0.01 * (n + 1)))  # each newcomer the worst
        return pbt.exploits

    assert len(decisions(5)) == 7 and decisions(5) == decisions(5)
    assert decisions(5) != decisions(6)


def test_explore_stays_in_the_space_and_moves_only_what_it_mutates() -> None:
    pbt = _pbt(mutate=["lr", "units", "schedule"], resample_probability=0.0, factors=(0.5, 2.0))
    rng = np.random.default_rng(0)
    for _ in range(200):
        new = pbt.explore(_config(0.4), rng)
        assert SPACE.contains(new) and new["wd"] == 0.01
        assert new["lr"] in (0.2, 0.5)  # 0.4 * 2 clipped to the space's 0.5
        assert new["units"] in (8, 32) and new["schedule"] in ("constant", "cosine")
    assert _pbt().mutate == ["lr", "wd"]  # by default the floats: what a checkpoint can go on with


def test_no_copy_without_a_kept_checkpoint_and_low_ranked_copies_are_dropped() -> None:
    pbt = _pbt()
    dropped: list[tuple[int, int]] = []
    pbt.bind(lambda n, step: n != 0, lambda e: None, lambda n, step: dropped.append((n, step)))
    assert pbt.decide(0, 2, {"loss": 0.1}, _config(0.1)) == TrialScheduler.CONTINUE  # best, but kept no checkpoint
    assert pbt.decide(1, 2, {"loss": 0.9}, _config(0.2)) == TrialScheduler.CONTINUE  # nothing to copy
    for n, loss in ((2, 0.3), (3, 0.4), (4, 0.5)):
        pbt.decide(n, 2, {"loss": loss}, _config(0.1))
    assert (1, 2) in dropped and (2, 2) not in dropped  # the bottom half's copies go


def test_a_resumed_pbt_rebuilds_its_values_and_reissues_the_trial_it_had_paused() -> None:
    pbt = _pbt()
    pbt.replay([{"number": 0, "step": 2, "metrics": {"loss": 0.5}}, {"number": 1, "step": 2, "metrics": {"loss": 0.7}},
                {"number": 1, "step": 3, "metrics": {"loss": 0.6}}], paused={1: 2})
    assert pbt.recorded[2] == {0: [0.5], 1: [0.7]}
    assert pbt.next_promotion() == 1
    # Trial 0 (recorded before the resume) can be copied: the engine finds its checkpoint and its config then.
    applied: list[Exploit] = []
    pbt.bind(lambda n, step: True, applied.append, None, lambda n, step: _config(0.1) if n == 0 else None)
    assert pbt.decide(2, 2, {"loss": 0.9}, _config(0.3)) == TrialScheduler.STOP
    assert [(e.number, e.donor, e.step) for e in applied] == [(2, 0, 2)]


class Killed(BaseException):
    """The driver dies here (raised by the store around its write of an exploit, as a SIGKILL would cut it)."""


@pytest.mark.parametrize("killed", ["before", "after"])
def test_a_driver_killed_around_an_exploits_store_write_leaves_checkpoint_and_lineage_agreeing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed: str
) -> None:
    """The exploit's copy is staged, the store records it, then the copy is swapped in; a resume (a new recorder)
    swaps in a copy the store recorded and drops one it did not: the trial never goes on from the donor's
    checkpoint under its own config and lineage, nor from its own under the donor's."""
    from automl.recorder import Recorder
    from tests.driver_fakes import LOSS, SPACE, Driver, Scripted

    def pbt() -> PopulationBasedTraining:
        return PopulationBasedTraining([LOSS], max_budget=4, space=SPACE, interval=2, seed=0)

    driver = Driver(tmp_path, Scripted(), max_budget=4, scheduler=pbt())
    trials = [driver.start() for _ in range(3)]
    write = driver.store.save_trial

    def dies(run_id: int, number: int, **fields: Any) -> None:
        if "lineage" in fields and killed == "before":
            raise Killed
        write(run_id, number, **fields)
        if "lineage" in fields:
            raise Killed

    monkeypatch.setattr(driver.store, "save_trial", dies)
    for trial, loss in zip(trials, (0.5, 0.1, 0.9)):
        (driver.checkpoint(trial.number) / "state").write_text(f"trial {trial.number}")
        if trial.number < 2:
            driver.report(trial, 2, loss)
    with pytest.raises(Killed):
        driver.report(trials[2], 2, 0.9)  # the worst of three copies trial 1, the best
    monkeypatch.undo()
    Recorder(driver.store, driver.run_id, run_dir=tmp_path, metric_keys={"loss"}, primary=LOSS, max_budget=4,
             notify=lambda row: None, counts=driver.counts, adapter=driver.adapter, rungs=pbt())  # the resume
    row = driver.row(2)
    checkpoint = tmp_path / "trials" / "00002" / "checkpoint" / "state"
    if killed == "before":
        assert not row.lineage and row.config == {"x": 0.02} and checkpoint.read_text() == "trial 2"
    else:
        assert [(e.donor, e.step) for e in row.lineage] == [(1, 2)] and row.config != {"x": 0.02}
        assert checkpoint.read_text() == "trial 1"
    assert sorted(p.name for p in (tmp_path / "trials" / "00002").iterdir() if "checkpoint" in p.name) == ["checkpoint"]
    driver.close()


@pytest.mark.parametrize(("options", "message"), [
    ({"interval": 8}, "interval must be an integer from 1 to 7"),
    ({"quantile": 0.7}, r"quantile must be in \(0, 0.5\]"),
    ({"mutate": ["lr", "momentum"]}, r"mutate names \['momentum'\], not in the space"),
    ({"factors": [0]}, "factors must be positive"),
])
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _pbt(**options)


def test_validate_refuses_pbt_for_a_trainer_that_saves_no_checkpoint(write_spec: Callable[..., Path]) -> None:
    spec = write_spec("""
task: classification
data: {dataset: digits}
trainer: {name: sklearn, params: {steps: 4}}
scheduler: {name: pbt}
space:
  model: {type: choice, values: [hgb]}
  learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
objectives: [{metric: accuracy, mode: max}]
""")
    with pytest.raises(SpecError, match="trainer 'sklearn' saves none") as info:
        automl.validate(spec, data=False)
    assert "scheduler" in str(info.value)


def test_what_the_engine_passes_pbt_is_no_spec_option(write_spec: Callable[..., Path]) -> None:
    from automl.plugins import get_plugin_manager

    record = get_plugin_manager().schedulers.get("pbt")
    assert set(record.engine_arguments()) == {"space", "trainer", "seed"}
    assert not {"space", "trainer", "seed"} & set(record.option_names())
    spec = write_spec(LOOP_SPEC.replace("resample_probability: 0.0}", "resample_probability: 0.0, seed: 4}"))
    with pytest.raises(SpecError, match="has no option 'seed'"):
        automl.validate(spec, data=False)


LOOP_SPEC = """
name: pbt
trainer:
  name: loop
  params: {function: "tests.fixtures.loops:descend", metrics: {loss: min}, steps: 6}
searcher: {name: grid}
scheduler: {name: pbt, options: {interval: 2, quantile: 0.5, resample_probability: 0.0}}
space:
  lr: {type: float, low: 0.001, high: 0.4, log: true, grid: [0.3, 0.01, 0.001]}
objectives: [{metric: loss, mode: min}]
resources: {max_concurrent: 1}
budget: {trials: 3}
seed: 3
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_pbt_search_copies_the_best_checkpoint_and_records_the_lineage(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    # One trial at a time, the best lr first: each later trial is the worst at step 2 when it gets there, so it copies
    # trial 0's checkpoint of step 2 (the top one of 2 or 3: k = 1) and goes on with trial 0's lr times 0.8 or 1.2.
    run = automl.search(write_spec(LOOP_SPEC), out=tmp_path / "run")
    rows = {r.number: r for r in run.trials()}
    assert [rows[n].status for n in range(3)] == ["completed"] * 3, [(r.status, r.error) for r in rows.values()]
    assert rows[0].lineage == ()
    for n, lr in ((1, 0.01), (2, 0.001)):
        first = rows[n].lineage[0]
        assert (first.donor, first.step, first.previous) == (0, 2, {"lr": lr})
        assert first.config["lr"] in (pytest.approx(0.3 * 0.8), pytest.approx(0.3 * 1.2))
        assert rows[n].config == rows[n].lineage[-1].config  # the store's config is the one it ended with
        assert [s.step for s in run.steps(n)] == [1, 2, 3, 4, 5, 6]
        # From trial 0's weights at step 2: far better than its own lr could have reached.
        assert rows[n].metrics["loss"] < 0.01
    assert (tmp_path / "run" / "trials" / "00000" / "pbt" / "000002").is_dir()
    from automl.html_report import build_report

    page = build_report(tmp_path / "run")
    section = page.split('<h2 id="lineage">', 1)[1].split("<h2", 1)[0]
    assert "<tr><td>1</td><td>2</td><td>0</td><td>lr 0.01 -&gt; " in section  # escaped, as every text of the page
    assert "<tr><td>2</td><td>2</td><td>0</td><td>lr 0.001 -&gt; " in section
