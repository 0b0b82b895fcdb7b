"""The compressor conformance kit: reusable pytest checks every compressor plugin should pass.

A compressor is driven here as a trial drives it: a trainer of a kind it compresses is fitted
on a small synthetic table (:func:`~automl.testing.tiny_splits`), then :func:`automl.plugin.compress`
runs ``compress_model``, evaluates, exports and runs ``compress_artifact``, in-process and
without Ray.

What is checked (each a ``test_*`` method of :class:`CompressorConformance`):

* the registered :class:`~automl.plugin.CompressorSpec` is well formed: a description, its own
  metrics with a direction (well-known names the right way), the kit's trainer among
  ``trainers``; its ``check`` accepts the kit's params and refuses :attr:`bad_params`;
* the constructor keeps the params it was given and does not change the caller's;
* a trial's compression ends with a file inside the trial directory that the trainer's
  predictor loads, with the trainer's metrics (validation and test) and exactly the
  compressor's declared metrics, all finite;
* ``compress_artifact`` writes a new file beside the export (or below its directory) and leaves
  the export as it was;
  the new file's predictions score what ``evaluate_artifact`` reports;
* after ``compress_model`` the model in memory and its export predict alike;
* the compressed model keeps its quality within :attr:`max_drop` of the uncompressed one;
* it compresses: the file is smaller (when :attr:`shrinks`), or at least something changed;
* the same params and seed give the same metrics.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from automl.plugin import Compressor, CompressorSpec, SearchSpace, Trainer, TrainerSpec, TrialContext, compress
from automl.testing.trainers import KNOWN_DIRECTIONS, score_predictions

if TYPE_CHECKING:
    from automl.plugin import Splits, Task

__all__ = ["CompressorConformance"]


def _digest(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(b"".join(_digest(p).encode() for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _finite(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items()
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v))}


class CompressorConformance:
    """Checks any compressor must pass; subclass it in a ``Test*`` class and set :attr:`compressor`.

    Attributes:
        compressor: The registered name (looked up through the plugin manager).
        params: The compressor's params for every check (fixed and searched values together).
        bad_params: Params its ``check`` must refuse with a ``ValueError`` (one dict each).
        trainer: The trainer whose model is compressed (default: the first of the spec's
            ``trainers``; required when the spec compresses any trainer).
        task: The task the trainer trains.
        trainer_config: The trainer's config (small: the checks train it several times).
        trainer_params: The trainer's fixed params.
        quality: The trainer's metric compared before and after compression (default:
            ``accuracy`` for classification, ``r2`` for regression).
        max_drop: How much worse :attr:`quality` may get (absolute).
        shrinks: The compressed file must be smaller than the uncompressed export.
        deterministic: The same params and seed give the same metrics.
        rtol: Relative tolerance of the comparisons of scores.
    """

    compressor: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    bad_params: ClassVar[tuple[dict[str, Any], ...]] = ()
    trainer: ClassVar[str | None] = None
    task: ClassVar[Task] = "classification"
    trainer_config: ClassVar[dict[str, Any]] = {}
    trainer_params: ClassVar[dict[str, Any]] = {}
    quality: ClassVar[str | None] = None
    max_drop: ClassVar[float] = 0.1
    shrinks: ClassVar[bool] = False
    deterministic: ClassVar[bool] = True
    rtol: ClassVar[float] = 1e-4

    _data_cache: ClassVar[dict[tuple[str, str], Splits]] = {}
    _trained_cache: ClassVar[dict[tuple[Any, ...], Trainer]] = {}

    # -- helpers subclasses may override ------------------------------------------------

    def spec(self) -> CompressorSpec:
        """The registered record (override to test a spec that is not installed)."""
        from automl.plugin import get_plugin_manager

        assert self.compressor, f"{type(self).__name__} must set `compressor` to a registered name"
        record: CompressorSpec = get_plugin_manager().compressors.get(self.compressor)
        return record

    def trainer_spec(self) -> TrainerSpec:
        """The record of the trainer whose model is compressed (override for one not installed)."""
        from automl.plugin import get_plugin_manager

        name = self.trainer or (self.spec().trainers or (None,))[0]
        assert name, f"{type(self).__name__} must set `trainer`: the compressor accepts any trainer"
        record: TrainerSpec = get_plugin_manager().trainers.get(name)
        return record

    def data(self) -> Splits:
        """The splits the trainer fits (default: :func:`~automl.testing.tiny_splits` of :attr:`task`)."""
        from automl.testing.tables import tiny_splits

        key = (type(self).__qualname__, self.task)
        if key not in self._data_cache:
            self._data_cache[key] = tiny_splits(self.task)
        return self._data_cache[key]

    def context(self, directory: Path, seed: int = 0) -> TrialContext:
        directory.mkdir(parents=True, exist_ok=True)
        return TrialContext(self.task, seed, self.data(), directory)

    def trained(self, directory: Path, seed: int = 0) -> Trainer:
        """The trainer fitted through every budget step, as a trial leaves it before compression.

        Fitted once per kit class, seed, trainer and config, then copied (``copy.deepcopy``) with
        ``directory`` as its trial directory, so each check compresses a model of its own.
        """
        spec = self.trainer_spec()
        key = (type(self).__qualname__, seed, spec.factory, repr(sorted(self.trainer_config.items())),
               repr(sorted(self.trainer_params.items())), self.task)
        if key not in self._trained_cache:
            home = Path(tempfile.mkdtemp(prefix="automl-kit-trainer-"))
            trainer = spec.factory(dict(self.trainer_config), dict(self.trainer_params), self.context(home, seed))
            for _ in trainer.run_steps(1):
                trainer.evaluate("valid")
            self._trained_cache[key] = trainer
        trainer = copy.deepcopy(self._trained_cache[key])
        directory.mkdir(parents=True, exist_ok=True)
        trainer.context = dataclasses.replace(trainer.context, trial_dir=directory)
        return trainer

    def make(self, trainer: Trainer, params: Mapping[str, Any] | None = None) -> Compressor:
        """The compressor, built as a trial builds it (its params and the trial's context)."""
        return self.spec().factory(dict(self.params if params is None else params), trainer.context)

    def quality_metric(self) -> str:
        return self.quality or ("accuracy" if self.task == "classification" else "r2")

    def _run(self, directory: Path, seed: int = 0) -> tuple[Trainer, Compressor, Path, dict[str, float]]:
        trainer = self.trained(directory / "trial", seed)
        compressor = self.make(trainer)
        artifact, metrics = compress(trainer, [(self.spec().name, compressor)], directory / "trial", test=True)
        return trainer, compressor, Path(artifact), dict(metrics)

    # -- the checks -----------------------------------------------------------------------

    def test_spec_is_well_formed(self) -> None:
        spec = self.spec()
        assert spec.name == self.compressor or not self.compressor
        assert spec.description, "give the CompressorSpec a one-line description for `automl plugins`"
        assert "." not in spec.name, "a compressor name cannot hold '.' (it separates the name from a parameter)"
        bad = {k: v for k, v in spec.metrics.items() if v not in ("min", "max")}
        assert not bad, f"metric directions must be 'min' or 'max': {bad}"
        wrong = {k: v for k, v in spec.metrics.items() if k in KNOWN_DIRECTIONS and KNOWN_DIRECTIONS[k] != v}
        assert not wrong, f"metrics declared in the wrong direction: {wrong}"
        if spec.trainers is not None:
            assert self.trainer_spec().name in spec.trainers, (
                f"the kit compresses a {self.trainer_spec().name!r} model, not one of the spec's trainers {spec.trainers}")
        if spec.check is not None:
            spec.check(dict(self.params), SearchSpace([]), dict(self.trainer_params))
            for bad_params in self.bad_params:
                with pytest.raises(ValueError) as info:
                    spec.check(dict(bad_params), SearchSpace([]), dict(self.trainer_params))
                assert str(info.value), f"check refused {bad_params} without saying why"
        elif self.bad_params:
            pytest.fail(f"bad_params are given but the spec has no check to refuse them: {self.bad_params}")

    def test_keeps_params(self, tmp_path: Path) -> None:
        params = dict(self.params)
        context = self.context(tmp_path)
        compressor = self.spec().factory(params, context)
        assert params == self.params, "the constructor changed the caller's params"
        assert compressor.params == self.params, f"compressor.params {compressor.params} is not what was given"
        assert compressor.context is context

    def test_compresses_as_a_trial_does(self, tmp_path: Path) -> None:
        trainer, compressor, artifact, metrics = self._run(tmp_path)
        directory = (tmp_path / "trial").resolve()
        assert artifact.exists(), f"the compressed trial ended with {artifact}, which does not exist"
        assert directory in (artifact.resolve(), *artifact.resolve().parents), f"{artifact} is outside the trial directory"
        declared = dict(self.trainer_spec().metrics(self.task, dict(self.trainer_params)))
        expected = set(declared) & set(trainer.evaluate("valid"))
        missing = sorted(expected - set(metrics))
        assert not missing, f"after compression the trial lacks the trainer's metrics {missing}"
        own = set(self.spec().metrics)
        reported = set(compressor.metrics())
        assert reported == own, (f"metrics() returned {sorted(reported)} but the spec declares {sorted(own)}: "
                                 "report exactly the declared ones")
        bad = _finite(metrics)
        assert not bad, f"metrics that are not finite numbers: {bad}"
        predict = trainer.load_predictor(artifact)
        for batch in (1, 3):
            out = predict(trainer.sample_input(batch))
            assert len(out) == batch, f"the compressed file's predictor gave {len(out)} predictions for {batch} rows"

    def test_artifact_is_new_and_export_kept(self, tmp_path: Path) -> None:
        trainer = self.trained(tmp_path / "trial")
        compressor = self.make(trainer)
        compressor.compress_model(trainer)
        export = Path(trainer.export(tmp_path / "trial"))
        before = _digest(export)
        new = compressor.compress_artifact(trainer, export)
        if new is None:
            pytest.skip(f"{self.compressor} leaves the exported file as it is with these params")
        new = Path(new)
        assert new.exists(), f"compress_artifact returned {new}, which does not exist"
        assert new.resolve() != export.resolve(), "compress_artifact must write a new file, not overwrite the export"
        home = export.resolve().parent
        assert home in new.resolve().parents, f"{new} is not written beside the export {export} (or below its directory)"
        assert export.exists() and _digest(export) == before, "compress_artifact changed the export it was given"
        valid = self.data().valid
        predicted = trainer.load_predictor(new)(trainer.sample_input(len(valid)))
        scored = score_predictions(self.task, valid.y, predicted)
        from_file = trainer.evaluate_artifact(new, "valid")
        common = sorted(set(scored) & set(from_file))
        wrong = [f"{n}: {from_file[n]} vs {scored[n]}" for n in common
                 if not math.isclose(from_file[n], scored[n], rel_tol=self.rtol, abs_tol=self.rtol)]
        assert not wrong, f"evaluate_artifact does not score the compressed file's predictions: {wrong}"

    def test_model_in_memory_and_its_export_agree(self, tmp_path: Path) -> None:
        trainer = self.trained(tmp_path / "trial")
        self.make(trainer).compress_model(trainer)
        metrics = trainer.evaluate("valid")
        path = Path(trainer.export(tmp_path / "export"))
        valid = self.data().valid
        scored = score_predictions(self.task, valid.y, trainer.load_predictor(path)(trainer.sample_input(len(valid))))
        common = sorted(set(scored) & set(metrics))
        if not common:
            pytest.skip("the trainer reports none of accuracy, balanced_accuracy, rmse, mse, mae, r2")
        wrong = [f"{n}: evaluate {metrics[n]} vs export {scored[n]}" for n in common
                 if not math.isclose(metrics[n], scored[n], rel_tol=self.rtol, abs_tol=self.rtol)]
        assert not wrong, f"after compress_model, the model in memory and its export predict differently: {wrong}"

    def test_quality_is_kept(self, tmp_path: Path) -> None:
        name = self.quality_metric()
        reference = self.trained(tmp_path / "reference").evaluate("valid")
        _, _, _, metrics = self._run(tmp_path / "compressed")
        assert name in reference and name in metrics, f"{name!r} is not reported: set `quality`"
        modes = dict(self.trainer_spec().metrics(self.task, dict(self.trainer_params)))
        worse = reference[name] - metrics[name] if modes.get(name, "max") == "max" else metrics[name] - reference[name]
        assert worse <= self.max_drop, (
            f"{name} went from {reference[name]:.4f} to {metrics[name]:.4f} after compression (allowed: {self.max_drop})")

    def test_it_compresses(self, tmp_path: Path) -> None:
        plain = self.trained(tmp_path / "plain")
        plain_file = Path(plain.export(tmp_path / "plain"))
        plain_size, _ = plain.model_size(plain_file)
        trainer, _, artifact, _ = self._run(tmp_path / "compressed")
        size, _ = trainer.model_size(artifact)
        if self.shrinks:
            assert size < plain_size, f"the compressed file counts {size} bytes, the uncompressed export {plain_size}"
        else:
            valid = self.data().valid
            X = plain.sample_input(len(valid))
            same_predictions = list(plain.load_predictor(plain_file)(X)) == list(trainer.load_predictor(artifact)(X))
            changed = size != plain_size or artifact.name != plain_file.name or not same_predictions
            assert changed, "compression changed neither the file, its size nor the predictions"

    def test_same_seed_same_metrics(self, tmp_path: Path) -> None:
        if not self.deterministic:
            pytest.skip(f"{self.compressor} is not deterministic for a seed")
        first = self._run(tmp_path / "a", seed=3)[3]
        second = self._run(tmp_path / "b", seed=3)[3]
        wrong = [f"{k}: {first[k]} vs {second.get(k)}" for k in first
                 if k not in second or not math.isclose(first[k], second[k], rel_tol=self.rtol, abs_tol=self.rtol)]
        assert not wrong, f"the same params and seed gave other metrics: {wrong}"
