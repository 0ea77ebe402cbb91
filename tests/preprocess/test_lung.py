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


def test_lung_mask_keeps_lungs_that_run_into_the_edges_of_a_narrow_crop(chest):
    # a crop narrower than the chest (the benchmark's 288 mm grid on a broad patient): both lungs
    # touch its left and right edges in their widest slices, where their air is border-connected
    hu, lungs, nodule, geometry = chest
    narrow = (slice(None), slice(None), slice(20, 76))
    hu, lungs = hu[narrow], lungs[narrow]
    assert lungs[:, :, 0].any() and lungs[:, :, -1].any()
    found = lung_mask(hu, geometry.spacing[::-1], -400)
    assert _dice(found, lungs) > 0.9
    assert not found[:, 0, :].any() and not found[:, -1, :].any()   # the air in front and behind is not lung
