"""A faulty plugin is reported and the rest runs (the pytest pattern): each fault of a third-party plugin ends
in one clear line naming its package, with the exit code documented in docs/plugins.md ("When a plugin fails"),
and nothing completed is lost.

The plugins are the small packages of ``tests/fixtures/plugins``, installed through entry points by the
``fixture_plugins`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from automl.cli import run as cli
from automl.errors import PluginError
from automl.plugins import PluginManager
from automl.run import Run
from automl.store import Store
from tests.conftest import PluginSite

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name: isolation
trainer:
  name: function
  params: {{function: "tests.fixtures.objectives:quadratic", metrics: {{loss: min, cost: min}}}}
searcher: {{name: {searcher}}}
space:
  x: {{type: float, low: 0.0, high: 1.0, step: 0.05}}
objectives:
  - {{metric: loss, mode: min}}
budget: {{trials: {trials}}}
seed: 2
"""


def one_error_line(err: str) -> str:
    """The single line a CLI failure prints (no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def automl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "automl.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


# -- loading: broken, misspelled, clashing --------------------------------------------------------------------


def test_misspelled_hook_is_listed_with_did_you_mean_and_its_package_and_loads_nothing(
    fixture_plugins: Callable[..., PluginSite], capsys: pytest.CaptureFixture[str]
) -> None:
    fixture_plugins("misspelled-hook", "recorder")
    pm = PluginManager()
    typo = next(p for p in pm.plugins() if p.package == "fixture-misspelled-hook")
    assert typo.error == ("unknown hook 'automl_register_searcher' (did you mean 'automl_register_searchers'?); "
                          "nothing from this plugin is loaded")
    # Its valid hook is not registered either: the plugin is refused whole.
    assert all(i.plugin_name != "misspelled-hook" for i in pm.pm.hook.automl_search_end.get_hookimpls())
    assert {"random", "grid"} <= set(pm.searchers.names())  # every other plugin works
    assert cli(["plugins"]) == 0
    out, err = capsys.readouterr()
    assert "broken: fixture-misspelled-hook 0.1.0 (entry point 'misspelled-hook'): unknown hook " \
           "'automl_register_searcher' (did you mean 'automl_register_searchers'?)" in err
    assert "fixture-recorder" in out  # the healthy plugin is listed with its hooks
    with pytest.raises(PluginError, match="typo-searcher.*fixture-misspelled-hook.*did you mean"):
        pm.searchers.get("typo-searcher")


def test_plugin_that_fails_to_import_is_listed_and_named_by_an_unknown_name(
    fixture_plugins: Callable[..., PluginSite], write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fixture_plugins("import-error")
    assert cli(["plugins", "--json"]) == 0
    infos = {i["package"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos["fixture-import-error"]["error"] == (
        "failed to import: ModuleNotFoundError: No module named 'automl_fixture_library_that_is_not_installed'")
    assert cli(["validate", str(write_spec(SPEC.format(searcher="needs-lib", trials=2)))]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "unknown searcher 'needs-lib'" in line
    assert "Plugins that failed to load: fixture-import-error 0.1.0 (entry point 'import-error'): failed to " \
           "import: ModuleNotFoundError" in line


def test_a_name_clash_fails_only_the_specs_that_use_the_name(
    fixture_plugins: Callable[..., PluginSite], write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixture_plugins("clash-random")
    assert cli(["plugins"]) == 0
    err = capsys.readouterr().err
    assert ("clash: two plugins register the searcher 'random': fixture-clash-random 0.1.0 (entry point "
            "'clash-random') and automl (built in, automl.builtin.searchers); disable one to use the name: "
            "AUTOML_DISABLE_PLUGINS=clash-random (or --disable-plugin clash-random); specs using another name are "
            "not affected") in err
    # Specs not using the name run; its other name works.
    for searcher in ("grid", "clash-only"):
        assert cli(["validate", str(write_spec(SPEC.format(searcher=searcher, trials=2)))]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert cli(["validate", str(write_spec(SPEC.format(searcher="random", trials=2)))]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "searcher.name: two plugins register the searcher 'random': fixture-clash-random 0.1.0 (entry point " \
           "'clash-random') and automl (built in, automl.builtin.searchers); disable one to use the name: " \
           "AUTOML_DISABLE_PLUGINS=clash-random" in line
    # Following the advice fixes it.
    monkeypatch.setenv("AUTOML_DISABLE_PLUGINS", "clash-random")
    assert cli(["validate", str(write_spec(SPEC.format(searcher="random", trials=2)))]) == 0


# -- observer hooks --------------------------------------------------------------------------------------------


def test_a_raising_observer_is_recorded_once_and_stops_no_other(
    fixture_plugins: Callable[..., PluginSite], caplog: pytest.LogCaptureFixture
) -> None:
    fixture_plugins("raising-result", "raising-end", "recorder")
    pm = PluginManager()
    failures = pm.observe()
    with caplog.at_level(logging.WARNING, logger="automl"):
        for number in range(3):
            pm.notify("automl_trial_result", run=None, trial={"number": number, "status": "completed"})
        pm.notify("automl_search_end", run=type("R", (), {"run_id": 7})())
    from fixture_recorder.plugin import CALLS  # type: ignore[import-not-found]

    calls = list(CALLS)
    assert calls == [("automl_trial_result", f"{n} completed") for n in range(3)] + [("automl_search_end", 7)]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        "automl: plugin fixture-raising-result==0.1.0 (raising-result): automl_trial_result raised RuntimeError: "
        "the tracking server is down; the search goes on (its later failures are counted in the run's summary, "
        "--strict-plugins makes them fatal)",
        "automl: plugin fixture-raising-end==0.1.0 (raising-end): automl_search_end raised ValueError: cannot "
        "write the report; the search goes on (its later failures are counted in the run's summary, "
        "--strict-plugins makes them fatal)",
    ]
    errors = {e["hook"]: e for e in failures.summary()["plugin_errors"]}
    assert errors["automl_trial_result"]["count"] == 3
    assert errors["automl_trial_result"]["package"] == "fixture-raising-result==0.1.0"
    assert errors["automl_search_end"]["error"] == "ValueError: cannot write the report"


def test_strict_makes_a_raising_observer_fatal_with_one_line(fixture_plugins: Callable[..., PluginSite]) -> None:
    fixture_plugins("raising-result")
    pm = PluginManager()
    failures = pm.observe(strict=True)
    with pytest.raises(PluginError) as info:
        pm.notify("automl_trial_result", run=None, trial={"number": 0, "status": "running"})
    assert str(info.value).startswith("plugin fixture-raising-result==0.1.0 (raising-result): automl_trial_result "
                                      "raised RuntimeError: the tracking server is down; stopped by --strict-plugins")
    # Tune wraps what its callbacks raise; the engine raises the recorded error instead.
    with pytest.raises(PluginError, match="--strict-plugins"):
        try:
            raise RuntimeError("wrapped by Ray Tune")
        except RuntimeError:
            failures.reraise()


def test_a_registration_hook_returning_no_records_is_listed_and_the_rest_loads(
    fixture_plugins: Callable[..., PluginSite], capsys: pytest.CaptureFixture[str]
) -> None:
    fixture_plugins("bad-record")
    pm = PluginManager()
    assert "function" in pm.trainers.names()
    bad = next(p for p in pm.plugins() if p.package == "fixture-bad-record")
    assert bad.error == ("automl_register_trainers returned a dict, not a TrainerSpec; nothing of this kind from "
                         "it is loaded")
    assert cli(["plugins"]) == 0
    assert "broken: fixture-bad-record 0.1.0 (entry point 'bad-record'): automl_register_trainers returned a dict" \
           in capsys.readouterr().err


def test_a_store_plugin_that_raises_is_named_and_the_other_stores_open(
    fixture_plugins: Callable[..., PluginSite], tmp_path: Path
) -> None:
    fixture_plugins("raising-store")
    pm = PluginManager()
    with pytest.raises(PluginError) as info:
        pm.open_store("broken://db")
    assert str(info.value) == ("plugin fixture-raising-store 0.1.0 (entry point 'raising-store') raised in "
                               "automl_open_store for 'broken://db': ConnectionError: cannot reach the store server")
    assert isinstance(pm.open_store(f"sqlite:///{tmp_path / 'a.db'}"), Store)


# -- resume or export of a run whose plugin is gone --------------------------------------------------------------


def _fake_run(directory: Path, versions: dict[str, str], spec_text: str) -> None:
    """A run directory as a search leaves it, without running one (the check happens before any trial)."""
    directory.mkdir(parents=True)
    url = f"sqlite:///{directory / 'automl.db'}"
    store = Store(url)
    run_id = store.create_run(name="gone", directory=str(directory), spec_text=spec_text, spec_hash="x", seed=2,
                              objectives={"objectives": [{"metric": "loss", "mode": "min"}], "constraints": []},
                              versions=versions)
    store.finish_run(run_id, "failed")
    store.close()
    (directory / "run.json").write_text(json.dumps({"store": url, "run_id": run_id, "spec": None}))


def test_resume_of_a_run_whose_plugin_is_gone_names_the_recorded_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    _fake_run(run_dir, {"automl": "automl==0.1.0", "searcher:fixture-random": "fixture-extra-searcher==0.3.0",
                        "trainer:function": "automl==0.1.0"}, SPEC.format(searcher="fixture-random", trials=2))
    assert cli(["resume", str(run_dir)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"error: cannot resume {run_dir}: the run used the searcher 'fixture-random' from "
                    "fixture-extra-searcher==0.3.0; fixture-extra-searcher is not installed: "
                    "pip install 'fixture-extra-searcher==0.3.0'")


def test_export_of_a_run_whose_trainer_is_gone_names_the_recorded_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    spec = SPEC.format(searcher="random", trials=1).replace('name: function', 'name: gone')
    _fake_run(run_dir, {"trainer:gone": "fixture-gone-trainer==2.1.0"}, spec)
    assert cli(["export", str(run_dir), "--trial", "0", "--format", "no-such-format"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "the 'gone' trainer is not available: the run used it from fixture-gone-trainer==2.1.0; " \
           "fixture-gone-trainer is not installed: pip install 'fixture-gone-trainer==2.1.0'" in line


def test_resume_of_a_run_whose_plugin_is_disabled_or_broken_says_so(
    fixture_plugins: Callable[..., PluginSite], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixture_plugins("extra-searcher")
    pm = PluginManager(disabled=["extra-searcher"])
    with pytest.raises(PluginError, match=r"from fixture-extra-searcher==0\.3\.0; fixture-extra-searcher is "
                                          r"disabled \(AUTOML_DISABLE_PLUGINS or --disable-plugin: extra-searcher\)"):
        pm.check_recorded({"searcher:fixture-random": "fixture-extra-searcher==0.3.0"}, "resume r")
    PluginManager().check_recorded({"searcher:fixture-random": "fixture-extra-searcher==0.3.0"}, "resume r")
    site = fixture_plugins()
    (site.path / "fixture_extra_searcher" / "plugin.py").write_text("raise ImportError('half uninstalled')\n")
    with pytest.raises(PluginError, match="fixture-extra-searcher is installed but failed to load: failed to "
                                          "import: ImportError: half uninstalled"):
        PluginManager().check_recorded({"searcher:fixture-random": "fixture-extra-searcher==0.3.0"}, "resume r")


# -- end to end: a search with faulty observers --------------------------------------------------------------------


@pytest.mark.slow
def test_search_with_raising_observers_finishes_and_records_them(
    fixture_plugins: Callable[..., PluginSite], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    site = fixture_plugins("raising-result", "raising-end", "recorder")
    calls = tmp_path / "calls.txt"
    out = tmp_path / "run"
    done = automl("search", str(write_spec(SPEC.format(searcher="random", trials=3))), "--out", str(out),
                  env=site.env(AUTOML_NUM_CPUS="2", FIXTURE_RECORDER_FILE=str(calls)))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warned = [line for line in done.stderr.splitlines() if "the search goes on" in line]
    assert len(warned) == 2  # one line per plugin and hook, however often it raised
    assert any("fixture-raising-result==0.1.0 (raising-result): automl_trial_result raised" in w for w in warned)
    assert any("fixture-raising-end==0.1.0 (raising-end): automl_search_end raised" in w for w in warned)
    run = Run.open(out)
    assert sorted(t["status"] for t in run.trials()) == ["completed"] * 3
    errors = {e["hook"]: e for e in run.info()["summary"]["plugin_errors"]}
    assert errors["automl_trial_result"]["count"] >= 3 and errors["automl_search_end"]["count"] == 1
    recorded = calls.read_text().splitlines()
    assert sum(line.endswith("completed") for line in recorded) == 3 and recorded[-1].startswith("automl_search_end")


@pytest.mark.slow
def test_strict_plugins_stops_with_one_line_and_resume_finishes_the_budget(
    fixture_plugins: Callable[..., PluginSite], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    site = fixture_plugins("raising-result")
    out = tmp_path / "run"
    spec = write_spec(SPEC.format(searcher="random", trials=4))
    env = site.env(AUTOML_NUM_CPUS="2")
    failed = automl("search", str(spec), "--out", str(out), "--strict-plugins", env=env)
    assert failed.returncode == 2
    line = [x for x in failed.stderr.splitlines() if x.startswith("error:")]
    assert "Traceback" not in failed.stderr and len(line) == 1, failed.stderr
    assert line[0].startswith("error: plugin fixture-raising-result==0.1.0 (raising-result): automl_trial_result "
                              "raised RuntimeError: the tracking server is down; stopped by --strict-plugins")
    run = Run.open(out)
    assert run.status == "failed" and run.info()["summary"]["plugin_errors"][0]["plugin"] == "raising-result"
    before = {t["number"]: t for t in run.trials() if t["status"] == "completed"}
    resumed = automl("resume", str(out), env={**env, "AUTOML_DISABLE_PLUGINS": "raising-result"})
    assert resumed.returncode == 0, resumed.stderr
    trials = {t["number"]: t for t in Run.open(out).trials()}
    assert sorted(trials) == [0, 1, 2, 3] and {t["status"] for t in trials.values()} == {"completed"}
    for number, t in before.items():  # nothing completed before the stop is lost or run again
        assert trials[number]["finished_at"] == t["finished_at"]
