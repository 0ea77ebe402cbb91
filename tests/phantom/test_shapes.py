"""Geometric primitives: upsampling, tube rasterisation, signed distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lungsynth.phantom.shapes import (TubeGrid, coverage, rasterize_tubes, smooth_min, superellipse_radius,
                                      upsample2)


def test_upsample2_equals_cell_centred_linear_zoom():
    a = np.random.default_rng(0).random((3, 17, 12)).astype(np.float32)
    expected = ndimage.zoom(a, (1, 2, 2), order=1, grid_mode=True, mode="nearest")
    np.testing.assert_allclose(upsample2(a), expected, atol=1e-5)


def test_upsampled_linear_field_stays_linear():
    x = np.arange(16, dtype=np.float32)
    up = upsample2(np.tile(x, (1, 8, 1)))
    fine = (np.arange(32) - 0.5) / 2  # fine cell centres in coarse index units
    np.testing.assert_allclose(up[0, 3, 1:-1], fine[1:-1], atol=1e-5)


def test_rasterised_tube_has_the_volume_of_a_cylinder():
    grid = TubeGrid(origin=(-20.0, -20.0, -20.0), spacing=(0.5, 0.5, 0.5), shape=(81, 81, 81))
    a, b, r = np.array([[-10.0, 0.0, 0.0]]), np.array([[10.0, 0.0, 0.0]]), 3.0
    occ = rasterize_tubes(grid, a, b, np.array([r]), np.array([r]))
    volume = occ.sum() * 0.5**3
    expected = np.pi * r**2 * 20 + 4 / 3 * np.pi * r**3  # capsule
    assert volume == pytest.approx(expected, rel=0.05)
    assert occ.max() == 1.0 and occ.min() == 0.0


def test_many_small_tubes_equal_their_union_one_by_one():
    rng = np.random.default_rng(1)
    grid = TubeGrid(origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.2, 1.2), shape=(30, 25, 25))
    a = rng.uniform(3, 25, (40, 3))
    b = a + rng.normal(0, 3, (40, 3))
    ra, rb = rng.uniform(0.3, 2, 40), rng.uniform(0.3, 2, 40)
    together = rasterize_tubes(grid, a, b, ra, rb)
    one_by_one = np.zeros(grid.shape, np.float32)
    for i in range(40):
        one_by_one = np.maximum(one_by_one, rasterize_tubes(grid, a[i:i + 1], b[i:i + 1], ra[i:i + 1], rb[i:i + 1]))
    np.testing.assert_allclose(together, one_by_one)


def test_superellipse_radius_hits_its_half_axes():
    theta = np.array([0.0, np.pi / 2, -np.pi / 2, np.pi])
    r = superellipse_radius(theta, 10.0, 5.0, 7.0, 2.4, 3.0)
    np.testing.assert_allclose(r, [10.0, 7.0, 5.0, 10.0], rtol=1e-6)


def test_coverage_is_half_on_the_boundary_and_saturates():
    np.testing.assert_allclose(coverage(np.array([-5.0, 0.0, 5.0]), 1.0), [1.0, 0.5, 0.0])


def test_smooth_min_is_below_both_and_equals_min_far_apart():
    assert smooth_min(1.0, 1.0, 2.0) < 1.0
    assert smooth_min(0.0, 10.0, 2.0) == pytest.approx(0.0)
