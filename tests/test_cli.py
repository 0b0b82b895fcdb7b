"""Bad input through the CLI: one clear message, exit code 2, no traceback (unless --debug)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from automl.cli import main
from automl.cli import run as cli
from automl.errors import SpecError

GOOD = """
task: classification
data: {dataset: iris}
trainer: {name: sklearn}
space:
  model: {type: choice, values: [knn, tree]}
objectives: [{metric: accuracy, mode: max}]
"""


def automl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "automl.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "text, words",
    [
        ("task: [unclosed\n", "YAML syntax error"),
        (GOOD.replace("trainer:", "trainr:"), "did you mean 'trainer'"),
        (GOOD.replace("name: sklearn", "name: nope"), "unknown trainer 'nope'"),
        (GOOD.replace("dataset: iris", "dataset: nope"), "unknown dataset 'nope'"),
    ],
)
def test_bad_specs_exit_2_with_one_message(write_spec: Callable[[str], Path], text: str, words: str) -> None:
    path = write_spec(text)
    for command in ("validate", "search"):
        result = automl(command, str(path))
        assert result.returncode == 2, result.stderr
        assert words in result.stderr
        assert "Traceback" not in result.stderr
        assert str(path) in result.stderr


def test_missing_spec_file() -> None:
    result = automl("search", "/nonexistent.yaml")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(write_spec: Callable[[str], Path]) -> None:
    with pytest.raises(SpecError):
        cli(["--debug", "validate", str(write_spec(GOOD.replace("trainer:", "trainr:")))])


def test_validate_ok_and_negative_trials(write_spec: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(GOOD)
    assert cli(["validate", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
    assert cli(["search", str(path), "--trials", "-1"]) == 2
    assert "--trials must be positive" in capsys.readouterr().err


def test_show_on_a_directory_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["show", str(tmp_path)]) == 2
    assert "holds no automl run" in capsys.readouterr().err


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "automl search spec"


@pytest.mark.parametrize("command", [[], *[[name] for name in sorted(main.commands)]])
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli([*command, "--help"]) == 0
    assert "Usage:" in capsys.readouterr().out


def test_a_data_error_leaves_no_run_directory(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 2},same" for i in range(20))
    (tmp_path / "one-class.csv").write_text("a,b,label\n" + rows + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD.replace("dataset: iris", "csv: one-class.csv, target: label"))
    out = tmp_path / "run"
    result = automl("search", str(spec), "--out", str(out))
    assert result.returncode == 2 and "single class" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_show_names_each_trials_node_where_the_trials_ran_on_several(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from automl.cli import _node_labels
    from tests.test_export import make_run

    one, other = "0f3c9a21" + "0" * 48, "7be4d210" + "1" * 48  # Ray node ids: 56 hex digits
    trials = [{"number": n, "status": "completed", "config": {"x": n}, "metrics": {"loss": 1.0, "cost": 1.0},
               "node": node} for n, node in enumerate([one, other, one])]
    assert cli(["show", str(make_run(tmp_path / "two", [dict(t) for t in trials]))]) == 0
    out = capsys.readouterr().out
    assert "node" in out and out.count("0f3c9a21") == 2 and out.count("7be4d210") == 1 and "0f3c9a210" not in out
    for t in trials:
        t["node"] = one
    assert cli(["show", str(make_run(tmp_path / "one", trials))]) == 0
    out = capsys.readouterr().out
    assert "node" not in out and "0f3c9a21" not in out
    # Ids that share their first 8 digits are told apart by as many as it takes.
    assert _node_labels(["a1b2c3d4e5" + "0" * 46, None, "a1b2c3d4f6" + "1" * 46]) == {
        "a1b2c3d4e5" + "0" * 46: "a1b2c3d4e", "a1b2c3d4f6" + "1" * 46: "a1b2c3d4f"}


def test_resume_dashboard_serves_the_run_directory_and_stops_with_the_search(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("starlette")
    import httpx

    # Nothing to resume here: the refusal comes after the dashboard started, which must stop with it.
    assert cli(["resume", str(tmp_path), "--dashboard", "--dashboard-port", "0"]) == 2
    captured = capsys.readouterr()
    address = captured.out.split("dashboard: ", 1)[1].split()[0]
    assert address.startswith("http://127.0.0.1:") and f"(run {tmp_path})" in captured.out
    assert f"serve the run again: automl dashboard {tmp_path}" in captured.out and "Traceback" not in captured.err
    with pytest.raises(httpx.TransportError):
        httpx.get(address + "api/runs", timeout=5)
