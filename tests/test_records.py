"""The typed records, the ResultsStore protocol, and Run.open through the automl_open_store hook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import automl
from automl.errors import PluginError, StoreError
from automl.hookspecs import hookimpl
from automl.plugin import cli
from automl.plugins import PluginManager, get_plugin_manager
from automl.records import Front, FrontMember, RunRecord, RunStatus, StepRecord, TrialRecord, TrialStatus
from automl.run import FRONT_FILE, RUN_FILE, Run
from automl.store import ResultsStore, Store
from automl.trust import sign

OBJECTIVES = {"objectives": [{"metric": "loss", "mode": "min", "reference": None},
                             {"metric": "cost", "mode": "min", "reference": None}], "constraints": []}


def fill(store: ResultsStore) -> int:
    """A finished-looking run of four trials: 0 and 1 on the front, 2 dominated, 3 failed."""
    run_id = store.create_run(name="r", directory="/x", spec_text="name: r", spec_hash="h", seed=1,
                              objectives=OBJECTIVES, versions={"automl": "automl==0.2.0"})
    rows = [(0, "completed", {"loss": 0.1, "cost": 3.0}), (1, "completed", {"loss": 0.3, "cost": 1.0}),
            (2, "completed", {"loss": 0.5, "cost": 4.0}), (3, "failed", {})]
    for number, status, metrics in rows:
        store.save_trial(run_id, number, status="running", config={"x": number / 10}, started_at=1.0)
        if metrics:
            store.add_step(run_id, number, 1, metrics)
        store.save_trial(run_id, number, status=status, metrics=metrics, budget=1, max_budget=1,
                         error="ValueError: no" if status == "failed" else None)
    return run_id


def make_run_dir(tmp_path: Path, url: str, store: ResultsStore) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_id = fill(store)
    (run_dir / RUN_FILE).write_text(json.dumps({"store": url, "run_id": run_id, "spec": None}))
    sign(run_dir, [RUN_FILE])  # as the engine signs it: its store, outside the directory, is then read
    return run_dir


# -- records -------------------------------------------------------------------------------


def test_the_store_returns_frozen_typed_records(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    run_id = fill(store)
    trials = store.trials(run_id)
    assert all(isinstance(t, TrialRecord) for t in trials)
    first = trials[0]
    assert first.status is TrialStatus.COMPLETED and first.config == {"x": 0.0} and first.metrics["loss"] == 0.1
    assert trials[3].status is TrialStatus.FAILED and trials[3].error == "ValueError: no"
    assert trials[3].metrics == {} and trials[3].timings == {}  # no report: empty, not None
    with pytest.raises(AttributeError):
        first.status = TrialStatus.FAILED  # type: ignore[misc]
    [step] = store.steps(run_id, 1)
    assert step == StepRecord(1, 1, {"loss": 0.3, "cost": 1.0}, step.at)
    run = store.get_run(run_id)
    assert isinstance(run, RunRecord) and run.status is RunStatus.RUNNING and run.versions == {"automl": "automl==0.2.0"}
    assert run.summary == {} and run.objectives == OBJECTIVES


def test_a_trial_record_round_trips_through_its_dict_form() -> None:
    trial = TrialRecord(number=4, status=TrialStatus.STOPPED, config={"x": 1}, metrics={"loss": 0.2}, budget=2,
                        error="stopped by the scheduler", timings={"fit_s": 1.5})
    plain = trial.to_dict()
    assert plain["status"] == "stopped" and type(plain["status"]) is str
    assert json.loads(json.dumps(plain)) == plain
    assert TrialRecord.from_row({**plain, "id": 9, "run_id": 1}) == trial  # store columns it has no field for
    assert trial.replace(status=TrialStatus.COMPLETED).status == "completed" and trial.status == "stopped"
    with pytest.raises(ValueError, match="'done' is not a valid TrialStatus"):
        TrialRecord.from_row({"number": 1, "status": "done"})


def test_statuses_are_strings_and_say_whether_a_trial_is_finished() -> None:
    assert TrialStatus.COMPLETED == "completed" and f"{TrialStatus.FAILED}" == "failed"
    assert {"completed": 1}[TrialStatus.COMPLETED] == 1  # hashes as its string
    assert [s for s in TrialStatus if s.finished] == ["completed", "stopped", "failed"]
    assert [str(s) for s in RunStatus] == ["running", "completed", "failed", "interrupted"]


def test_records_still_read_like_the_dicts_of_0_1() -> None:
    trial = TrialRecord(number=2, status=TrialStatus.COMPLETED, metrics={"loss": 1.0})
    assert trial["number"] == 2 and trial.get("metrics") == {"loss": 1.0} and trial.get("nothing") is None
    assert dict(trial)["status"] == "completed" and "config" in trial
    with pytest.raises(KeyError):
        trial["colour"]


def test_front_has_one_json_form_and_reads_older_files() -> None:
    front = Front(members=(FrontMember(3, {"x": 1}, {"loss": 0.1}, "models/trial-00003-model.onnx"),),
                  reference=[1.0], hypervolume=0.9, candidates=4, feasible=4)
    doc = front.to_dict()
    assert doc["members"] == [{"number": 3, "config": {"x": 1}, "metrics": {"loss": 0.1},
                               "model": "models/trial-00003-model.onnx"}]
    assert Front.from_dict(json.loads(json.dumps(doc))) == front
    old = Front.from_dict({"members": [5, 2], "hypervolume": 1.5})  # members as trial numbers, keys missing
    assert old.numbers == [5, 2] and old.member(2) == FrontMember(2) and old.reference is None


# -- Run ------------------------------------------------------------------------------------


def test_run_reads_records_and_computes_a_provisional_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run = Run.open(make_run_dir(tmp_path, url, Store(url)))
    assert isinstance(run.info(), RunRecord) and run.status == "running"
    assert [t.number for t in run.trials()] == [0, 1, 2, 3] and run.trial(9) is None
    front = run.front()
    assert isinstance(front, Front) and front.provisional and front.numbers == [0, 1]
    assert front.member(1) == FrontMember(1, {"x": 0.1}, {"loss": 0.3, "cost": 1.0})
    assert run.best() == front.member(0)


def test_an_older_front_json_gets_its_members_from_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    run_dir = make_run_dir(tmp_path, url, Store(url))
    (run_dir / FRONT_FILE).write_text(json.dumps({"members": [1, 0], "hypervolume": 2.0, "reference": [1, 5]}))
    front = Run.open(run_dir).front()
    assert not front.provisional and front.numbers == [1, 0] and front.hypervolume == 2.0
    assert front.members[0] == FrontMember(1, {"x": 0.1}, {"loss": 0.3, "cost": 1.0})


def test_a_damaged_run_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / RUN_FILE).write_text("{not json")
    with pytest.raises(automl.AutoMLError, match="is not an automl run file"):
        Run.open(tmp_path)


# -- a store plugin -------------------------------------------------------------------------


class MemoStore(Store):
    """A store plugin's store: ``memo://PATH`` is SQLite at PATH; remembers every URL it was opened with."""

    opened: list[str] = []

    def __init__(self, url: str) -> None:
        super().__init__("sqlite:///" + url.removeprefix("memo://"))
        self.url = url
        MemoStore.opened.append(url)


class MemoPlugin:
    @hookimpl
    def automl_open_store(self, url: str) -> ResultsStore | None:
        return MemoStore(url) if url.startswith("memo://") else None


class NotAStorePlugin:
    @hookimpl
    def automl_open_store(self, url: str) -> Any:
        return object() if url.startswith("junk://") else None


@pytest.fixture
def memo_plugin() -> Iterator[PluginManager]:
    """The store plugin registered on the process-wide plugin manager (the one the commands use)."""
    pm = get_plugin_manager()
    plugin = MemoPlugin()
    pm.pm.register(plugin, name="test-memo-store")
    MemoStore.opened.clear()
    try:
        yield pm
    finally:
        pm.pm.unregister(plugin)


def test_the_sql_store_implements_the_protocol(tmp_path: Path) -> None:
    assert isinstance(Store(f"sqlite:///{tmp_path / 'a.db'}"), ResultsStore)
    assert not isinstance(object(), ResultsStore)


def test_run_open_show_and_load_use_a_store_plugin(
    memo_plugin: PluginManager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"memo://{tmp_path / 'memo.db'}"
    run_dir = make_run_dir(tmp_path, url, MemoStore(url))
    MemoStore.opened.clear()
    run = Run.open(run_dir)
    assert isinstance(run.store, MemoStore) and MemoStore.opened == [url]
    assert [t.number for t in run.trials()] == [0, 1, 2, 3]
    assert cli(["show", str(run_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [t["number"] for t in shown["trials"]] == [0, 1, 2, 3] and shown["trials"][0]["status"] == "completed"
    assert [m["number"] for m in shown["front"]["members"]] == [0, 1]
    assert automl.load(run_dir).best.number == 0
    assert MemoStore.opened == [url] * 3  # Run.open, show, load: each through the hook


def test_without_the_store_plugin_its_url_is_refused_clearly(tmp_path: Path) -> None:
    url = f"memo://{tmp_path / 'memo.db'}"
    run_dir = make_run_dir(tmp_path, url, MemoStore(url))
    with pytest.raises(StoreError, match="cannot open the results store 'memo://"):
        Run.open(run_dir)  # the SQL store answers last and knows no memo:// URL


def test_a_hook_answer_that_is_no_store_is_refused(tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False)
    pm.pm.register(NotAStorePlugin(), name="junk")
    (tmp_path / RUN_FILE).write_text(json.dumps({"store": "junk://x", "run_id": 1}))
    sign(tmp_path, [RUN_FILE])
    with pytest.raises(PluginError, match="returned an object of type 'object', not a results store"):
        Run.open(tmp_path, plugins=pm)


def test_records_and_specs_import_from_the_top_level() -> None:
    from automl import DefaultSpace, SchedulerSpec, TrialRecord, TrialStatus  # noqa: F401 - the import is the test

    assert automl.__version__ == "0.2.0"


def test_every_result_record_field_is_documented() -> None:
    import dataclasses

    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    missing = []
    for record in (TrialRecord, StepRecord, RunRecord, Front, FrontMember):
        section = doc.split(f"**`{record.__name__}`**", 1)
        if len(section) == 1:
            missing.append(record.__name__)
            continue
        paragraph = section[1].split("\n\n", 1)[0]
        missing += [f"{record.__name__}.{f.name}" for f in dataclasses.fields(record) if f"`{f.name}`" not in paragraph]
    for name in ("dir", "store", "run_id", "open"):
        if f"`{name}`" not in doc.split("**`Run`**", 1)[-1].split("\n\n", 1)[0] and f"`Run.{name}" not in doc:
            missing.append(f"Run.{name}")
    assert not missing, f"records or fields missing from docs/plugins.md: {missing}"


class Recorder:
    """An observer plugin keeping what the hooks were given."""

    def __init__(self) -> None:
        self.results: list[tuple[Any, Any]] = []
        self.ends: list[Any] = []

    @hookimpl
    def automl_trial_result(self, run: Run, trial: TrialRecord) -> None:
        self.results.append((run, trial))

    @hookimpl
    def automl_search_end(self, run: Run) -> None:
        self.ends.append(run)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_the_hooks_get_the_run_and_trial_records(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("trainer: {name: function, params: {function: 'tests.fixtures.objectives:quadratic', "
                    "metrics: {loss: min, cost: min}}}\nsearcher: {name: random}\n"
                    "space: {x: {type: float, low: 0.0, high: 1.0}}\n"
                    "objectives: [{metric: loss, mode: min}, {metric: cost, mode: min}]\n"
                    "budget: {trials: 3}\nseed: 1\n")
    pm, recorder = get_plugin_manager(), Recorder()
    pm.pm.register(recorder, name="test-recorder")
    try:
        run = automl.search(spec, out=tmp_path / "run")
    finally:
        pm.pm.unregister(recorder)
    assert recorder.ends == [run] and run.dir == (tmp_path / "run").resolve()
    assert all(r is run and isinstance(t, TrialRecord) for r, t in recorder.results)
    last = {t.number: t for _, t in recorder.results}
    assert sorted(last) == [0, 1, 2] and all(t.status is TrialStatus.COMPLETED for t in last.values())
    assert all(last[t.number] == t for t in run.trials())  # the record the hook got is the store's final one
    front = json.loads((run.dir / FRONT_FILE).read_text())
    assert Front.from_dict(front) == run.front() and front["members"][0].keys() == {"number", "config", "metrics",
                                                                                      "model"}
