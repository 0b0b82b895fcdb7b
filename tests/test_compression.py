"""The compression seam: `compression:` in the spec, its checks in the plan, and the trial's compress step.

The compressors and the trainer are the small real ones of ``tests/fixtures/compression.py``,
registered through an entry point as a plugin package would be; the torch and scikit-learn
compressors are tested in ``plugins/automl-compress``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.data import Splits, Table, split
from automl.errors import SpecError, TrialError
from automl.interfaces import TrialContext, split_config
from automl.plan import Plan, build_plan
from automl.plugins import PluginManager
from automl.spec import parse_spec
from automl.trial_worker import compress
from tests.fixtures import compression as fixture

SPEC = """
task: classification
data: {{csv: rows.csv, target: label}}
trainer: {{name: {trainer}, params: {params}}}
compression: {compression}
space:
{space}
objectives:
  - {{metric: accuracy, mode: max}}
  - {{metric: size_bytes, mode: min}}
"""


@pytest.fixture
def pm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginManager]:
    """A plugin manager that finds the fixture plugin through a real ``automl`` entry point."""
    site = tmp_path / "site"
    info = site / "compression_fixture-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: compression-fixture\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[automl]\ncompression-fixture = tests.fixtures.compression\n")
    monkeypatch.syspath_prepend(str(site))
    yield PluginManager()


@pytest.fixture
def plan_of(tmp_path: Path, pm: PluginManager) -> Callable[..., Plan]:
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 5, "label": [0, 1] * 10}).to_csv(tmp_path / "rows.csv", index=False)

    def make(compression: str, space: str = "shrink: {type: float, low: 0, high: 0.5}", trainer: str = "centroid",
             params: str = "{}", extra: str = "") -> Plan:
        text = SPEC.format(trainer=trainer, params=params, compression=compression,
                           space=textwrap.indent(textwrap.dedent(space).strip(), "  ")) + extra
        (tmp_path / "spec.yaml").write_text(text)
        return build_plan(parse_spec(text, str(tmp_path / "spec.yaml")), pm)

    return make


def test_searched_compressor_parameters_join_the_space_and_the_trainer_check_does_not_see_them(
    plan_of: Callable[..., Plan],
) -> None:
    # The centroid trainer's check refuses any setting but `shrink`: `round.decimals` must not reach it.
    plan = plan_of("[{name: round}, {name: half, params: {enabled: true}}]",
                   "shrink: {type: float, low: 0, high: 0.5}\nround.decimals: {type: int, low: 0, high: 3}")
    assert list(plan.space) == ["shrink", "round.decimals"]
    assert plan.compressor_names == ["round", "half"]
    assert plan.compressors[1][1] == {"enabled": True}
    assert plan.trainer_config({"shrink": 0.1, "round.decimals": 2}) == {"shrink": 0.1}
    # Metrics before compression are kept, and a compressor's own metric may be an objective.
    assert plan.metrics["accuracy_uncompressed"] == "max"
    assert plan.metrics["loss_uncompressed"] == "min"
    assert plan.metrics["ratio"] == "min"
    assert plan.versions["compressor:half"] == "compression-fixture==1.0"


def test_without_compression_nothing_changes(plan_of: Callable[..., Plan]) -> None:
    plan = plan_of("[]")
    assert plan.compressors == []
    assert "accuracy_uncompressed" not in plan.metrics


@pytest.mark.parametrize(
    ("compression", "space", "trainer_params", "field", "words"),
    [
        ("[{name: rnd}]", "", "{}", "compression[0].name", ["unknown compressor 'rnd'", "round", "Did you mean"]),
        ("[{name: round}]", "round.decimals: {type: int, low: -1, high: 2}", "{}", "space.round.decimals",
         ["compressor 'round'", "decimals must be an integer >= 0, got -1"]),
        ("[{name: round, params: {decimals: 1.5}}]", "", "{}", "compression[0].params", ["got 1.5"]),
        ("[{name: round, params: {decimals: 1}}]", "round.decimals: {type: int, low: 0, high: 2}", "{}",
         "compression[0].params.decimals", ["both fixed in params and searched as 'round.decimals'"]),
        ("[{name: round}]", "half.enabled: {type: choice, values: [true, false]}", "{}", "space.half.enabled",
         ["belongs to compressor 'half', which is not in `compression:`", "listed: round"]),
    ],
)
def test_bad_compression_is_refused_before_any_trial_pointing_at_the_field(
    plan_of: Callable[..., Plan], compression: str, space: str, trainer_params: str, field: str, words: list[str]
) -> None:
    with pytest.raises(SpecError) as err:
        plan_of(compression, "shrink: {type: float, low: 0, high: 0.5}\n" + space, params=trainer_params)
    assert err.value.field == field
    assert err.value.line is not None
    for word in words:
        assert word in str(err.value)


def test_a_compressor_for_other_trainers_names_what_it_supports(plan_of: Callable[..., Plan]) -> None:
    with pytest.raises(SpecError) as err:
        plan_of("[{name: round}]", "x: {type: float, low: 0, high: 1}", trainer="function",
                params="{function: 'tests.fixtures.objectives:quadratic', metrics: {accuracy: max}}")
    message = str(err.value)
    assert err.value.field == "compression[0].name"
    assert "cannot compress models of trainer 'function': it supports centroid" in message
    assert "poison" in message  # the compressors that do fit that trainer are listed


def test_a_compressor_listed_twice_is_a_spec_error(plan_of: Callable[..., Plan]) -> None:
    with pytest.raises(SpecError, match="appear more than once"):
        plan_of("[{name: round}, {name: round}]")


def test_compression_with_folds_is_refused_at_the_folds_field(tmp_path: Path, pm: PluginManager) -> None:
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0] * 5, "label": [0, 1] * 10}).to_csv(tmp_path / "rows.csv", index=False)
    text = SPEC.format(trainer="centroid", params="{}", compression="[{name: round}]",
                       space="  shrink: {type: float, low: 0, high: 0.5}").replace(
        "target: label}", "target: label, folds: 3}")
    with pytest.raises(SpecError, match="refitted on every row") as err:
        build_plan(parse_spec(text, str(tmp_path / "spec.yaml")), pm)
    assert err.value.field == "data.folds"


def test_a_dotted_trainer_parameter_still_works_without_compression(plan_of: Callable[..., Plan]) -> None:
    plan = plan_of("[]", "x.y: {type: float, low: 0, high: 1}", trainer="function",
                   params="{function: 'tests.fixtures.objectives:quadratic', metrics: {accuracy: max, size_bytes: min}}")
    assert "x.y" in plan.space


def test_split_config_gives_each_compressor_its_own_entries() -> None:
    trainer, parts = split_config({"lr": 0.1, "prune.amount": 0.5, "quantize.mode": "none", "x.y": 1},
                                  ["prune", "quantize"])
    assert trainer == {"lr": 0.1, "x.y": 1}
    assert parts == {"prune": {"amount": 0.5}, "quantize": {"mode": "none"}}


# -- the trial's compress step, without Ray --------------------------------------------------


@pytest.fixture(scope="module")
def blobs() -> Splits:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(3, 4))
    y = np.repeat([0, 1, 2], 60)
    X = centres[y] + rng.normal(size=(len(y), 4))
    table = Table(pd.DataFrame(X, columns=list("abcd")), pd.Series(y, name="label"))
    return split(table, "classification", valid=0.25, test=0.25, seed=0)


def trained(blobs: Splits, directory: Path) -> fixture.CentroidTrainer:
    trainer = fixture.CentroidTrainer({}, {}, TrialContext("classification", 0, blobs, directory))
    trainer.fit_step(1)
    return trainer


def test_compress_runs_model_steps_then_artifact_steps_in_order_and_scores_the_rewritten_file(
    blobs: Splits, tmp_path: Path
) -> None:
    fixture.CALLS.clear()
    trainer = trained(blobs, tmp_path)
    context = trainer.context
    steps = [("half", fixture.HalfCompressor({}, context)), ("round", fixture.RoundCompressor({"decimals": 0}, context))]
    artifact, metrics = compress(trainer, steps, tmp_path, test=True)
    assert fixture.CALLS == ["half.model", "round.model", "half.artifact"]
    assert artifact.name == "centroids.f16.npy"
    # The metrics are those of the float16 file, not of the model in memory.
    assert metrics["accuracy"] == trainer.evaluate_artifact(artifact, "valid")["accuracy"]
    assert metrics["loss"] == pytest.approx(trainer.evaluate_artifact(artifact, "valid")["loss"])
    assert metrics["test_accuracy"] == trainer.evaluate_artifact(artifact, "test")["accuracy"]
    assert 0.4 < metrics["ratio"] < 1.0  # float16 data is half of float64 plus the .npy header


def test_compress_without_a_rewritten_file_scores_the_compressed_model_in_memory(
    blobs: Splits, tmp_path: Path
) -> None:
    trainer = trained(blobs, tmp_path)
    before = trainer.evaluate("valid")
    steps = [("round", fixture.RoundCompressor({"decimals": 0}, trainer.context)),
             ("half", fixture.HalfCompressor({"enabled": False}, trainer.context))]
    artifact, metrics = compress(trainer, steps, tmp_path, test=False)
    assert artifact.name == "centroids.npy"
    assert metrics == trainer.evaluate("valid")  # no test metrics asked, no ratio reported
    assert metrics["loss"] != before["loss"]  # rounding moved the centroids


def test_a_nan_metric_after_compression_fails_with_the_compressors_named(blobs: Splits, tmp_path: Path) -> None:
    trainer = trained(blobs, tmp_path)
    with pytest.raises(TrialError, match=r"metric 'loss' is nan after compression \(poison\)"):
        compress(trainer, [("poison", fixture.PoisonCompressor({}, trainer.context))], tmp_path, test=False)
    assert math.isnan(trainer.evaluate("valid")["loss"])
