import numpy as np

from lungsynth.preprocess.lung import bounding_box, lung_mask


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_lung_mask_finds_both_lungs_and_not_the_air_around_the_body(chest):
    hu, lungs, nodule, geometry = chest
    found = lung_mask(hu, geometry.spacing[::-1], -400)
    assert _dice(found, lungs) > 0.9
    assert not found[:, 0, :].any() and not found[:, :, 0].any()   # the outside air is excluded


def test_lung_mask_closes_over_a_solid_nodule_inside_the_lung(chest):
    hu, lungs, nodule, geometry = chest
    found = lung_mask(hu, geometry.spacing[::-1], -400)
    assert found[nodule].mean() > 0.9


def test_bounding_box_is_half_open_and_none_for_empty():
    mask = np.zeros((5, 6, 7), bool)
    mask[1:3, 2, 4:6] = True
    assert bounding_box(mask) == ((1, 3), (2, 3), (4, 6))
    assert bounding_box(np.zeros((2, 2, 2), bool)) is None
