"""Nodules from the readers' contours: clustering, HU from texture, lung pockets."""

from __future__ import annotations

import numpy as np

from lungsynth.phantom.nodules import NoduleRegion, nodule_hu, nodule_regions, prepare_nodule


def test_regions_are_consensus_masks_in_zyx_order(pl):
    scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == "LIDC-IDRI-0078").first()
    for region in nodule_regions(scan):
        z, y, x = region.box
        assert region.mask.shape == (z.stop - z.start, y.stop - y.start, x.stop - x.start)
        assert (region.mask <= region.union).all()
        ks = sorted({c.image_k_position for a in scan.annotations if a.id in region.annotation_ids
                     for c in a.contours})
        assert z.start == ks[0] and z.stop == ks[-1] + 1  # slices come from the contours' z


def test_nodule_hu_rises_from_ground_glass_to_solid():
    rng = np.random.default_rng(0)
    means = [np.mean([nodule_hu(t, False, rng) for _ in range(50)]) for t in (1, 2, 3, 4, 5)]
    assert means == sorted(means)
    assert -700 < means[0] < -500 and -50 < means[-1] < 100
    assert nodule_hu(5, True, rng) > 200


def _region(mask):
    box = (slice(10, 10 + mask.shape[0]), slice(100, 100 + mask.shape[1]), slice(200, 200 + mask.shape[2]))
    return NoduleRegion(1, box, mask, mask, 1, 3.0, False, (1,))


def test_prepared_nodule_is_exactly_the_mask_with_a_soft_rim():
    mask = np.zeros((3, 9, 9), bool)
    mask[:, 3:6, 3:6] = True
    prep = prepare_nodule(_region(mask), (40, 512, 512), (2.5, 0.7, 0.7),
                          lambda box: np.full([s.stop - s.start for s in box], -10.0), np.random.default_rng(0))
    assert prep.pocket is None
    assert prep.core.sum() == mask.sum()
    assert (prep.weight[prep.core] == 1).all()
    rim = (prep.weight > 0) & ~prep.core
    assert rim.any() and (prep.weight[rim] < 1).all()


def test_nodule_outside_the_lungs_gets_a_lung_pocket():
    mask = np.zeros((3, 9, 9), bool)
    mask[:, 3:6, 3:6] = True
    prep = prepare_nodule(_region(mask), (40, 512, 512), (2.5, 0.7, 0.7),
                          lambda box: np.full([s.stop - s.start for s in box], 20.0), np.random.default_rng(0))
    assert prep.pocket is not None
    assert (prep.pocket[prep.core] == 1).all() and (prep.pocket >= 0.5).sum() > 2 * prep.core.sum()
    assert ((prep.pocket > 0) & (prep.pocket < 1)).any()  # antialiased edge
