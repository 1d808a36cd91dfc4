"""The drift and outlier statistics, alone, on seeded synthetic embeddings (no model, no server, no files).

The claims under test: a window drawn like the reference is called drifting in at most alpha of the windows
(checked over many windows, with room for simulation error), a shifted window is found, each of the two tests
finds the shift it looks at, and the outlier threshold flags at most 1 - quantile of in-distribution requests and
nearly every far one.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlptui.analysis import drift
from dlptui.analysis.outliers import outlier_rule, outlier_scores

DIMENSIONS = 32


class World:
    """Embeddings of correlated, skewed features (not Gaussian) and confidences in (0.5, 1), as a model gives them."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.mix = np.random.default_rng(99).standard_normal((DIMENSIONS, DIMENSIONS)) / np.sqrt(DIMENSIONS)

    def draw(self, n: int, move: float = 0.0, surer: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        features = self.rng.gamma(2.0, 1.0, size=(n, DIMENSIONS)) @ self.mix
        features[:, :4] += move
        margin = self.rng.gamma(2.0, 1.5, size=n) + surer
        return features, 1.0 / (1.0 + np.exp(-margin))


def reference_of(world: World, n: int = 300) -> drift.Reference:
    return drift.Reference(*world.draw(n))


def test_in_distribution_windows_stay_stable_beyond_alpha():
    world = World(1)
    reference = reference_of(world)
    windows = 300
    alarms = sum(drift.test_window(reference, *world.draw(drift.WINDOW), seed=i).verdict == drift.DRIFTING
                 for i in range(windows))
    # alpha 1 %: 3 expected of 300; 8 or more happens with probability under 1.2 % for a true rate of 1 %
    assert alarms / windows < 8 / 300, alarms


def test_a_shift_in_the_embeddings_is_found_by_the_embedding_test():
    world = World(2)
    reference = reference_of(world)
    results = [drift.test_window(reference, *world.draw(drift.WINDOW, move=0.6), seed=i) for i in range(20)]
    assert sum(r.verdict == drift.DRIFTING for r in results) >= 18
    assert all(r.p_embeddings < 0.01 for r in results[:5]), [r.p_embeddings for r in results[:5]]


def test_more_confident_answers_are_found_by_the_confidence_test():
    world = World(3)
    reference = reference_of(world)
    result = drift.test_window(reference, *world.draw(drift.WINDOW, surer=2.5), seed=0)
    assert result.verdict == drift.DRIFTING and result.p_confidences < 0.001 and result.ks > 0.3, result


def test_the_verdict_is_bonferroni_of_the_two_tests_and_the_score_is_minus_log10_p():
    result = drift.DriftResult(window=200, reference=300, mmd=0.1, p_embeddings=0.004, ks=0.1, p_confidences=0.3)
    assert result.p_value == pytest.approx(0.008) and result.verdict == drift.DRIFTING
    assert result.score == pytest.approx(-np.log10(0.008), abs=1e-3)
    assert drift.DriftResult(200, 300, 0.1, 0.006, 0.1, 0.3).verdict == drift.STABLE  # 2 x 0.006 > 0.01
    assert drift.DriftResult(200, 300, 0.0, 1.0, 0.0, 1e-30).score == drift.SCORE_CAP


def test_the_permutation_p_value_is_uniform_under_no_difference():
    """The exact level of the MMD test: under no difference P(p <= a) <= a for every a."""
    world = World(4)
    ps = np.array([drift.mmd_test(world.draw(60)[0], world.draw(40)[0], permutations=199, seed=i)[1] for i in range(300)])
    for level in (0.05, 0.1, 0.25, 0.5):
        assert np.mean(ps <= level) <= level + 2.6 * np.sqrt(level * (1 - level) / len(ps)), (level, np.mean(ps <= level))


def test_windows_end_at_the_newest_and_every_step_back_over_new_predictions_only():
    assert drift.window_ends(30, 0) == []  # fewer than MIN_WINDOW
    assert drift.window_ends(120, 0) == [70, 120]  # the newest, and one step back that still holds MIN_WINDOW
    assert drift.window_ends(650, 0, most=10) == [200, 250, 300, 350, 400, 450, 500, 550, 600, 650]
    assert drift.window_ends(650, 560) == [600, 650]  # only windows that end on a new prediction
    assert drift.window_ends(650, 620, judged=True) == []  # 30 new since the last judged window: not yet a step
    assert drift.window_ends(650, 620, judged=False) == [650]
    assert drift.window_ends(650, 650) == []  # nothing new


def test_bad_windows_are_refused():
    reference = reference_of(World(5), 50)
    with pytest.raises(ValueError):
        drift.test_window(reference, np.zeros((10, 3)), np.zeros(10))
    with pytest.raises(ValueError):
        drift.test_window(reference, np.zeros((10, DIMENSIONS)), np.zeros(10), alpha=1.5)
    with pytest.raises(ValueError):
        drift.Reference(np.zeros((1, 3)), np.zeros(1))


def test_outliers_are_flagged_at_the_stated_quantile_and_far_ones_always():
    world = World(6)
    reference = reference_of(world)
    rule = outlier_rule(reference)
    inside = outlier_scores(reference, world.draw(5000)[0])
    assert np.mean(inside > rule.threshold) <= 0.015, np.mean(inside > rule.threshold)  # at most 1 %, with room
    far = outlier_scores(reference, world.draw(200, move=8.0)[0])
    assert np.mean(far > rule.threshold) >= 0.99
    assert rule.quantile == 0.99 and rule.k == 5


def test_a_reference_too_small_for_the_neighbour_is_refused():
    with pytest.raises(ValueError):
        outlier_rule(reference_of(World(7), 5))
