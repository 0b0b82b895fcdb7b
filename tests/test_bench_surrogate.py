"""automl-bench's surrogate of learning curves (automl_bench.surrogate): a regressor fitted on a table of recorded
curves that answers any point of the unit cube, and its held-out scores."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("automl_bench")
pytest.importorskip("sklearn")

from automl_bench.surrogate import CurveSurrogate, held_out  # noqa: E402


def _table(n: int = 120, steps: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Loss curves of a smooth 3-D function: the final loss grows with the distance to (0.3, 0.6, 0.5), each curve
    decays towards it over the steps."""
    points = np.random.default_rng(3).random((n, 3))
    final = 0.02 + np.linalg.norm(points - [0.3, 0.6, 0.5], axis=1) ** 2
    decay = np.linspace(2.0, 1.0, steps)
    return points, np.minimum(final[:, None] * decay[None, :], 0.95)


def test_the_surrogate_predicts_whole_curves_within_the_recorded_range_and_is_deterministic() -> None:
    points, curves = _table()
    surrogate = CurveSurrogate(points, curves, seed=1)
    queries = np.random.default_rng(4).random((50, 3))
    predicted = surrogate.predict(queries)
    assert predicted.shape == (50, 9)
    # One point at a time (the trees summed directly) gives the forest's own numbers.
    np.testing.assert_array_equal(np.vstack([surrogate.predict(q) for q in queries[:20]]), predicted[:20])
    assert curves.min() - 1e-9 <= predicted.min() and predicted.max() <= curves.max() + 1e-9
    # A recorded configuration gets its own curve back (leaves of one configuration, no bootstrap).
    np.testing.assert_allclose(surrogate.predict(points[:5]), curves[:5], rtol=1e-9)
    np.testing.assert_array_equal(CurveSurrogate(points, curves, seed=1).predict(queries), predicted)
    assert not np.array_equal(CurveSurrogate(points, curves, seed=2).predict(queries), predicted)
    # Near the optimum the predicted final loss is low, far from it high.
    near, far = surrogate.predict([[0.3, 0.6, 0.5], [1.0, 0.0, 1.0]])[:, -1]
    assert near < 0.1 < far


def test_held_out_configurations_are_ranked_well_on_a_smooth_table_and_nearest_neighbour_worse() -> None:
    points, curves = _table()
    trees = held_out(points, curves, model="extra-trees", folds=4)
    nearest = held_out(points, curves, model="nearest", folds=4, log_offset=None)
    assert set(trees.spearman) == {1, 3, 9}
    assert trees.spearman[9] > 0.9 and trees.top_overlap >= 0.5
    assert nearest.spearman[9] < trees.spearman[9]


def test_bad_input_is_refused() -> None:
    points, curves = _table()
    with pytest.raises(ValueError, match="log is undefined"):
        CurveSurrogate(points, curves - 1.0)
    with pytest.raises(ValueError, match="valid: extra-trees, random-forest, nearest"):
        CurveSurrogate(points, curves, model="gp")
    with pytest.raises(ValueError, match="n >= 2"):
        CurveSurrogate(points[:, 0], curves)
