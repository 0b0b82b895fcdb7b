"""The compression benchmark (benchmarks/compress): search specs of every network, the report's goal verdicts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from automl.spec import parse_spec
from benchmarks.compress.report import _summary_lines, compression_ceiling, log_hypervolume, technique_stats
from benchmarks.compress.run import COMPRESSION, NETWORKS, REFERENCES, TRAINING_SPACE, search_spec


def test_every_searched_network_gives_a_valid_spec_for_both_variants() -> None:
    for network in TRAINING_SPACE:
        assert network in NETWORKS and network in COMPRESSION and network in REFERENCES
        for variant in ("plain", "compressed"):
            spec = parse_spec(yaml.safe_dump(search_spec(network, variant, 0, 4), sort_keys=False))
            # The trainer gets the built-in network's name, never the benchmark's label (mlp-wide is an mlp).
            assert spec.trainer.params["network"] == NETWORKS[network][0]["network"]
            assert {o.metric: o.reference for o in spec.objectives} == REFERENCES[network]
            assert bool(spec.compression) == (variant == "compressed")
            # Both variants search the same training space; compression only adds its own entries.
            training = {k for k in spec.space if "." not in k}
            assert training == set(TRAINING_SPACE[network])


def test_the_wide_space_reaches_the_top_of_the_lcbench_like_space() -> None:
    text = (Path(__file__).resolve().parents[1] / "searchspaces" / "torch-mlp-digits.yaml").read_text()
    lcbench = yaml.safe_load(text)["space"]["units"]
    assert TRAINING_SPACE["mlp-wide"]["units"]["high"] == lcbench["high"] == NETWORKS["mlp-wide"][0]["units"]


def _row(name: str, size: float, b1: float, b256: float, accuracy: float) -> dict[str, Any]:
    return {"technique": name, "size_bytes": size, "latency_b1": [b1], "latency_b256": [b256], "accuracy": accuracy,
            "test_accuracy": accuracy}


def _doc(network: str, rows: list[dict[str, Any]], floor_b1: float) -> dict[str, Any]:
    return {"kind": "techniques", "network": network, "seed": 0, "rounds": 1, "rows": rows,
            "floor": {"b1": [floor_b1], "b256": [floor_b1]}}


def test_technique_ratios_are_against_the_uncompressed_row() -> None:
    stats = technique_stats([_doc("mlp-wide", [_row("uncompressed (ONNX fp32)", 800, 0.1, 5.0, 0.98),
                                               _row("distill 1/4 width", 100, 0.02, 0.5, 0.975)], 0.007)])
    d = stats["distill 1/4 width"]
    assert (d["smaller"], d["faster_b1"], d["faster_b256"]) == (8.0, 5.0, 10.0)
    assert abs(d["points"] - (-0.5)) < 1e-9


def test_summary_says_whether_the_goal_is_met_and_by_what_and_leaves_controls_out() -> None:
    wide = _doc("mlp-wide", [
        _row("uncompressed (ONNX fp32)", 800, 0.1, 5.0, 0.98),
        _row("distill 1/4 width", 100, 0.02, 0.5, 0.975),  # 8x smaller, 5x faster, -0.5 points: meets
        _row("prune structured 90%", 10, 0.01, 0.1, 0.90),  # far too inaccurate
        _row("student 1/4 width, labels only (no teacher)", 100, 0.02, 0.5, 0.98),  # a control, not compression
    ], 0.01)
    small = _doc("mlp", [
        _row("uncompressed (ONNX fp32)", 400, 0.011, 0.2, 0.98),
        _row("int8 dynamic (ONNX Runtime)", 100, 0.010, 0.1, 0.98),  # 4x smaller but 1.1x faster: does not
    ], 0.0075)
    lines = "\n".join(_summary_lines([wide, small], [], []))
    wide_line = next(line for line in lines.splitlines() if "MLP-WIDE techniques" in line)
    assert "**goal met** by distill 1/4 width (8.0x smaller, 5.00x faster" in wide_line
    assert "prune structured 90%" not in wide_line
    assert "control" in wide_line and wide_line.index("control") < wide_line.index("labels only")
    assert "no model can be more than 10.0x faster" in wide_line
    small_line = next(line for line in lines.splitlines() if "- **MLP techniques" in line)
    assert "**goal not met**; closest within 1 point: int8 dynamic" in small_line
    assert "per-call floor of 7.5 us" in small_line and "more than 1.5x faster" in small_line


def test_summary_of_a_search_names_the_reference_member_and_its_ceiling() -> None:
    def member(key: str, config: dict[str, Any], accuracy: float, size: float, b1: float) -> dict[str, Any]:
        return {"key": key, "config": config, "accuracy": accuracy, "size_bytes": size, "latency_b1": b1,
                "latency_b256": b1 * 10}

    doc = {"kind": "fronts", "network": "mlp-wide", "seed": 0, "floor": {"b1": [0.008]},
           "plain": {"hypervolume": 2.0, "members": [member("plain#1", {"layers": 1, "units": 600}, 0.99, 1e5, 0.01)]},
           "compressed": {"hypervolume": 1.0, "members": []},
           "goal": {"reference": "plain#1", "candidates": 0, "best": None, "met": False}}
    line = _summary_lines([], [doc], [])[-2]
    assert "hypervolume without compression 2, with 1 (0.50x)" in line
    assert "**goal not met**: no compressed member within 1 point of the most accurate uncompressed member " \
           "(MLP 1x600, 0.9900)" in line
    assert "more than 1.2x faster" in line


def test_a_rebuild_keeps_the_tables_and_summary_lines_whose_results_are_gone() -> None:
    from benchmarks.compress.report import merge_with_previous

    old = "\n".join([
        "# Title", "old intro", "", "## Summary", "", "Goal.", "",
        "- **MLP techniques** (old): met.", "- **CNN search, seed 0**: old.", "",
        "## Per technique", "", "### MLP: old table", "", "| a |", "", "### CNN: old table", "", "| b |", "",
        "## scikit-learn", "", "| sk |", "",
    ])
    new = "\n".join([
        "# Title", "new intro", "", "## Summary", "", "Goal.", "", "- **CNN search, seed 0**: new.", "",
        "## Per technique", "", "### CNN: old table", "", "| b2 |", "",
        "## 28x28 digits", "", "### CNN-MNIST: table", "", "| m |", "",
    ])
    merged = merge_with_previous(new, old)
    # Rebuilt blocks replace their old text; blocks with no results now are kept, in their old order.
    assert "new intro" in merged and "old intro" not in merged
    assert "- **MLP techniques** (old): met.\n- **CNN search, seed 0**: new." in merged
    assert "| b2 |" in merged and "| b |" not in merged
    assert merged.index("### MLP: old table") < merged.index("### CNN: old table")
    assert merged.index("## Per technique") < merged.index("## scikit-learn") < merged.index("## 28x28 digits")
    assert "| sk |" in merged and "| m |" in merged
    # Rebuilding from the merged text changes nothing (RESULTS.md is stable under repeated rebuilds).
    assert merge_with_previous(new, merged) == merged


def test_the_log_axes_hypervolume_counts_a_ratio_the_same_at_any_size() -> None:
    def doc(plain: list[tuple[float, float, float]], compressed: list[tuple[float, float, float]]) -> dict[str, Any]:
        def members(rows: list[tuple[float, float, float]]) -> list[dict[str, float]]:
            return [{"accuracy": a, "latency_b1": ms, "size_bytes": b} for a, ms, b in rows]

        return {"reference": {"accuracy": 0.85, "latency_ms": 0.5, "size_bytes": 6e6},
                "plain": {"members": members(plain)}, "compressed": {"members": members(compressed)}}

    base = (0.96, 0.04, 200_000.0)
    same = doc([base], [base])
    assert log_hypervolume(same, "plain") == log_hypervolume(same, "compressed") > 0
    # 4x smaller at the same accuracy and latency: a small gain on linear axes, log10(4) more size axis on log axes.
    smaller = doc([base], [(0.96, 0.04, 50_000.0)])
    ratio = log_hypervolume(smaller, "compressed") / log_hypervolume(smaller, "plain")
    expected = (math.log10(6e6) - math.log10(50_000)) / (math.log10(6e6) - math.log10(200_000))  # 1.41
    assert abs(ratio - expected) < 1e-9


def test_the_compression_ceiling_makes_the_plain_front_free_and_keeps_its_accuracy() -> None:
    from automl.plugin import hypervolume

    ref = {"accuracy": 0.85, "latency_ms": 0.5, "size_bytes": 6e6}
    plain = [{"key": "plain#0", "accuracy": 0.96, "latency_b1": 0.05, "size_bytes": 600_000.0},
             {"key": "plain#1", "accuracy": 0.90, "latency_b1": 0.10, "size_bytes": 3e6}]  # dominated
    limit = [-0.85, 0.5, 6e6]
    hv = hypervolume(np.array([[-0.96, 0.05, 600_000.0]]), limit)
    doc = {"reference": ref, "floor": {"b1": [0.01], "b256": [0.1]},
           "plain": {"members": plain, "front": ["plain#0"], "hypervolume": hv}}
    # The front member moved to the floor's latency and zero bytes: (0.11 x 0.49 x 6e6) / (0.11 x 0.45 x 5.4e6).
    assert math.isclose(compression_ceiling(doc) or 0.0, (0.49 * 6e6) / (0.45 * 5.4e6))
    # Without a floor timed beside the members there is no ceiling to state.
    assert compression_ceiling({**doc, "floor": None}) is None


def test_an_equal_compute_plain_search_gets_the_compressed_searchs_wall_time_and_reads_its_run() -> None:
    from benchmarks.compress.run import SAME_WALL, _run_key

    for network, source in SAME_WALL.items():
        spec = parse_spec(yaml.safe_dump(search_spec(network, "plain", 0, 30, wall_s=435.2), sort_keys=False))
        assert spec.budget.wall_time == 436 and spec.budget.trials == 300 and not spec.compression
        assert set(spec.space) == set(TRAINING_SPACE[source]) and REFERENCES[network] == REFERENCES[source]
        assert (_run_key(network, "plain"), _run_key(network, "compressed")) == (network, source)


def test_an_equal_compute_front_shows_both_searches_and_the_plain_searchs_trial_count() -> None:
    from benchmarks.compress.report import _mnist_section

    def member(variant: str, number: int, accuracy: float, size: float, b1: float) -> dict[str, Any]:
        return {"key": f"{variant}#{number}", "number": number, "config": {"channels": 48, "units": 256},
                "file": f"trial-{number:05d}-model.onnx", "accuracy": accuracy, "test_accuracy": accuracy,
                "size_bytes": size, "latency_b1": b1, "latency_b1_range": [b1, b1], "latency_b256": 10 * b1}

    plain, compressed = member("plain", 3, 0.97, 5e6, 0.3), member("compressed", 7, 0.965, 2e5, 0.05)
    doc = {"kind": "fronts", "network": "cnn-mnist-big-wall", "seed": 1, "rounds": 3,
           "reference": REFERENCES["cnn-mnist-big-wall"], "drift": {"before_ms": 0.1, "after_ms": 0.1},
           "floor": {"b1": [0.02]}, "plain": {"hypervolume": 1.0, "members": [plain], "front": ["plain#3"]},
           "compressed": {"hypervolume": 2.0, "members": [compressed], "front": ["compressed#7"]},
           "union_front": ["compressed#7", "plain#3"], "goal": {},
           "environment": {"date": "d", "commit": "c", "cpus": 2, "load_average": [1.0, 1.0, 1.0],
                           "torch": "t", "onnxruntime": "o"}}

    def search(network: str, variant: str, trials: int, wall_s: float, statuses: dict[str, int]) -> dict[str, Any]:
        return {"kind": "search", "network": network, "variant": variant, "seed": 1, "trials": trials,
                "wall_s": wall_s, "statuses": statuses, "failures": []}

    searches = {("cnn-mnist-big-wall", 1, "plain"): search("cnn-mnist-big-wall", "plain", 24, 600.0,
                                                           {"completed": 29, "stopped": 5}),
                ("cnn-mnist-big", 1, "compressed"): search("cnn-mnist-big", "compressed", 24, 612.0,
                                                           {"completed": 24}),
                ("cnn-mnist-big-wall", 0, "compressed"): search("cnn-mnist-big-wall", "compressed", 9, 1.0, {})}
    text = "\n".join(_mnist_section([], [doc], searches))
    # The plain search's trials are what ran in the compressed search's wall time, not its unused trial budget.
    assert "- `plain`: given the compressed search's wall time, 34 trials in 10.0 min" in text
    # The compressed search it is set against is its source set's, of the same seed.
    assert "- `compressed`: 24 trials in 10.2 min, statuses {'completed': 24}" in text
    assert "9 trials" not in text
