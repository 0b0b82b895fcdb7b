"""The trust boundary of a run directory (issue 17): each attack of a handed-over run directory is refused.

Every attack test first shows that the crafted input is a real attack (the same bytes run code, or
reach outside, through a reader that does not check), then that automl refuses it with one line and
that nothing ran: a marker file the payload would create stays absent.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import automl
from automl import trust
from automl.cli import run as cli
from automl.errors import AutoMLError
from automl.export import export_trial
from automl.run import Run
from automl.searcher_adapter import SearcherAdapter
from automl.trust import SPEC_ENTRY, UntrustedRunError
from tests.test_export import make_run, measured, trial_files

COMPLETED = {"status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}}


@pytest.fixture(autouse=True)
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This user's key, in a temporary directory (created on first use)."""
    path = tmp_path / "config" / "automl" / "key"
    monkeypatch.setenv(trust.KEY_ENV, str(path))
    return path


def other_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """From now on, another user's key signs and verifies."""
    monkeypatch.setenv(trust.KEY_ENV, str(tmp_path / "other-user" / "key"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A signed run (as the engine leaves one) whose trial 0 measured ``model.onnx``."""
    directory = make_run(tmp_path / "run", [{"number": 0, **COMPLETED}], front=[0])
    trial_files(directory, 0, {"model.onnx": b"onnx-0"})
    measured(directory, 0, "model.onnx")
    return directory


# -- the key and the signatures ---------------------------------------------------------


def test_the_key_is_made_once_readable_by_its_user_only(key: Path) -> None:
    first = trust.load_key()
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600 and len(first) == 32
    trust._cache.clear()
    assert trust.load_key() == first  # the file is the key: read again, not made again


def test_a_signed_content_verifies_and_a_changed_byte_or_another_key_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.bin").write_bytes(b"content")
    trust.sign(tmp_path, ["a.bin"])
    assert trust.verify(tmp_path, tmp_path / "a.bin")
    (tmp_path / "a.bin").write_bytes(b"contenT")
    verdict = trust.verify(tmp_path, "a.bin")
    assert not verdict and "changed" in verdict.reason
    (tmp_path / "a.bin").write_bytes(b"content")
    other_user(monkeypatch, tmp_path)
    assert not trust.verify(tmp_path, "a.bin")


def test_a_symlink_or_a_path_out_of_the_run_directory_is_never_inside(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "secret").write_text("s")
    (tmp_path / "run" / "link").symlink_to(tmp_path / "secret")
    assert trust.inside(tmp_path / "run", "link") is None
    assert trust.inside(tmp_path / "run", "../secret") is None
    assert trust.inside(tmp_path / "run", tmp_path / "secret") is None
    assert trust.inside(tmp_path / "run", "a/b") == (tmp_path / "run" / "a" / "b").resolve()


# -- the attacks ---------------------------------------------------------------------------


class _Payload:
    """Unpickling it creates the file ``marker`` (what a tampered ``searcher.pkl`` would do, harmlessly)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_a_tampered_searcher_state_is_never_unpickled(run_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    state = run_dir / "searcher.pkl"
    good = pickle.dumps({"strategy": None, "next_number": 1, "observed": set()})
    trust.sign_bytes(run_dir, state.name, good)
    state.write_bytes(good)
    assert SearcherAdapter.load_state(state) == {"strategy": None, "next_number": 1, "observed": set()}
    marker = tmp_path / "pwned-searcher"
    state.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(UntrustedRunError, match="refusing to unpickle .*searcher.pkl"):
        SearcherAdapter.load_state(state)
    assert cli(["resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "searcher.pkl does not verify" in err and "--trust" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    pickle.loads(state.read_bytes())  # the attack is real: a plain unpickling runs it
    assert marker.exists()


def _crafted_skops(path: Path, marker: Path) -> None:
    """A skops file whose pipeline runs ``exec`` on a string it carries (numpy.full_like -> str -> exec)."""
    import numpy as np
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    code = f"open({str(marker)!r}, 'w').close()"
    steps = [FunctionTransformer(np.full_like, kw_args={"fill_value": code, "dtype": object, "shape": ()},
                                 check_inverse=False),
             FunctionTransformer(str, check_inverse=False), FunctionTransformer(exec, check_inverse=False)]
    sio.dump(Pipeline([(f"s{i}", step) for i, step in enumerate(steps)]), path)


def test_a_crafted_skops_file_with_builtins_is_refused_by_the_sklearn_trainer(tmp_path: Path) -> None:
    pytest.importorskip("automl_sklearn")
    import numpy as np
    import skops.io as sio
    from automl_sklearn.export import TRUSTED_TYPES, load_model, load_predictor

    assert not [t for t in TRUSTED_TYPES if t.startswith("builtins.")]
    path, marker = tmp_path / "model.skops", tmp_path / "pwned-skops"
    _crafted_skops(path, marker)
    for load in (load_model, load_predictor):
        with pytest.raises(ValueError, match="does not trust.*builtins"):
            load(path)
    assert not marker.exists()
    # The attack is real: with the types it names trusted (builtins.* and numpy.* were, before), it runs.
    sio.load(path, trusted=sio.get_untrusted_types(file=path)).transform(np.zeros((1, 1)))
    assert marker.exists()


def test_a_tampered_stored_spec_is_never_imported(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    marker = tmp_path / "pwned-spec"
    (modules / "evil_objective.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef fn(**kw): return {{}}\n")
    monkeypatch.syspath_prepend(str(modules))  # the module an attacker names is importable (e.g. beside the run)
    with sqlite3.connect(run_dir / "automl.db") as db:
        db.execute("UPDATE runs SET spec_text = replace(spec_text, 'mod:fn', 'evil_objective:fn')")
    for argv in (["export", str(run_dir), "--trial", "0", "--format", "onnx"], ["resume", str(run_dir)]):
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert f"{SPEC_ENTRY} does not verify" in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(UntrustedRunError, match=SPEC_ENTRY):
        automl.load(run_dir).model(0)
    # show and report read it, importing nothing.
    assert cli(["show", str(run_dir)]) == 0
    assert cli(["report", str(run_dir), "--out", str(tmp_path / "r.html")]) == 0
    assert not marker.exists() and "evil_objective" not in sys.modules


def test_export_never_follows_a_symlink_out_of_the_run_directory(run_dir: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's secret")
    model = run_dir / "trials" / "00000" / "model.onnx"
    model.unlink()
    model.symlink_to(secret)
    out = tmp_path / "out"
    assert cli(["export", str(run_dir), "--trial", "0", "--format", "onnx", "--out", str(out), "--trust"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
    # The exports/ directory of a run is not followed out of it either.
    model.unlink()
    model.write_bytes(b"onnx-0")
    (run_dir / "exports").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(AutoMLError, match="symbolic link"):
        export_trial(run_dir, 0, "onnx")
    assert not (tmp_path / "elsewhere").exists()


def test_a_stored_artifact_path_with_dotdot_does_not_leave_the_run_directory(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.onnx").write_bytes(b"not the run's")
    with sqlite3.connect(run_dir / "automl.db") as db:
        db.execute("UPDATE trials SET artifact = ? WHERE number = 0",
                   (str(run_dir / "trials" / "00000" / ".." / ".." / ".." / "secret.onnx"),))
    with pytest.raises(AutoMLError, match="outside the run directory"):
        export_trial(run_dir, 0, "onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_show_never_creates_a_database_where_a_tampered_run_json_points(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "elsewhere" / "victim.db"
    target.parent.mkdir()
    meta = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**meta, "store": f"sqlite:///{target}"}))
    assert cli(["show", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "outside the run directory" in err and "--store" in err
    assert not target.exists()
    assert cli(["show", str(run_dir), "--store", f"sqlite:///{run_dir / 'automl.db'}"]) == 0
    # Even a signed run.json never makes a database it names.
    (run_dir / "run.json").write_text(json.dumps({**meta, "store": f"sqlite:///{target}"}))
    trust.sign(run_dir, ["run.json"])
    assert cli(["show", str(run_dir)]) == 2
    assert "no database" in capsys.readouterr().err and not target.exists()


def test_a_moved_run_reads_its_own_database(run_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.move(run_dir, moved)
    assert [t.number for t in Run.open(moved).trials()] == [0]
    assert not run_dir.exists()  # nothing made where it was
    assert export_trial(moved, 0, "onnx", tmp_path / "out").path.read_bytes() == b"onnx-0"


@pytest.mark.parametrize("name", ["../x", "/tmp/abs", "a/b", ".."])
def test_a_spec_name_that_would_leave_runs_is_refused_at_validate(
        name: str, write_spec: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(f"name: {json.dumps(name)}\ntrainer: {{name: function, params: {{function: 'm:f'}}}}\n")
    assert cli(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "name:" in err and "is not a run name" in err


def test_another_users_run_is_refused_and_trust_overrides(run_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert export_trial(run_dir, 0, "onnx", tmp_path / "mine").path.read_bytes() == b"onnx-0"
    other_user(monkeypatch, tmp_path)
    with pytest.raises(UntrustedRunError, match="run.json does not verify"):
        export_trial(run_dir, 0, "onnx", tmp_path / "theirs")
    assert export_trial(run_dir, 0, "onnx", tmp_path / "theirs", trust=True).path.read_bytes() == b"onnx-0"
    assert cli(["export", str(run_dir), "--trial", "0", "--format", "onnx", "--out", str(tmp_path / "t2"),
                "--trust"]) == 0


def test_a_resume_with_trust_signs_the_run_for_the_next_command(run_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    other_user(monkeypatch, tmp_path)
    run = Run.open(run_dir)
    with pytest.raises(UntrustedRunError):
        trust.check_run(run, "resume", searcher=True, trials=True)
    failed = trust.check_run(run, "resume", trust=True, searcher=True, trials=True, adopt=True)
    assert {v.path for v in failed} >= {"run.json", SPEC_ENTRY, "trials/00000/model.onnx"}
    assert trust.check_run(run, "resume", searcher=True, trials=True) == []


def test_signing_survives_a_missing_or_cut_signatures_line(run_dir: Path) -> None:
    with open(run_dir / trust.SIGNATURES, "a") as fh:
        fh.write('{"path": "x", "hm')  # a driver killed mid-line
    assert trust.verify(run_dir, "run.json")
    os.remove(run_dir / trust.SIGNATURES)
    verdict = trust.verify(run_dir, "run.json")
    assert not verdict and trust.SIGNATURES in verdict.reason


def test_a_state_saved_often_keeps_the_signatures_file_small_and_the_last_two_states_valid(tmp_path: Path) -> None:
    trust.sign(tmp_path, [])
    for i in range(200):
        trust.sign_bytes(tmp_path, "searcher.pkl", f"state {i}".encode())
    _, paths = trust.signed(tmp_path)
    assert paths["searcher.pkl"] < trust._COMPACT_EVERY
    # A driver killed after signing state 199 but before writing it leaves state 198: both verify.
    assert trust.verify_bytes(tmp_path, "searcher.pkl", b"state 199")
    assert trust.verify_bytes(tmp_path, "searcher.pkl", b"state 198")
    assert not trust.verify_bytes(tmp_path, "searcher.pkl", b"state 100")


def test_the_trial_signer_signs_a_trials_model_files_as_its_final_result_arrives(run_dir: Path) -> None:
    from automl.trial_job import ARTIFACT
    from automl.trial_signer import TrialSigner

    d = run_dir / "trials" / "00007"
    d.mkdir(parents=True)
    (d / "model.skops").write_bytes(b"model")
    (d / "model.onnx").write_bytes(b"sibling")
    (d / "predictions-valid.npy").write_bytes(b"data")
    signer = TrialSigner(run_dir)
    signer.on_trial_result(0, [], None, {"loss": 0.1})  # an intermediate step: nothing to sign
    assert not trust.verify(run_dir, d / "model.skops")
    signer.on_trial_result(1, [], None, {ARTIFACT: str(d / "model.skops")})
    assert trust.verify(run_dir, d / "model.skops") and trust.verify(run_dir, d / "model.onnx")
    assert not trust.verify(run_dir, d / "predictions-valid.npy")  # plain data: read with allow_pickle=False


SKLEARN_SPEC = """
name: trusted
task: classification
data: {dataset: iris, validation: 0.2, test: 0.2}
trainer: {name: sklearn, params: {export: skops, model: tree}}
searcher: {name: random}
space:
  max_depth: {type: int, low: 2, high: 5}
objectives: [{metric: accuracy, mode: max}, {metric: size_bytes, mode: min}]
budget: {trials: 3}
ensemble: {enabled: false}
seed: 0
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_search_resumes_and_exports_without_trust_and_a_tampered_one_only_with_it(
        write_spec: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("automl_sklearn")
    out = tmp_path / "run"
    assert cli(["search", str(write_spec(SKLEARN_SPEC)), "--out", str(out)]) == 0
    assert (out / trust.SIGNATURES).is_file()
    assert trust.check_run(Run.open(out), "resume", searcher=True, trials=True) == []
    assert cli(["export", str(out), "--trial", "0", "--format", "skops", "--out", str(tmp_path / "e")]) == 0
    assert cli(["resume", str(out), "--trials", "4"]) == 0  # the searcher's state and the models verify
    assert [t.status for t in Run.open(out).trials()].count("completed") == 4
    capsys.readouterr()
    # A model file replaced by a crafted one: the resume that would re-measure it is refused, nothing runs.
    marker = tmp_path / "pwned-resume"
    _crafted_skops(out / "trials" / "00000" / "model.skops", marker)
    assert cli(["resume", str(out), "--trials", "5"]) == 2
    err = capsys.readouterr().err
    assert "trials/00000/model.skops does not verify" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    shutil.rmtree(out / "trials" / "00000")  # the attacker's file gone; the run is now another user's
    other_user(monkeypatch, tmp_path)
    assert cli(["resume", str(out), "--trials", "5"]) == 2
    assert "run.json does not verify" in capsys.readouterr().err
    assert cli(["resume", str(out), "--trials", "5", "--trust"]) == 0  # trusted: signed with this key
    assert len(Run.open(out).trials()) == 5
    # ... and trusted from now on: what the next resume checks verifies with this key.
    assert trust.check_run(Run.open(out), "resume", searcher=True, trials=True) == []


def test_a_run_named_by_a_relative_path_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `automl resume runs/x` (the documented form): run.dir is relative, and run.json was looked for at
    # runs/x/runs/x/run.json, so every relative resume was refused as unsigned.
    make_run(tmp_path / "runs" / "x", [{"number": 0, "status": "completed", "config": {"x": 1},
                                        "metrics": {"loss": 1.0, "cost": 1.0}}])
    monkeypatch.chdir(tmp_path)
    run = Run.open(Path("runs") / "x")
    assert not run.dir.is_absolute()
    assert trust.check_run(run, "resume", searcher=True, trials=True) == []
    assert trust.verify(run.dir, "run.json") and trust.verify(run.dir, tmp_path / "runs" / "x" / "run.json")
