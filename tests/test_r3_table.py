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


def _noisy() -> NoisyTableTask:
    """30 configurations, each trained 4 times: the recorded curve and 3 retrainings 0.01, 0.02, 0.03 lower."""
    table = _table()
    rows = [{"row": i, "curves": [[v - 0.01 * (r + 1) for v in table["values"][i]] for r in range(3)],
             "failed": [None] * 3} for i in range(30)]
    return NoisyTableTask(table, {"rows": rows})


def test_the_ceiling_counts_hits_over_every_training_and_prices_the_best_region() -> None:
    """The 4th-best of 120 final losses is the target: configuration 29 reaches it in 3 trainings of 4 (0.99, 0.98,
    0.97), configuration 28 in 1 (0.9731): 4 hits in 120, fifo pays 27 x 30 = 810 epochs per hit; random full
    trainings within the best 3 configurations hit at (0.75 + 0.25 + 0) / 3."""
    from benchmarks.scheduling.r3_table import ceiling

    text = ceiling(_noisy(), 1 / 30)
    assert "3.3% of 120 trainings of 30 configurations reach it" in text
    assert "ERT 810 epochs per hit, so 10x is 81. 2 configurations ever reach it, 1 in at least half" in text
    assert "best hit rates: 0.75, 0.25." in text
    assert "| best 3 configurations (10.0%) | 0.33 | 81 | 10.0x | 0 epochs |" in text
    assert "| best 6 configurations (20.0%) | 0.17 | 162 | 5.0x | -81 epochs |" in text
    assert "epoch 1: the rank quantiles of the 1 configurations hitting at least half the time, by one training's " \
           "value: 0.00" in text


def test_the_ert_counts_a_miss_as_the_whole_budget() -> None:
    from automl_bench.engine_methods import make_engine_method
    from automl_bench.mf_figure import cost_to_target

    from benchmarks.scheduling.r3_table import RF6, ert_rows

    task, seeds, cost = _noisy(), [0, 1, 2, 3, 4, 5], 1
    target = task.target_loss(0.3)  # the top 30% of trainings: one full trial (27 epochs) reaches it or not
    text = ert_rows(task, ["rungs:random+fifo", RF6[1]], seeds, cost, 0.3)
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in text.splitlines() if line.startswith("| rungs")}
    assert list(rows) == ["rungs:random+fifo", "rungs:tpe+asha-promotion[reduction_factor=6]"]
    assert "exact ERT 90 epochs" in text and "27 epochs per run at most" in text  # 27 / (36 hits in 120)
    # The same runs again, by hand: a seed that misses costs the whole budget (27 epochs).
    costs = [cost_to_target(make_engine_method("rungs:random+fifo").run(task, iterations=cost, batch=1, seed=s), target)
             for s in seeds]
    hits = [c for c in costs if c is not None]
    assert 0 < len(hits) < len(seeds)  # these seeds both hit and miss
    assert rows["rungs:random+fifo"][0] == f"{len(hits)}/6"
    expected = (sum(hits) + 27 * (6 - len(hits))) / len(hits)
    assert rows["rungs:random+fifo"][2].startswith(f"{expected:.0f} ({90 / expected:.1f}x)")


def test_the_screen_bound_keeps_the_share_that_the_first_epoch_ranks_perfectly() -> None:
    """100 trials whose every epoch ranks them as their final value does, the best 10 hitting: keeping the best 10%
    at epoch 1 and all of them after costs 1 / 0.1 + 26 = 36 epochs per survivor, every survivor hits (fifo: 270)."""
    from benchmarks.scheduling.r3_table import _screen_bound

    losses = np.repeat((np.arange(100) / 100)[:, None], 27, axis=1)
    text = _screen_bound(losses, 0.095, 27)
    assert "best keep shares 0.1, 1, 1; 100% of the survivors hit): ERT 36 epochs, 7.5x" in text


def test_an_unknown_method_or_a_run_without_seeds_is_refused_with_exit_code_2(tmp_path: Path, capsys) -> None:
    import json

    from benchmarks.scheduling.r3_table import main

    table = _table()
    rows = [{"row": i, "curves": [table["values"][i]], "failed": [None]} for i in range(30)]
    (tmp_path / "t.json").write_text(json.dumps(table))
    (tmp_path / "r.json").write_text(json.dumps({"rows": rows}))
    common = ["ert", str(tmp_path / "t.json"), "--repeats", str(tmp_path / "r.json")]
    for argv, said in ((common + ["--methods", "rungs:bogus+asha", "--seeds", "1"], "unknown searcher 'bogus'; available:"),
                       (common + ["--methods", "rungs:random+fifo", "--seeds", "0"], "--seeds and --cost must be at least 1"),
                       (["figure", str(tmp_path / "t.json"), "--methods", "rungs:random+bogus", "--seeds", "1"],
                        "unknown scheduler 'bogus'; available:")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert said in capsys.readouterr().err
