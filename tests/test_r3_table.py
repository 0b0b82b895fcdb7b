"""R3 as a table of recorded learning curves (benchmarks/scheduling/r3_table.py): a point of the unit cube is
answered with the nearest recorded configuration's curve, and the multi-fidelity figure runs on it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("automl_bench")
pytest.importorskip("sklearn")

from benchmarks.scheduling.r3_table import ROOT, SPEC, NoisyTableTask, TableTask, _plan, replay_rows  # noqa: E402


def _table(n: int = 30, spec: Path = SPEC) -> dict:
    space = _plan(spec.read_text(), str(spec)).space
    configs = [space.sample(np.random.default_rng([0, i])) for i in range(n)]
    finals = np.linspace(0.5, 0.99, n)
    return {"spec": spec.read_text(), "source": str(spec.relative_to(ROOT)), "max_budget": 27,
            "configs": configs, "values": [[float(f * (e + 1) / 27) for e in range(27)] for f in finals],
            "seconds": [[0.1] * 27 for _ in finals]}


def test_a_point_gets_the_curve_of_the_nearest_recorded_configuration() -> None:
    table = _table()
    task = TableTask(table)
    loss = task.function()
    for i in (0, 7, 29):
        point = dict(zip(task.names, task.encode(table["configs"][i]), strict=True))
        assert loss(point, 27)["loss"] == pytest.approx(1 - table["values"][i][-1])
        assert loss(point, 3)["loss"] == pytest.approx(1 - table["values"][i][2])
    assert task.optimum == pytest.approx(1 - 0.99)
    assert task.target_loss(0.1) == pytest.approx(sorted(1 - np.linspace(0.5, 0.99, 30))[2])  # a recorded value


def test_the_noisy_table_answers_a_point_with_one_of_its_nearest_configurations_trainings() -> None:
    """Several trainings per configuration (retrain's curves): a point gets one of them, drawn from the point, the
    same one every time; failed or short retrainings are not among them; targets count every training."""
    table = _table()
    shifted = [[[v - 0.01 * (r + 1) for v in table["values"][i]] for r in range(3)] for i in range(30)]
    rows = [{"row": i, "curves": shifted[i], "failed": [None, None, None]} for i in range(30)]
    rows[4] = {"row": 4, "curves": [shifted[4][0], shifted[4][1][:5], shifted[4][2]], "failed": [None, "nan", "x"]}
    task = NoisyTableTask(table, {"rows": rows})
    assert [len(t) for t in task.trainings] == [4] * 4 + [2] + [4] * 25
    assert len(task.losses) == 4 * 29 + 2
    loss = task.function()
    own = np.asarray(task.encode(table["configs"][7]))
    finals = set()
    for k in range(40):  # points around configuration 7, each nearest to it
        point = dict(zip(task.names, np.clip(own + 1e-6 * k, 0, 1), strict=True))
        assert task.nearest(point) == 7
        final = loss(point, 27)["loss"]
        assert any(final == pytest.approx(1 - table["values"][7][-1] + 0.01 * r) for r in range(4))
        assert loss(point, 27)["loss"] == final and loss(point, 3)["loss"] == pytest.approx(task.training(point)[2])
        finals.add(round(final, 6))
    assert len(finals) > 1  # the draw differs between points
    point = dict(zip(task.names, task.encode(table["configs"][4]), strict=True))
    assert any(loss(point, 27)["loss"] == pytest.approx(1 - c[-1]) for c in (table["values"][4], shifted[4][0]))


@pytest.mark.parametrize("name", ["torch-mlp-digits.yaml", "torch-cnn-mnist-asha.yaml"])
def test_the_tables_spaces_are_unit_cubes_of_their_numeric_parameters(name: str) -> None:
    """The 28x28 CNN spec's space is recordable as a table too: every parameter has an axis, every recorded
    configuration encodes into [0, 1] and back onto itself."""
    spec = ROOT / "searchspaces" / name
    table = _table(spec=spec)
    task = TableTask(table)
    assert task.names == list(_plan(spec.read_text(), str(spec)).space)
    points = np.asarray([task.encode(c) for c in table["configs"]])
    assert points.shape == (30, len(task.names)) and points.min() >= 0.0 and points.max() <= 1.0
    for i in (0, 11, 29):
        assert task.nearest(dict(zip(task.names, points[i], strict=True))) == i


def test_the_figure_runs_the_engines_methods_and_the_replay_on_the_table() -> None:
    from automl_bench.mf_figure import figure

    task = TableTask(_table())
    text = figure([task], ["rungs:random+fifo", "rungs:random+asha"], [0, 1], 4,
                  extra_rows=lambda t, targets, budget: replay_rows(t, targets, budget, orderings=20))
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["| method", "| rungs:random+fifo", "| rungs:random+asha", "| replay:random+fifo",
                    "| replay:random+asha", "| replay:random+asha-promotion"]
    assert "108 epochs" in text  # 4 full trials of 27 epochs


def test_the_surrogate_task_answers_a_point_with_its_own_predicted_curve_and_targets_from_its_samples() -> None:
    from benchmarks.scheduling.r3_table import SurrogateTask

    table = _table()
    task = SurrogateTask(table, samples=400)
    loss = task.function()
    # The point a search's unit cube maps onto recorded configuration 7 (the space's own inverse map): it gets
    # configuration 7's recorded curve back.
    point = {n: task.params[n].to_unit(table["configs"][7][n]) for n in task.names}
    assert loss(point, 27)["loss"] == pytest.approx(1 - table["values"][7][-1], rel=1e-6)
    assert loss(point, 3)["loss"] == pytest.approx(1 - table["values"][7][2], rel=1e-6)
    other = {n: 0.37 for n in task.names}  # not a recorded configuration: a curve of its own, deterministic
    assert loss(other, 27) == SurrogateTask(table, samples=400).function()(other, 27)
    assert task.losses.shape == (400, 27)
    assert task.optimum == pytest.approx(task.losses[:, -1].min())
    assert task.target_loss(0.05) == pytest.approx(np.quantile(task.losses[:, -1], 0.05, method="lower"))
    assert 1 - 0.99 - 1e-9 <= task.target_loss(0.05) <= 1 - 0.5 + 1e-9


def test_the_replay_in_seconds_equals_the_replay_in_epochs_when_every_epoch_costs_the_same() -> None:
    from benchmarks.scheduling.r3_table import replay_seconds

    text = replay_seconds(_table(), [0.1], start_s=0.0, orderings=30)  # every recorded epoch took 0.1 s
    row = text.splitlines()[-1]
    ratios = re.findall(r"\((\d+\.\dx)\)", row)
    assert len(ratios) == 4 and ratios[0] == ratios[1] and ratios[2] == ratios[3]
    slower = replay_seconds(_table(), [0.1], start_s=5.0, orderings=30).splitlines()[-1]
    assert re.findall(r"\((\d+\.\dx)\)", slower)[2] != ratios[2]  # restarts cost the promotion type seconds
