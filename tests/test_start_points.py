"""Starting points (issue 20): a spec's ``start:`` and ``automl search --enqueue FILE``, run first and told to
the searcher; points outside the space refused at validate with the file, line and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from automl.cli import run as run_cli
from automl.errors import SpecError

SPEC = """
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:fidelity", metrics: {{loss: min, cost: min}}, steps: {steps}}}
space:
  x: {{type: float, low: 0, high: 1}}
  model: {{type: choice, values: [a, b]}}
  depth: {{type: int, low: 1, high: 5, when: {{model: b}}}}
objectives:
  - {{metric: loss, mode: min}}
{extra}
seed: 1
"""


def spec(write_spec: Callable[..., Path], start: str, *, steps: int = 1, extra: str = "") -> Path:
    return write_spec(SPEC.format(steps=steps, extra=extra) + start)


@pytest.mark.parametrize(("start", "line", "field", "says"), [
    ("start:\n  - {x: 0.5}\n  - {x: 0.5, y: 1}\n", 14, "start[1].y", "'y' is not in the space; its parameters: x, model, depth"),
    ("start:\n  - {x: 1.5}\n", 13, "start[0].x", "1.5 is not a valid value of 'x': a number in [0, 1]"),
    ("start:\n  - {model: c}\n", 13, "start[0].model", "'c' is not a valid value of 'model': one of ['a', 'b']"),
    ("start:\n  - {model: b, depth: 9}\n", 13, "start[0].depth", "an integer in [1, 5]"),
    ("start:\n  - {model: a, depth: 2}\n", 13, "start[0].depth", "'depth' is inactive here: it applies only when model is 'b'"),
])
def test_a_bad_start_point_is_refused_at_validate_naming_its_line_and_field(
    write_spec: Callable[..., Path], start: str, line: int, field: str, says: str
) -> None:
    with pytest.raises(SpecError) as info:
        automl.validate(spec(write_spec, start))
    assert (info.value.line, info.value.field) == (line, field)
    assert says in info.value.message


def test_missing_parameters_are_drawn_seeded_and_the_points_run_first(write_spec: Callable[..., Path]) -> None:
    path = spec(write_spec, "start:\n  - {x: 0.25}\n  - {x: 0.5, model: b}\n  - {model: a, x: 0.0}\n")
    plan = automl.validate(path)
    first, second, third = plan.start
    assert first["x"] == 0.25 and first["model"] in ("a", "b") and plan.space.contains(first)
    assert second["x"] == 0.5 and second["model"] == "b" and 1 <= second["depth"] <= 5
    assert third == {"x": 0.0, "model": "a"}
    assert automl.validate(path).start == plan.start  # the draw is seeded


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in-process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_enqueue_file_is_checked_with_its_own_file_and_line(
    write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = spec(write_spec, "start:\n  - {x: 0.1}\n")
    points = tmp_path / "points.yaml"
    points.write_text("- {x: 0.9, model: b, depth: 2}\n- {x: 0.5, model: a, depth: 3}\n")
    code, _, err = cli(capsys, "validate", str(path), "--enqueue", str(points))
    assert code == 2
    assert f"{points}:2:" in err and "[1].depth" in err and "inactive" in err and "Traceback" not in err
    points.write_text('[{"x": 0.9, "model": "b", "depth": 2}]')  # JSON too
    code, out, err = cli(capsys, "validate", str(path), "--enqueue", str(points))
    assert code == 0, err
    assert "start points: 2" in out and "1: {'x': 0.9, 'model': 'b', 'depth': 2}" in out
    points.write_text("x: 1\n")
    assert "must be a list of configs" in cli(capsys, "validate", str(path), "--enqueue", str(points))[2]


@pytest.mark.parametrize("scheduler", ["asha", "hyperband", "moasha"])
def test_a_rung_scheduler_is_refused_for_a_one_step_trainer(write_spec: Callable[..., Path], scheduler: str) -> None:
    with pytest.raises(SpecError) as info:
        automl.validate(spec(write_spec, "", extra=f"scheduler: {{name: {scheduler}}}"))
    assert info.value.field == "scheduler.name" and "one step per trial" in info.value.message


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_start_points_run_first_and_the_searcher_learns_from_them(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    pytest.importorskip("automl_optuna")
    from automl.engine import SEARCHER_STATE, resume
    from automl.searcher_adapter import SearcherAdapter
    from automl.spec import load_spec
    from automl.start_points import read_start_file, with_enqueued

    path = spec(write_spec, "start:\n  - {x: 0.125, model: a}\n",
                extra="searcher: {name: tpe}\nbudget: {trials: 1}\nresources: {max_concurrent: 1}")
    points = tmp_path / "points.yaml"
    points.write_text("- {x: 0.75, model: b, depth: 4}\n")
    # `--enqueue FILE`: trial 0 is the spec's point; the budget ends before the file's point runs.
    run = automl.search(with_enqueued(load_spec(path), read_start_file(points)), out=tmp_path / "run")
    assert [t["number"] for t in run.trials()] == [0]
    points.unlink()  # the run keeps its points (run.json): `automl resume` runs them, numbered as they were
    run = resume(tmp_path / "run", trials=5)
    configs = {t["number"]: t["config"] for t in run.trials()}
    assert configs[0] == {"x": 0.125, "model": "a"} and configs[1] == {"x": 0.75, "model": "b", "depth": 4}
    assert sorted(configs) == [0, 1, 2, 3, 4]
    state = SearcherAdapter.load_state(run.dir / SEARCHER_STATE)
    assert state is not None
    told = [t.params for t in state["strategy"].study.trials if t.state.is_finished()]
    assert {"x": 0.125, "model": "a"} in told and {"x": 0.75, "model": "b", "depth": 4} in told
