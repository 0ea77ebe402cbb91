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
