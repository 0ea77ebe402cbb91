"""Space-filling vessel trees."""

from __future__ import annotations

import numpy as np

from lungsynth.phantom.tree_growth import grow_tree, sample_inside


def _ball_points(n, rng):
    return sample_inside(lambda x, y, z: np.sqrt(x * x + y * y + z * z) - 50.0,
                         np.full(3, -50.0), np.full(3, 50.0), n, rng)


def test_sampled_points_lie_inside_the_shape():
    pts = _ball_points(500, np.random.default_rng(0))
    assert len(pts) == 500
    assert (np.linalg.norm(pts, axis=1) < 48.0).all()


def test_tree_starts_at_its_root_and_tapers():
    rng = np.random.default_rng(0)
    pts = _ball_points(800, rng)
    root = np.array([0.0, 0.0, 60.0])
    tree = grow_tree(root, pts, 6.0, rng, leaf_size=2, min_radius=0.3, gamma=0.35)
    np.testing.assert_allclose(tree.a[0], root)
    assert tree.ra[0] == 6.0
    assert tree.ra.max() <= 6.0 and (tree.rb <= tree.ra + 1e-9).all()
    assert np.percentile(tree.ra, 50) < 2.0  # most branches are small
    assert len(tree) > 400  # it branches down to small territories


def test_tree_reaches_the_whole_territory():
    rng = np.random.default_rng(2)
    pts = _ball_points(600, rng)
    tree = grow_tree(np.array([0.0, 0.0, 60.0]), pts, 5.0, rng)
    ends = np.concatenate([tree.a, tree.b])
    # every sampled point has a branch end within 12 mm
    d = np.linalg.norm(pts[:, None, :] - ends[None, :, :], axis=2).min(axis=1)
    assert d.max() < 12.0


def test_same_generator_state_gives_the_same_tree():
    pts = _ball_points(300, np.random.default_rng(3))
    t1 = grow_tree(np.zeros(3), pts, 4.0, np.random.default_rng(9))
    t2 = grow_tree(np.zeros(3), pts, 4.0, np.random.default_rng(9))
    np.testing.assert_array_equal(t1.b, t2.b)
