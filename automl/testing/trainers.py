"""The trainer conformance kit: reusable pytest checks every trainer plugin should pass.

A trainer is driven here as a trial drives it (built with a config, the spec's fixed params and a
:class:`~automl.plugin.TrialContext`; ``run_steps`` with an evaluation after each step; export,
predictor, checkpoints, conversions), in-process and without Ray, on a small synthetic table
(:func:`~automl.testing.tiny_splits`) unless the subclass gives its own data.

What is checked (each a ``test_*`` method of :class:`TrainerConformance`):

* the registered :class:`~automl.plugin.TrainerSpec` is well formed: a description, the task
  among its tasks, declared metrics with a direction, and well-known metric names (accuracy,
  rmse, ...) in the right direction; its ``check`` accepts the kit's params;
* the constructor keeps the config and params it was given and does not change the caller's;
* every declared metric is reported after every step, on ``valid`` and ``test``, as a finite
  number;
* ``budget_steps`` is the same for the kit's config, another config, and an empty config with
  ``data=None`` (how the plan asks it); ``run_steps`` yields each step once, in order;
* the same seed gives the same metrics;
* a checkpoint saved mid-trial (after step k, told ``step=k`` as the engine tells it when
  ``save_checkpoint`` takes ``step``) and loaded into a new trainer returns k, resumes at step k+1,
  runs exactly the steps k+1.. once each, with the same metrics at each step as an uninterrupted
  trial (skipped for a trainer that does not checkpoint);
* the exported file loads with ``load_predictor``, predicts one row per input row, and its
  predictions score what ``evaluate`` reports (and ``evaluate_artifact`` agrees, when implemented);
  ``model_size`` counts something;
* each declared conversion writes a file in the target format that predicts what its source predicts;
* ``rung_estimates`` returns only what it was asked, as finite non-negative numbers.
"""

from __future__ import annotations

import inspect
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest

from automl.plugin import Choice, SearchSpace, Trainer, TrainerSpec, TrialContext

if TYPE_CHECKING:
    from automl.plugin import Splits, Task

__all__ = ["KNOWN_DIRECTIONS", "TrainerConformance", "format_of", "score_predictions"]

#: Directions of well-known metric names: a trainer that declares one of them the other way round
#: makes every search optimise the wrong way.
KNOWN_DIRECTIONS: dict[str, str] = {
    **{n: "max" for n in ("accuracy", "balanced_accuracy", "f1", "f1_macro", "f1_weighted", "precision",
                          "precision_macro", "recall", "recall_macro", "roc_auc", "auc", "r2")},
    **{n: "min" for n in ("loss", "log_loss", "rmse", "mse", "mae", "error", "error_rate")},
}

#: File name endings of the formats a trainer that declares no ``formats`` writes.
_COMMON_FORMATS: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",), "torchscript": (".torchscript.pt", ".torchscript"), "skops": (".skops",),
}


def format_of(path: Path, formats: Mapping[str, Sequence[str]]) -> str | None:
    """The format whose longest file name ending matches ``path`` (``.torchscript.pt`` before ``.pt``)."""
    name = path.name.lower()
    matches = [(len(e), fmt) for fmt, endings in formats.items() for e in endings if name.endswith(e.lower())]
    return max(matches)[1] if matches else None


def score_predictions(task: str, y: Any, predicted: Any) -> dict[str, float]:
    """Metrics computable from predicted labels (classification) or values (regression) alone.

    The kit compares them with the same names in :meth:`Trainer.evaluate`: ``accuracy`` and
    ``balanced_accuracy``, or ``rmse``, ``mse``, ``mae`` and ``r2``.
    """
    truth = np.asarray(y)
    pred = np.asarray(predicted).reshape(len(truth), -1)[:, 0] if np.ndim(predicted) > 1 else np.asarray(predicted)
    if task == "classification":
        hit = np.asarray([str(a) == str(b) for a, b in zip(truth, pred, strict=True)], dtype=float)
        recalls = [hit[np.asarray([str(t) == str(c) for t in truth])].mean() for c in sorted({str(t) for t in truth})]
        return {"accuracy": float(hit.mean()), "balanced_accuracy": float(np.mean(recalls))}
    diff = pred.astype(float) - truth.astype(float)
    mse = float(np.mean(diff**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(diff))),
            "r2": 1.0 - float(np.sum(diff**2)) / total if total else 0.0}


def _takes_step(trainer: Trainer) -> bool:
    """Whether the trainer's ``save_checkpoint`` takes ``step`` (the engine passes it only then)."""
    parameters = inspect.signature(type(trainer).save_checkpoint).parameters.values()
    return any(p.name == "step" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.kind == p.VAR_KEYWORD
               for p in parameters)


def _save_as_engine(trainer: Trainer, directory: Path, step: int) -> bool:
    """Save as the engine saves after budget step ``step``: told ``step=`` when the method takes it."""
    return trainer.save_checkpoint(directory, step=step) if _takes_step(trainer) else trainer.save_checkpoint(directory)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


class TrainerConformance:
    """Checks any trainer must pass; subclass it in a ``Test*`` class and set :attr:`trainer`.

    Attributes:
        trainer: The registered name (looked up through the plugin manager).
        task: The task the checks train (one of the spec's ``tasks``).
        config: A searched config to train (small: the checks train it several times).
        other_config: Another config, for the budget-steps check (None: skip that comparison).
        params: The spec's fixed ``trainer.params`` for every check (keep budgets small; at least
            two budget steps make the checkpoint check meaningful).
        checkpoints: Whether the trainer saves checkpoints; None: it does when it overrides
            ``save_checkpoint``.
        deterministic: The same seed gives the same metrics.
        rtol: Relative tolerance of the resume and reproducibility comparisons.
        export_rtol: Relative tolerance between ``evaluate`` and the exported file's scores
            (float32 exports round).
        unloadable_formats: Conversion targets ``load_predictor`` does not read (a bare
            ``state_dict``): only written and named right.
        optional_metrics: Declared metrics reported only by some configs (what a step was
            fitted with, a metric a model without probabilities cannot compute); every other
            declared metric must be reported.
    """

    trainer: ClassVar[str] = ""
    task: ClassVar[Task] = "classification"
    config: ClassVar[dict[str, Any]] = {}
    other_config: ClassVar[dict[str, Any] | None] = None
    params: ClassVar[dict[str, Any]] = {}
    checkpoints: ClassVar[bool | None] = None
    deterministic: ClassVar[bool] = True
    rtol: ClassVar[float] = 1e-6
    export_rtol: ClassVar[float] = 1e-4
    unloadable_formats: ClassVar[tuple[str, ...]] = ()
    optional_metrics: ClassVar[tuple[str, ...]] = ()

    _data_cache: ClassVar[dict[tuple[str, str], Splits]] = {}

    # -- helpers subclasses may override ------------------------------------------------

    def spec(self) -> TrainerSpec:
        """The registered record (override to test a spec that is not installed)."""
        from automl.plugin import get_plugin_manager

        assert self.trainer, f"{type(self).__name__} must set `trainer` to a registered name"
        record: TrainerSpec = get_plugin_manager().trainers.get(self.trainer)
        return record

    def data(self) -> Splits:
        """The splits every check trains on (default: :func:`~automl.testing.tiny_splits` of :attr:`task`)."""
        from automl.testing.tables import tiny_splits

        key = (type(self).__qualname__, self.task)
        if key not in self._data_cache:
            self._data_cache[key] = tiny_splits(self.task)
        return self._data_cache[key]

    def make(self, directory: Path, config: Mapping[str, Any] | None = None, *, seed: int = 0,
             data: Splits | None | bool = True) -> Trainer:
        """A trainer built as a trial builds it, its trial directory ``directory`` (``data=None``: no data)."""
        directory.mkdir(parents=True, exist_ok=True)
        splits = self.data() if data is True else data
        context = TrialContext(self.task, seed, splits, directory)  # type: ignore[arg-type]
        return self.spec().factory(dict(self.config if config is None else config), dict(self.params), context)

    def fit(self, trainer: Trainer, start: int = 1) -> list[dict[str, float]]:
        """Run the budget steps from ``start`` as the engine does, returning the validation metrics after each."""
        return [dict(trainer.evaluate("valid")) for _ in trainer.run_steps(start)]

    def declared(self) -> dict[str, str]:
        """The metrics the spec declares for :attr:`task` and :attr:`params`."""
        return dict(self.spec().metrics(self.task, dict(self.params)))

    def required(self) -> list[str]:
        """The declared metrics every config must report (:attr:`optional_metrics` left out)."""
        return sorted(set(self.declared()) - set(self.optional_metrics))

    def space(self) -> SearchSpace:
        """A space in which :attr:`config` is the only point (each value a one-value choice), for ``check``."""
        return SearchSpace([Choice(name, values=(value,)) for name, value in self.config.items()])

    def _formats(self) -> dict[str, tuple[str, ...]]:
        declared = getattr(self.spec().factory, "formats", None) or {}
        return {str(k): tuple(v) for k, v in declared.items()} or dict(_COMMON_FORMATS)

    def _close(self, a: Mapping[str, float], b: Mapping[str, float], names: Sequence[str], rtol: float) -> list[str]:
        return [f"{n}: {a.get(n)!r} vs {b.get(n)!r}" for n in names
                if n not in a or n not in b or not math.isclose(float(a[n]), float(b[n]), rel_tol=rtol, abs_tol=rtol)]

    # -- the checks -----------------------------------------------------------------------

    def test_spec_is_well_formed(self) -> None:
        spec = self.spec()
        assert spec.name == self.trainer or not self.trainer
        assert spec.description, "give the TrainerSpec a one-line description for `automl plugins`"
        assert spec.tasks and set(spec.tasks) <= {"classification", "regression"}, f"tasks {spec.tasks!r}"
        assert self.task in spec.tasks, f"the kit trains {self.task!r} but the spec's tasks are {spec.tasks}"
        assert isinstance(spec.factory, type) and issubclass(spec.factory, Trainer), (
            f"factory {spec.factory!r} is not a Trainer subclass")
        declared = self.declared()
        assert declared, f"metrics({self.task!r}, params) declares no metric"
        bad = {k: v for k, v in declared.items() if v not in ("min", "max")}
        assert not bad, f"metric directions must be 'min' or 'max': {bad}"
        wrong = {k: v for k, v in declared.items() if k in KNOWN_DIRECTIONS and KNOWN_DIRECTIONS[k] != v}
        assert not wrong, f"metrics declared in the wrong direction: {wrong} (expected {KNOWN_DIRECTIONS[next(iter(wrong))]})"
        if spec.check is not None:
            spec.check(self.task, dict(self.params), self.space())

    def test_keeps_config_and_params(self, tmp_path: Path) -> None:
        config, params = dict(self.config), dict(self.params)
        context = TrialContext(self.task, 0, self.data(), tmp_path)
        trainer = self.spec().factory(config, params, context)
        assert config == self.config and params == self.params, "the constructor changed the caller's config or params"
        assert trainer.config == self.config, f"trainer.config {trainer.config} is not the config given {self.config}"
        assert trainer.params == self.params, f"trainer.params {trainer.params} is not the params given {self.params}"
        assert trainer.context is context

    def test_metrics_as_declared(self, tmp_path: Path) -> None:
        declared = self.required()
        trainer = self.make(tmp_path)
        history = self.fit(trainer)
        assert history, "run_steps yielded no step"
        for step, metrics in enumerate(history, 1):
            missing = sorted(set(declared) - set(metrics))
            assert not missing, f"after step {step}, evaluate('valid') lacks declared metrics {missing}: {metrics}"
            bad = {k: v for k, v in metrics.items() if not _is_number(v) or not math.isfinite(float(v))}
            assert not bad, f"after step {step}, metrics that are not finite numbers: {bad}"
        test = trainer.evaluate("test")
        missing = sorted(set(declared) - set(test))
        assert not missing, f"evaluate('test') lacks declared metrics {missing}: {test}"
        assert all(_is_number(v) and math.isfinite(float(v)) for v in test.values()), f"test metrics {test}"

    def test_budget_steps_do_not_depend_on_config_or_data(self, tmp_path: Path) -> None:
        # The plan asks a trainer built with an empty config and no data (context.data is None).
        try:
            probe = self.make(tmp_path / "probe", {}, data=None).budget_steps
        except Exception as exc:
            pytest.fail(f"a trainer built with an empty config and data=None cannot tell its budget_steps "
                        f"(the plan asks it that way): {type(exc).__name__}: {exc}")
        assert isinstance(probe, int) and not isinstance(probe, bool) and probe >= 1, f"budget_steps = {probe!r}"
        steps = {"empty config, data=None": probe, "the kit's config": self.make(tmp_path / "a").budget_steps}
        if self.other_config is not None:
            steps["other_config"] = self.make(tmp_path / "b", self.other_config).budget_steps
        assert len(set(steps.values())) == 1, f"budget_steps depends on the config or the data: {steps}"
        trainer = self.make(tmp_path / "c")
        done = list(trainer.run_steps(1))
        assert done == list(range(1, probe + 1)), f"run_steps(1) yielded {done}, expected 1..{probe}"

    def test_same_seed_same_metrics(self, tmp_path: Path) -> None:
        if not self.deterministic:
            pytest.skip(f"{self.trainer} is not deterministic for a seed")
        runs = []
        for i in range(2):
            trainer = self.make(tmp_path / str(i), seed=5)
            runs.append(self.fit(trainer)[-1])
        wrong = self._close(runs[0], runs[1], sorted(runs[0]), self.rtol)
        assert not wrong, f"the same config and seed gave other metrics: {wrong}"

    def _checkpoints(self) -> bool:
        if self.checkpoints is not None:
            return self.checkpoints
        return self.spec().factory.save_checkpoint is not Trainer.save_checkpoint

    def test_checkpoint_round_trip_resumes_identically(self, tmp_path: Path) -> None:
        if not self._checkpoints():
            pytest.skip(f"{self.trainer or 'the trainer'} does not save checkpoints (a restarted trial starts over)")
        whole = self.make(tmp_path / "whole")
        history = self.fit(whole)
        expected = history[-1]
        steps = whole.budget_steps
        stop = max(1, steps // 2)
        first = self.make(tmp_path / "first")
        checkpoint = tmp_path / "checkpoint"
        told = " (told step=k)" if _takes_step(first) else ""
        for step in first.run_steps(1):
            first.evaluate("valid")  # the engine evaluates before it saves
            saved = tmp_path / f"save-{step}"
            saved.mkdir()
            assert _save_as_engine(first, saved, step) is True, (
                f"save_checkpoint{told} returned a non-True value after step {step}")
            if checkpoint.exists():
                shutil.rmtree(checkpoint)
            saved.rename(checkpoint)  # as the engine does: the newest complete checkpoint only
            if step == stop:
                break
        second = self.make(tmp_path / "second")
        last = second.load_checkpoint(checkpoint)
        assert last == stop, f"load_checkpoint returned step {last!r}; the checkpoint was saved after step {stop}{told}"
        done, rest = [], []
        for step in second.run_steps(last + 1):
            done.append(step)
            rest.append(dict(second.evaluate("valid")))
        assert done == list(range(stop + 1, steps + 1)), (
            f"resumed at step {stop + 1}, run_steps yielded {done}, expected {list(range(stop + 1, steps + 1))}")
        for step, (resumed, through) in enumerate(zip(rest, history[stop:]), stop + 1):
            wrong = self._close(through, resumed, self.required(), self.rtol)
            assert not wrong, f"a trial resumed after step {stop} has other metrics at step {step} than one run through: {wrong}"
        after = rest[-1] if rest else second.evaluate("valid")
        wrong = self._close(expected, after, self.required(), self.rtol)
        assert not wrong, f"a trial resumed after step {stop} ended with other metrics than one run through: {wrong}"

    def test_export_predicts_like_evaluate(self, tmp_path: Path) -> None:
        trainer = self.make(tmp_path / "trial")
        self.fit(trainer)
        metrics = trainer.evaluate("valid")
        directory = tmp_path / "export"
        path = Path(trainer.export(directory))
        assert path.exists(), f"export() returned {path}, which does not exist"
        assert directory.resolve() in (path.resolve(), *path.resolve().parents), f"export() wrote {path} outside {directory}"
        size, what = trainer.model_size(path)
        assert isinstance(size, int) and size > 0 and what, f"model_size returned {(size, what)!r}"
        predict = trainer.load_predictor(path)
        for batch in (1, 3):
            out = predict(trainer.sample_input(batch))
            assert len(out) == batch, f"the predictor returned {len(out)} predictions for {batch} input rows"
        valid = self.data().valid
        predicted = predict(trainer.sample_input(len(valid)))
        assert len(predicted) == len(valid), f"{len(predicted)} predictions for {len(valid)} validation rows"
        scored = score_predictions(self.task, valid.y, predicted)
        common = sorted(set(scored) & set(metrics))
        compared = bool(common)
        wrong = self._close(metrics, scored, common, self.export_rtol)
        assert not wrong, f"the exported file's predictions do not score what evaluate('valid') reports: {wrong}"
        try:
            from_file = trainer.evaluate_artifact(path, "valid")
        except NotImplementedError:
            from_file = None
        if from_file is not None:
            compared = True
            names = [n for n in self.declared() if n in self.required() or (n in metrics and n in from_file)]
            wrong = self._close(metrics, from_file, names, self.export_rtol)
            assert not wrong, f"evaluate_artifact on the export disagrees with evaluate('valid'): {wrong}"
        if not compared:
            pytest.skip("evaluate reports none of accuracy, balanced_accuracy, rmse, mse, mae, r2 and "
                        "evaluate_artifact is not implemented: the export's predictions cannot be scored")

    def test_conversions_round_trip(self, tmp_path: Path) -> None:
        factory = self.spec().factory
        conversions = dict(getattr(factory, "conversions", {}) or {})
        if not conversions:
            pytest.skip(f"{self.trainer or 'the trainer'} declares no conversions")
        formats = self._formats()
        if getattr(factory, "formats", None):
            undeclared = sorted({f for t, s in conversions.items() for f in (t, *s)} - set(formats))
            assert not undeclared, f"conversions name formats missing from `formats`: {undeclared}"
        trainer = self.make(tmp_path / "trial")
        self.fit(trainer)
        directory = tmp_path / "export"
        trainer.export(directory)
        files = {format_of(p, formats): p for p in sorted(directory.rglob("*")) if p.is_file()}
        X = trainer.sample_input(len(self.data().valid))
        tried = []
        for target, sources in conversions.items():
            source = next((files[s] for s in sources if s in files), None)
            if source is None:
                continue
            tried.append(target)
            fresh = self.make(tmp_path / f"convert-{target}")  # as `automl export` builds it: not fitted
            out = tmp_path / f"out-{target}"
            made = Path(fresh.convert(source, target, out))
            assert made.is_file() and made.stat().st_size > 0, f"convert(..., {target!r}) returned {made}: no file"
            assert out.resolve() in made.resolve().parents, f"convert wrote {made} outside the directory {out}"
            assert format_of(made, formats) == target, f"convert(..., {target!r}) wrote {made.name}, not a {target} file"
            if target in self.unloadable_formats:
                continue
            expected = np.asarray(trainer.load_predictor(source)(X))
            got = np.asarray(fresh.load_predictor(made)(X))
            assert got.shape == expected.shape, f"{target} file: predictions of shape {got.shape}, source {expected.shape}"
            if expected.dtype.kind in "fc":
                np.testing.assert_allclose(got, expected, rtol=self.export_rtol, atol=self.export_rtol,
                                           err_msg=f"the {target} file converted from {source.name} predicts otherwise")
            else:
                assert (got == expected).all(), f"the {target} file converted from {source.name} predicts otherwise"
        if not tried:
            pytest.skip(f"the export wrote none of the conversions' sources ({conversions})")

    def test_rung_estimates(self, tmp_path: Path) -> None:
        trainer = self.make(tmp_path)
        next(iter(trainer.run_steps(1)))
        for asked in (["size_bytes", "latency_ms"], ["size_bytes"], []):
            estimates = trainer.rung_estimates(asked)
            extra = sorted(set(estimates) - set(asked))
            assert not extra, f"rung_estimates({asked}) returned {extra} too"
            bad = {k: v for k, v in estimates.items() if not _is_number(v) or not math.isfinite(v) or v < 0}
            assert not bad, f"rung_estimates({asked}) returned values that are not finite non-negative numbers: {bad}"

