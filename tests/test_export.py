"""``automl export``: any completed trial's measured model, in a format its trainer declares; the reason otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from automl.cli import run as cli
from automl.errors import AutoMLError
from automl.export import available_formats, export_trial
from automl.run import Run
from automl.store import Store
from automl.trust import SPEC_ENTRY, sign, sign_bytes, sign_trial

SPEC = """
name: filled
trainer: {name: function, params: {function: "mod:fn", metrics: {loss: min, cost: min}}}
space:
  x: {type: float, low: 0, high: 1}
objectives: [{metric: loss, mode: min}, {metric: cost, mode: min}]
"""


def make_run(directory: Path, trials: list[dict], front: list[int] | None = None, spec: str = SPEC) -> Path:
    """A run directory with a store filled directly (no search): what the engine leaves behind."""
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'automl.db'}"
    store = Store(url)
    run_id = store.create_run(
        name="filled", directory=str(directory), spec_text=spec, spec_hash="x", seed=0,
        objectives={"objectives": [{"metric": "loss", "mode": "min", "reference": None},
                                   {"metric": "cost", "mode": "min", "reference": None}], "constraints": []},
        versions={"automl": "test"},
    )
    for t in trials:
        store.save_trial(run_id, t.pop("number"), **{"max_budget": 1, "budget": 1, **t})
    store.finish_run(run_id, "completed", {"wall_s": 1.0})
    (directory / "run.json").write_text(json.dumps({"store": url, "run_id": run_id, "spec": None}))
    sign(directory, ["run.json"])  # signed as the engine signs what it writes (automl.trust)
    sign_bytes(directory, SPEC_ENTRY, spec.encode())
    if front is not None:
        rows = {t["number"]: t for t in store.trials(run_id)}
        (directory / "front.json").write_text(json.dumps({"members": [
            {"number": n, "config": rows[n]["config"], "metrics": rows[n]["metrics"], "model": None} for n in front
        ]}))
    store.close()
    return directory


def trial_files(run_dir: Path, number: int, files: dict[str, bytes]) -> Path:
    d = run_dir / "trials" / f"{number:05d}"
    d.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (d / name).write_bytes(content)
    sign(run_dir, [d / name for name in files])
    return d


def measured(run_dir: Path, number: int, name: str) -> None:
    """Record ``trials/NNNNN/name`` as the trial's measured file (the store's ``artifact``), as the engine does,
    and sign the trial's files as the engine does."""
    artifact = run_dir / "trials" / f"{number:05d}" / name
    Store(f"sqlite:///{run_dir / 'automl.db'}").save_trial(1, number, artifact=str(artifact))
    sign_trial(run_dir, artifact)


@pytest.fixture
def torch_like_run(tmp_path: Path) -> Path:
    """Trial 0 and 1 on the front with ONNX and TorchScript files (as the torch trainer leaves them); 2 is not."""
    run_dir = make_run(tmp_path / "run", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
        {"number": 1, "status": "completed", "config": {"x": 0.9}, "metrics": {"loss": 0.9, "cost": 0.1}},
        {"number": 2, "status": "completed", "config": {"x": 0.5}, "metrics": {"loss": 0.95, "cost": 0.95}},
        {"number": 3, "status": "failed", "config": {"x": 0.7}, "error": "boom"},
    ])
    for n in (0, 1, 2):
        d = trial_files(run_dir, n, {"model.onnx": f"onnx-{n}".encode(), "model.torchscript.pt": f"ts-{n}".encode()})
        Store(f"sqlite:///{run_dir / 'automl.db'}").save_trial(1, n, artifact=str(d / "model.onnx"))
    return run_dir


def test_a_front_member_is_copied_byte_for_byte_in_each_format_it_has(torch_like_run: Path, tmp_path: Path) -> None:
    run = Run.open(torch_like_run)
    assert sorted(available_formats(run, 1)) == ["onnx", "torchscript"]
    onnx = export_trial(torch_like_run, 1, "onnx", tmp_path / "out")
    assert onnx.path == tmp_path / "out" / "trial-00001.onnx"
    assert onnx.path.read_bytes() == b"onnx-1"
    assert onnx.sha256 == hashlib.sha256(b"onnx-1").hexdigest()
    script = export_trial(torch_like_run, 1, "torchscript", tmp_path / "named.pt")
    assert script.path == tmp_path / "named.pt" and script.path.read_bytes() == b"ts-1"
    default = export_trial(torch_like_run, 0, "onnx")
    assert default.path == torch_like_run / "exports" / "trial-00000.onnx" and default.path.read_bytes() == b"onnx-0"


def test_the_copy_in_models_is_preferred_to_the_trial_directory(torch_like_run: Path, tmp_path: Path) -> None:
    (torch_like_run / "models").mkdir()
    (torch_like_run / "models" / "trial-00000-model.onnx").write_bytes(b"measured")
    sign(torch_like_run, ["models/trial-00000-model.onnx"])
    assert export_trial(torch_like_run, 0, "onnx", tmp_path).path.read_bytes() == b"measured"


def test_a_completed_trial_off_the_front_is_exported_too(torch_like_run: Path, tmp_path: Path) -> None:
    done = export_trial(torch_like_run, 2, "torchscript", tmp_path)
    assert done.path.read_bytes() == b"ts-2" and done.number == 2


def test_errors_name_the_available_formats(torch_like_run: Path) -> None:
    with pytest.raises(AutoMLError, match=r"trial 3 failed: boom; only a completed trial has a measured model"):
        export_trial(torch_like_run, 3, "onnx")
    with pytest.raises(AutoMLError, match=r"trial 1 has no skops export; formats available for this trial: onnx, torchscript"):
        export_trial(torch_like_run, 1, "skops")
    with pytest.raises(AutoMLError, match=r"has no trial 42 \(it has trials 0\.\.3\)"):
        export_trial(torch_like_run, 42, "onnx")
    with pytest.raises(AutoMLError, match="unknown export format 'pdf'; the 'function' trainer's formats: onnx, torchscript, skops"):
        export_trial(torch_like_run, 0, "pdf")


def test_a_trainer_that_wrote_no_model_file_is_named_as_such(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "fn", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
    ], front=[0])
    d = trial_files(run_dir, 0, {"result.json": b"{}"})
    Store(f"sqlite:///{run_dir / 'automl.db'}").save_trial(1, 0, artifact=str(d / "result.json"))
    with pytest.raises(AutoMLError, match=r"no onnx export; formats available for this trial: none"):
        export_trial(run_dir, 0, "onnx")


def test_cli_export_and_its_bad_input(torch_like_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["export", str(torch_like_run), "--trial", "0", "--format", "torchscript", "--out", str(tmp_path)]) == 0
    assert "trial 0 as torchscript" in capsys.readouterr().out
    assert (tmp_path / "trial-00000.torchscript.pt").read_bytes() == b"ts-0"
    assert cli(["export", str(torch_like_run), "--trial", "3", "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "trial 3 failed" in err and "Traceback" not in err
    assert cli(["export", str(tmp_path / "nowhere"), "--trial", "0", "--format", "onnx"]) == 2
    assert "holds no automl run" in capsys.readouterr().err
    assert cli(["export", str(torch_like_run), "--trial", "0", "--format", "pickle"]) == 2


def test_an_exported_torchscript_model_loads_and_predicts(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    run_dir = make_run(tmp_path / "torch", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
    ], front=[0])
    d = run_dir / "trials" / "00000"
    d.mkdir(parents=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
    example = torch.randn(5, 4)
    torch.jit.trace(net, example).save(str(d / "model.torchscript.pt"))
    measured(run_dir, 0, "model.torchscript.pt")
    done = export_trial(run_dir, 0, "torchscript", tmp_path / "out")
    loaded = torch.jit.load(str(done.path), map_location="cpu")
    with torch.inference_mode():
        torch.testing.assert_close(loaded(example), net(example))


def test_a_real_sklearn_export_is_copied_and_predicts(tmp_path: Path) -> None:
    """The sklearn trainer's own export (skops, and ONNX where skl2onnx converts) through automl export."""
    pytest.importorskip("automl_sklearn")
    import pandas as pd
    from automl_sklearn.export import export_model, load_model, load_predictor
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    pipeline = make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=3, random_state=0)).fit(X, y)
    run_dir = make_run(tmp_path / "sk", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
    ], front=[0])
    trial = run_dir / "trials" / "00000"
    trial.mkdir(parents=True)
    export_model(pipeline, X, trial, "skops")
    export_model(pipeline, X, trial, "onnx")
    measured(run_dir, 0, "model.skops")
    want = pipeline.predict(X)
    skops = export_trial(run_dir, 0, "skops", tmp_path / "out")
    assert (load_model(skops.path).predict(X) == want).all()
    onnx = export_trial(run_dir, 0, "onnx", tmp_path / "out")
    assert (load_predictor(onnx.path)(pd.DataFrame(X)) == want).mean() > 0.99
    with pytest.raises(AutoMLError, match="formats available for this trial: skops, onnx"):
        export_trial(run_dir, 0, "torchscript")


SKLEARN_SPEC = """
name: sk
task: classification
data: {dataset: iris, validation: 0.2, test: 0.2}
trainer: {name: sklearn, params: {export: skops, model: tree}}
space:
  max_depth: {type: int, low: 2, high: 5}
objectives: [{metric: accuracy, mode: max}, {metric: size_bytes, mode: min}]
seed: 0
"""


def _sklearn_run(tmp_path: Path, model: object) -> tuple[Path, Any]:
    """A run of the sklearn trainer on iris whose trial 0 (on the front) wrote only ``model.skops``."""
    pytest.importorskip("automl_sklearn")
    from automl_sklearn.export import export_model
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True, as_frame=True)
    pipeline = make_pipeline(StandardScaler(), model).fit(X, y)
    run_dir = make_run(tmp_path / "sk", [
        {"number": 0, "status": "completed", "config": {"max_depth": 3}, "metrics": {"accuracy": 0.9, "size_bytes": 9}},
    ], front=[0], spec=SKLEARN_SPEC)
    trial = run_dir / "trials" / "00000"
    trial.mkdir(parents=True)
    export_model(pipeline, X, trial, "skops")
    measured(run_dir, 0, "model.skops")
    return run_dir, pipeline


def test_a_skops_trial_is_converted_to_onnx_that_predicts_the_same(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    from automl.export import convertible_formats

    run_dir, pipeline = _sklearn_run(tmp_path, DecisionTreeClassifier(max_depth=3, random_state=0))
    from automl_sklearn.export import load_predictor

    assert convertible_formats(Run.open(run_dir), 0) == {"onnx": "skops"}
    skops = export_trial(run_dir, 0, "skops", tmp_path / "out")
    assert skops.converted_from is None  # a format the trial has is still the byte-exact copy
    assert skops.path.read_bytes() == (run_dir / "trials" / "00000" / "model.skops").read_bytes()
    done = export_trial(run_dir, 0, "onnx", tmp_path / "out")
    assert done.converted_from == "skops" and done.path == tmp_path / "out" / "trial-00000.onnx"
    assert done.source == run_dir / "trials" / "00000" / "model.skops"
    X, _ = load_iris(return_X_y=True, as_frame=True)
    assert (load_predictor(done.path)(X) == pipeline.predict(X)).mean() > 0.99
    assert not (run_dir / "trials" / "00000" / "model.onnx").exists()  # the trial directory is left as it was
    with pytest.raises(AutoMLError, match=r"unknown export format 'torchscript'; the 'sklearn' trainer's formats: "
                                          r"skops, onnx$"):
        export_trial(run_dir, 0, "torchscript")


def test_a_skops_file_with_untrusted_types_is_never_loaded_for_conversion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.tree import DecisionTreeClassifier

    run_dir, _ = _sklearn_run(tmp_path, DecisionTreeClassifier(max_depth=3, random_state=0))
    # A file that holds a type outside the trainer's trusted prefixes.
    from fractions import Fraction

    import skops.io as sio

    sio.dump(Fraction(1, 3), run_dir / "trials" / "00000" / "model.skops")
    sign(run_dir, ["trials/00000/model.skops"])  # signed: the trainer's trusted types are a defence of their own
    assert cli(["export", str(run_dir), "--trial", "0", "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "cannot convert model.skops (skops) to onnx" in err and "does not trust" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_pipeline_skl2onnx_cannot_convert_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    run_dir, _ = _sklearn_run(tmp_path, HistGradientBoostingClassifier(max_iter=5, random_state=0))
    code = cli(["export", str(run_dir), "--trial", "0", "--format", "onnx"])
    err = capsys.readouterr().err
    if code == 0:  # a newer skl2onnx converts it: then it must predict the same (checked inside)
        return
    assert code == 2 and "skl2onnx cannot convert" in err and "Traceback" not in err


TORCH_SPEC = """
name: tt
task: classification
data: {dataset: iris, validation: 0.2, test: 0.2}
trainer: {name: torch, params: {network: mlp, epochs: 2}}
space:
  lr: {type: float, low: 0.001, high: 0.1, log: true}
objectives: [{metric: accuracy, mode: max}, {metric: size_bytes, mode: min}]
seed: 0
"""


def test_a_torchscript_trial_is_converted_to_onnx_with_the_same_outputs(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("automl_torch")
    import numpy as np
    from automl_torch.export import load_runner

    run_dir = make_run(tmp_path / "torch", [
        {"number": 0, "status": "completed", "config": {"lr": 0.01}, "metrics": {"accuracy": 0.9, "size_bytes": 9}},
    ], front=[0], spec=TORCH_SPEC)
    d = run_dir / "trials" / "00000"
    d.mkdir(parents=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    torch.jit.trace(net, torch.randn(2, 4)).save(str(d / "model.torchscript.pt"))
    measured(run_dir, 0, "model.torchscript.pt")
    done = export_trial(run_dir, 0, "onnx", tmp_path / "out")
    assert done.converted_from == "torchscript" and done.path.name == "trial-00000.onnx"
    rows = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    with torch.inference_mode():
        want = net(torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(load_runner(done.path)(rows), want, rtol=1e-4, atol=1e-5)
    (d / "model.torchscript.pt").unlink()
    (d / "model.onnx").write_bytes(done.path.read_bytes())
    measured(run_dir, 0, "model.onnx")
    with pytest.raises(AutoMLError, match=r"no torchscript export; formats available for this trial: onnx "
                                          r"\(the 'torch' trainer cannot convert onnx to torchscript\)"):
        export_trial(run_dir, 0, "torchscript")


def test_a_trial_whose_model_was_not_kept_is_refused_with_the_reason(tmp_path: Path) -> None:
    reason = "not exported: loss 0.9 is not among the 5 best completed so far (0.2)"
    run_dir = make_run(tmp_path / "top", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.9, "cost": 0.9},
         "measured_as": {"model": reason}},
        {"number": 1, "status": "stopped", "config": {"x": 0.2}, "metrics": {"loss": 0.5}, "budget": 1,
         "max_budget": 4},
    ])
    trial_files(run_dir, 0, {"checkpoint.bin": b"half"})
    with pytest.raises(AutoMLError, match=r"trial 0's model was not kept \(not exported: loss 0\.9 is not among the 5 best completed so far "
                                          r"\(0\.2\)\); an export is the model that was measured"):
        export_trial(run_dir, 0, "onnx")
    with pytest.raises(AutoMLError, match=r"trial 1 stopped at budget 1 of 4; only a completed trial"):
        export_trial(run_dir, 1, "onnx")


def test_a_deleted_model_file_is_refused_not_replaced(torch_like_run: Path) -> None:
    (torch_like_run / "trials" / "00002" / "model.onnx").unlink()
    with pytest.raises(AutoMLError, match=r"trial 2's model file 'model.onnx' is neither in .*models.* nor in"):
        export_trial(torch_like_run, 2, "torchscript")  # the TorchScript file is still there: not the measured one


COMPRESSED_SPEC = SPEC + "compression: [{name: quantize, params: {mode: dynamic}}]\n"


def test_after_a_compressor_only_the_measured_file_is_exported(tmp_path: Path) -> None:
    pytest.importorskip("automl_compress")
    run_dir = make_run(tmp_path / "q", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
    ], spec=COMPRESSED_SPEC)
    trial_files(run_dir, 0, {"model.onnx": b"float", "model.int8.onnx": b"int8", "model.torchscript.pt": b"ts"})
    measured(run_dir, 0, "model.int8.onnx")
    assert export_trial(run_dir, 0, "onnx", tmp_path / "out").path.read_bytes() == b"int8"
    with pytest.raises(AutoMLError, match=r"no torchscript export; formats available for this trial: onnx; "
                                          r"torchscript: model.torchscript.pt may hold the model before the "
                                          r"compression \(quantize may rewrite the export\)"):
        export_trial(run_dir, 0, "torchscript")


def test_the_measured_file_wins_over_another_file_of_its_format(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "m", [
        {"number": 0, "status": "completed", "config": {"x": 0.1}, "metrics": {"loss": 0.1, "cost": 0.9}},
    ])
    trial_files(run_dir, 0, {"a.onnx": b"other", "model.sparse.onnx": b"measured"})
    measured(run_dir, 0, "model.sparse.onnx")
    assert export_trial(run_dir, 0, "onnx", tmp_path / "out").path.read_bytes() == b"measured"


def test_a_bad_format_is_one_line_with_the_trainers_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("automl_torch")
    run_dir = make_run(tmp_path / "torch", [
        {"number": 0, "status": "completed", "config": {"lr": 0.01}, "metrics": {"accuracy": 0.9, "size_bytes": 9}},
    ], spec=TORCH_SPEC)
    assert cli(["export", str(run_dir), "--trial", "0", "--format", "pickle"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: unknown export format 'pickle'; the 'torch' trainer's formats: onnx, torchscript, pt2, "
                   "state_dict")


def test_a_torch_trial_is_exported_as_the_state_dict_of_its_network(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("automl_torch")
    from automl_torch.export import export_torchscript

    from automl.export import trial_trainer

    run_dir = make_run(tmp_path / "torch", [
        {"number": 0, "status": "completed", "config": {"lr": 0.01}, "metrics": {"accuracy": 0.9, "size_bytes": 9}},
    ], spec=TORCH_SPEC)
    run = Run.open(run_dir)
    trainer = trial_trainer(run, run.store.trial(run.run_id, 0))
    trainer.fit_step(1)  # weights that differ from a fresh network's
    d = run_dir / "trials" / "00000"
    d.mkdir(parents=True)
    rows = torch.as_tensor(trainer.arrays("valid").X)
    export_torchscript(trainer.net_, rows[:2], d / "model.torchscript.pt")
    measured(run_dir, 0, "model.torchscript.pt")
    done = export_trial(run_dir, 0, "state_dict", tmp_path / "out")
    assert done.converted_from == "torchscript" and done.path.name == "trial-00000.state_dict.pt"
    state = torch.load(str(done.path), map_location="cpu", weights_only=True)  # tensors only: no code runs
    fresh = trial_trainer(run, run.store.trial(run.run_id, 0))
    fresh._setup()
    with torch.inference_mode():
        before = fresh.net_.eval()(rows)
        fresh.net_.load_state_dict(state)
        after = fresh.net_(rows)
        want = trainer.net_.cpu().eval()(rows)
    assert not torch.allclose(before, want)  # the check below could not pass with a fresh network's weights
    torch.testing.assert_close(after, want)


def test_a_moved_run_exports_its_own_files_only(torch_like_run: Path, tmp_path: Path) -> None:
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(torch_like_run, moved)
    (moved / "trials" / "00002" / "model.onnx").unlink()  # the stored path still names the original's file
    with pytest.raises(AutoMLError, match=r"trial 2's model file 'model.onnx' is neither in"):
        export_trial(moved, 2, "onnx")
    assert export_trial(moved, 1, "onnx", tmp_path / "o").source == moved / "trials" / "00001" / "model.onnx"
