"""docs/plugins.md stays true to the code: every hook and record field is documented, the
first-party searcher names are listed, the example searcher passes the conformance kit, and the
worked trainer and compressor, installed from the docs' own blocks, run real searches."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from automl import hookspecs, interfaces
from automl.interfaces import SearcherSpec, TrialContext
from automl.plan import build_plan
from automl.plugins import KNOWN_PROVIDERS, PluginManager
from automl.run import Run
from automl.spec import load_spec
from automl.testing import CompressorConformance, SearcherConformance, TrainerConformance

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def hook_names() -> list[str]:
    marker = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets
    return sorted(name for name, f in vars(hookspecs).items() if callable(f) and hasattr(f, marker))


def test_the_hook_list_is_read_from_hookspecs() -> None:
    # The check below would pass vacuously if the marker attribute changed.
    assert {"automl_register_searchers", "automl_open_store"} <= set(hook_names())


def test_every_hookspec_has_a_section() -> None:
    missing = [name for name in hook_names() if f"### `{name}`" not in DOC]
    assert not missing, f"hooks without a '### `NAME`' section in docs/plugins.md: {missing}"


def test_every_record_field_is_documented() -> None:
    missing = []
    for record in (interfaces.SearcherSpec, interfaces.TrainerSpec, interfaces.DatasetSpec, interfaces.TrialOutcome):
        section = DOC.split(f"**`{record.__name__}`**", 1)
        if len(section) == 1:
            missing.append(record.__name__)
            continue
        paragraph = section[1].split("\n\n", 1)[0]
        missing += [f"{record.__name__}.{f.name}" for f in dataclasses.fields(record) if f"`{f.name}`" not in paragraph]
    assert not missing, f"records or fields missing from docs/plugins.md: {missing}"


def test_every_first_party_searcher_is_listed() -> None:
    names = set(KNOWN_PROVIDERS["searcher"]) | {"random", "grid"}
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert not missing, f"searchers missing from docs/plugins.md: {missing}"


def _example_module() -> types.ModuleType:
    """The first Python block of 'Writing a searcher', executed as a module."""
    section = DOC.split("## Writing a searcher", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/plugins.md lost its example searcher"
    module = types.ModuleType("automl_docs_example")
    exec(compile(code.group(1), "docs/plugins.md", "exec"), module.__dict__)  # our own file, not user input
    sys.modules[module.__name__] = module  # so the kit's pickle round trip finds the class
    return module


_EXAMPLE = _example_module()


class TestDocumentedExampleSearcher(SearcherConformance):
    searcher = "halton"
    options = {"scramble": True}
    improves = False  # space filling: it ignores results

    def spec(self) -> SearcherSpec:
        (record,) = _EXAMPLE.automl_register_searchers()
        return record


# -- the worked trainer and compressor: installed from the docs' own blocks, run through the engine ----------------

FILE_BLOCK = re.compile(r"```(python|yaml)\n# (\S+)\n(.*?)```", re.S)


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _files(*titles: str) -> dict[str, str]:
    """The blocks of these sections whose first line names a file (``# automl_ridge/plugin.py``), by file."""
    return {m.group(2): m.group(3) for t in titles for m in FILE_BLOCK.finditer(_section(t))}


def install_docs_package(site: Path) -> Path:
    """Lay out the documented ``automl-ridge`` package in ``site`` as pip would: its modules, and a
    dist-info whose entry points are the docs' ``pyproject.toml`` block. Returns the directory of the specs."""
    toml = re.search(r"```toml\n(.*?)```", _section("Writing a trainer"), re.S)
    assert toml, "docs/plugins.md lost the trainer's pyproject.toml block"
    project = tomllib.loads(toml.group(1))["project"]
    files = _files("Writing a trainer", "Writing a compressor")
    assert {"automl_ridge/plugin.py", "automl_ridge/prune.py", "ridge.yaml", "ridge-pruned.yaml"} <= set(files)
    for name, text in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (site / "automl_ridge" / "__init__.py").touch()
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    entries = project["entry-points"]["automl"]
    (info / "entry_points.txt").write_text("[automl]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    return site


@pytest.fixture
def ridge_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The documented package installed for this test (in-process and for subprocesses via PYTHONPATH)."""
    from automl import plugins

    site = install_docs_package(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    plugins._default.clear()
    yield site
    plugins._default.clear()
    for module in [m for m in sys.modules if m == "automl_ridge" or m.startswith("automl_ridge.")]:
        del sys.modules[module]


def test_the_documented_plugins_load_through_their_entry_points(ridge_site: Path) -> None:
    pm = PluginManager()
    assert "ridge" in pm.trainers.names() and "prune-coef" in pm.compressors.names()
    assert pm.trainers.owners["ridge"].package == "automl-ridge"


def test_the_documented_trainer_fits_exports_and_converts_in_process(ridge_site: Path, tmp_path: Path) -> None:
    import numpy as np

    plan = build_plan(load_spec(ridge_site / "ridge.yaml"), PluginManager())
    assert plan.max_budget == 3
    data = plan.load_data()
    trainer = plan.trainer.factory({"alpha": 1.0}, plan.spec.trainer.params,
                                   TrialContext("classification", 0, data, tmp_path))
    scores = []
    for step in trainer.run_steps():
        scores.append(trainer.evaluate("valid")["accuracy"])
        assert step == len(scores)
    path = trainer.export(tmp_path)
    predict = trainer.load_predictor(path)
    assert (predict(data.valid.X) == trainer.model_.predict(data.valid.X.to_numpy())).all()
    made = trainer.convert(path, "json", tmp_path / "json")
    assert made.suffix == ".json" and made.is_file()
    prune = PluginManager().compressors.get("prune-coef").factory({"keep": 0.25}, trainer.context)
    prune.compress_model(trainer)
    assert 0.7 <= prune.metrics()["sparsity"] <= 0.8
    assert np.mean(np.asarray(trainer.model_.coef_) == 0) == prune.metrics()["sparsity"]


@pytest.mark.slow
def test_the_documented_trainer_and_compressor_run_real_searches(ridge_site: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ridge_site), str(ROOT)]), "AUTOML_NUM_CPUS": "2"}

    def automl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "automl.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)

    out = tmp_path / "ridge"
    done = automl("search", str(ridge_site / "ridge.yaml"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    trials = Run.open(out).trials()
    completed = [t for t in trials if t["status"] == "completed"]
    assert len(trials) == 6 and completed
    assert all(t["metrics"]["accuracy"] > 0.5 and t["metrics"]["size_bytes"] > 0 for t in completed)
    number = completed[-1]["number"]
    exported = automl("export", str(out), "--trial", str(number), "--format", "json", "--out", str(tmp_path / "x"))
    assert exported.returncode == 0, exported.stderr
    assert "converted from npz" in exported.stdout
    bad = automl("export", str(out), "--trial", str(number), "--format", "onnx")
    assert bad.returncode == 2 and "the 'ridge' trainer's formats: npz, json" in bad.stderr, bad.stderr

    pruned = tmp_path / "pruned"
    done = automl("search", str(ridge_site / "ridge-pruned.yaml"), "--out", str(pruned))
    assert done.returncode == 0, done.stderr
    completed = [t for t in Run.open(pruned).trials() if t["status"] == "completed"]
    assert completed
    for t in completed:
        keep = t["config"]["prune-coef.keep"]
        assert {"accuracy", "accuracy_uncompressed", "sparsity", "size_bytes"} <= set(t["metrics"])
        assert abs(t["metrics"]["sparsity"] - (1 - keep)) < 0.05  # wine: 13 features x 3 classes


def test_the_docs_examples_import_the_core_only_through_its_public_modules() -> None:
    public = {"automl", "automl.plugin", "automl.testing"}
    imports = re.findall(r"^\s*(?:from (automl[\w.]*) import|import (automl[\w.]*))", DOC, re.M)
    modules = {a or b for a, b in imports}
    assert {"automl.plugin"} <= modules  # the check below would pass vacuously if nothing matched
    assert modules <= public, f"docs/plugins.md examples import {sorted(modules - public)}: use automl.plugin"


# The worked trainer and compressor pass their conformance kits, imported from the docs' own blocks.
def _docs_site() -> Path:
    import atexit
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="automl-docs-")
    atexit.register(shutil.rmtree, root, True)
    return install_docs_package(Path(root) / "site")


_RIDGE_SITE = _docs_site()


def _ridge_module(name: str) -> types.ModuleType:
    """A module of the documented package, loaded from its file under a private name (no sys.path change)."""
    import importlib.util

    path = _RIDGE_SITE / "automl_ridge" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"automl_docs_ridge_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_RIDGE, _PRUNE = _ridge_module("plugin"), _ridge_module("prune")


class TestDocumentedRidgeTrainer(TrainerConformance):
    trainer = "ridge"
    config = {"alpha": 1.0}
    other_config = {"alpha": 100.0}
    params = {"steps": 2}

    def spec(self) -> interfaces.TrainerSpec:
        (record,) = _RIDGE.automl_register_trainers()
        return record


class TestDocumentedRidgeTrainerRegression(TestDocumentedRidgeTrainer):
    task = "regression"


class TestDocumentedPruneCompressor(CompressorConformance):
    compressor = "prune-coef"
    params = {"keep": 0.5}
    bad_params = ({"keep": 0}, {"keep": 1.5}, {"share": 0.5})
    trainer = "ridge"
    trainer_config = {"alpha": 1.0}
    trainer_params = {"steps": 2}
    max_drop = 0.5  # half the coefficients of a linear model on a tiny table
    shrinks = True  # the zeros compress in the npz file

    def spec(self) -> interfaces.CompressorSpec:
        (record,) = _PRUNE.automl_register_compressors()
        return record

    def trainer_spec(self) -> interfaces.TrainerSpec:
        return TestDocumentedRidgeTrainer().spec()
