"""The optional lung restriction of predictions (nnunet.predict.lung_margin_mm)."""

import logging

import numpy as np
import pytest

from lungsynth.nnunet.lung_restriction import distance_to_lung_mm, restrict_to_lung


def _spacing(geometry):
    return geometry.spacing[::-1]


def _blob(shape, centre, radius=1):
    z, y, x = np.indices(shape)
    return (np.abs(z - centre[0]) <= radius) & (np.abs(y - centre[1]) <= radius) & (np.abs(x - centre[2]) <= radius)


def test_voxels_far_from_the_lung_are_removed_and_those_in_or_near_it_kept(chest):
    hu, lungs, nodule, geometry = chest
    to_lung = distance_to_lung_mm(hu, _spacing(geometry))
    cz, cy, cx = (np.asarray(hu.shape) - 1) // 2
    in_mediastinum = _blob(hu.shape, (cz, cy, cx))                   # between the lungs, > 10 mm from both
    assert to_lung[in_mediastinum].min() > 10
    near = np.argwhere((to_lung > 0) & (to_lung <= 3.0) & ~lungs)[0]  # just outside the pleura
    prediction = (nodule | in_mediastinum).astype(np.uint8)
    prediction[tuple(near)] = 1

    kept = restrict_to_lung(prediction, hu, _spacing(geometry), margin_mm=3.0)

    assert kept.dtype == prediction.dtype and kept.shape == prediction.shape
    assert kept[nodule].all()                       # the nodule inside the lung stays
    assert kept[tuple(near)] == 1                   # within the margin stays
    assert not kept[in_mediastinum].any()           # far outside goes
    assert kept.sum() == nodule.sum() + 1


def test_a_wider_margin_keeps_more(chest):
    hu, lungs, nodule, geometry = chest
    prediction = np.ones(hu.shape, np.uint8)
    counts = [restrict_to_lung(prediction, hu, _spacing(geometry), m).sum() for m in (0.0, 5.0, 20.0)]
    assert counts[0] < counts[1] < counts[2] < prediction.sum()


def test_an_image_without_lung_keeps_its_prediction_with_a_warning(chest, caplog):
    hu, lungs, nodule, geometry = chest
    solid = np.full(hu.shape, 40, np.int16)          # no air anywhere: no lung mask
    prediction = nodule.astype(np.uint8)
    with caplog.at_level(logging.WARNING):
        kept = restrict_to_lung(prediction, solid, _spacing(geometry), 3.0, name="solid.nii.gz")
    np.testing.assert_array_equal(kept, prediction)
    assert "solid.nii.gz" in caplog.text and "no lung" in caplog.text


def test_a_prediction_off_its_image_grid_is_refused(chest):
    hu, lungs, nodule, geometry = chest
    with pytest.raises(ValueError, match="case7.*differs"):
        restrict_to_lung(np.zeros((2, 2, 2), np.uint8), hu, _spacing(geometry), 3.0, name="case7")


def _juxtapleural_chest():
    """The crude chest with its nodule moved to the lateral wall of one lung: 12 mm radius, its
    centre 7 mm inside the lung's edge, so that it dents the air mask and touches the chest wall."""
    from tests.conftest import synthetic_chest

    hu, lungs, _, geometry = synthetic_chest()
    sx, sy, sz = geometry.spacing
    z, y, x = np.indices(hu.shape, dtype=float)
    cz, cy, cx = (np.asarray(hu.shape) - 1) / 2
    centre_x = cx + (55 + 40 - 7) / sx
    nodule = ((z - cz) * sz) ** 2 + ((y - cy) * sy) ** 2 + ((x - centre_x) * sx) ** 2 <= 12.0 ** 2
    hu = hu.copy()
    hu[nodule] = 30
    return hu, nodule, geometry


def test_closing_the_lung_keeps_a_juxtapleural_nodule_that_the_margin_alone_cuts_to_its_rim(chest):
    hu, nodule, geometry = _juxtapleural_chest()
    spacing = _spacing(geometry)
    prediction = nodule.astype(np.uint8)
    cz, cy, cx = (np.asarray(hu.shape) - 1) // 2
    behind_the_heart = _blob(hu.shape, (cz, cy + 33, cx))   # soft tissue ~100 mm behind the centre
    prediction[behind_the_heart] = 1

    cut = restrict_to_lung(prediction, hu, spacing, margin_mm=3.0)
    closed = restrict_to_lung(prediction, hu, spacing, margin_mm=3.0, closing_mm=15.0)

    assert cut[nodule].mean() < 0.5                 # the margin alone keeps the rim, not the core
    assert closed[nodule].mean() > cut[nodule].mean() + 0.2   # the closed lung holds much of it
    assert not closed[behind_the_heart].any()       # tissue far from both lungs still goes
    assert (closed >= cut).all()                    # closing only adds to what is kept


def test_closing_slices_fills_dents_narrower_than_the_disk_and_leaves_convex_edges():
    from lungsynth.nnunet.lung_restriction import close_slices

    mask = np.zeros((2, 40, 40), bool)
    mask[:, 5:35, 0:30] = True                      # a square that touches the slice border at x = 0
    mask[:, 18:22, 24:30] = False                   # a 4-voxel-wide dent from its right edge
    closed = close_slices(mask, (1.0, 1.0), radius_mm=4.0)
    assert closed[:, 18:22, 24:28].all()            # the dent is filled (all but its open mouth)
    assert (closed[:, 5:35, 0:24] == mask[:, 5:35, 0:24]).all() and closed[:, 5:35, 0].all()   # no erosion
    assert not closed[:, :5].any() and not closed[:, 35:].any() and not closed[:, :, 30:].any()  # no growth
    assert (close_slices(mask, (1.0, 1.0), radius_mm=0.5) == mask).all()   # a disk below one voxel: no change
