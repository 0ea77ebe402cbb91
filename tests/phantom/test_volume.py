"""The phantom volume: geometry from the database, plausible HU, nodules where the readers drew them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lungsynth.errors import InputError


def test_volume_has_the_scans_grid_and_geometry(volume, scan):
    zvals = np.asarray(scan.slice_zvals, float)
    assert volume.hu.shape == (len(zvals), 512, 512)
    assert volume.hu.dtype == np.int16
    assert volume.nodule_labels.shape == volume.lung_mask.shape == volume.hu.shape
    assert volume.lung_mask.dtype == bool
    ps = float(scan.pixel_spacing)
    assert volume.geometry.spacing == pytest.approx((ps, ps, float(np.median(np.diff(zvals)))))
    assert volume.geometry.origin[2] == zvals[0]
    assert volume.geometry.origin[0] == pytest.approx(-256 * ps, abs=1e-3)
    assert volume.geometry.direction == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def test_hu_values_lie_in_the_ct_range_with_air_lungs_and_bone(volume):
    hu = volume.hu
    assert hu.min() >= -1024 and hu.max() <= 3071
    assert abs(float(hu[:, :8, :8].mean()) + 1000) < 30  # air in the corner
    lung = hu[volume.lung_mask & (volume.nodule_labels == 0)]
    assert -900 < float(np.median(lung)) < -750
    assert (hu > 400).sum() > 1000  # bone


def test_lungs_are_two_separate_sides(volume):
    middle = volume.hu.shape[0] // 2
    lab, n = ndimage.label(volume.lung_mask[middle])
    sizes = np.sort(np.bincount(lab.ravel())[1:])[::-1]
    assert n >= 2 and sizes[1] > 0.3 * sizes[0]


def test_every_nodule_lies_in_a_lung_or_on_its_wall(volume):
    assert volume.nodule_labels.max() >= 1
    near_lung = ndimage.binary_dilation(volume.lung_mask, structure=np.ones((1, 5, 5), bool))  # 2 voxels
    nodule = volume.nodule_labels > 0
    assert near_lung[nodule].all()


def test_nodules_are_denser_than_the_lung_around_them(volume):
    hu, labels = volume.hu, volume.nodule_labels
    for label in range(1, int(labels.max()) + 1):
        nodule = labels == label
        if not nodule.any():
            continue
        grown = ndimage.binary_dilation(nodule, structure=np.ones((1, 3, 3), bool), iterations=6)
        inner = ndimage.binary_dilation(nodule, structure=np.ones((1, 3, 3), bool), iterations=2)
        shell = grown & ~inner & volume.lung_mask & (labels == 0)
        assert shell.sum() > 10
        assert hu[nodule].mean() > hu[shell].mean() + 100, f"nodule {label}"


def test_painted_labels_equal_pylidc_consensus_in_zyx_order(volume, scan):
    from pylidc.utils import consensus

    clusters = scan.cluster_annotations(verbose=False)  # pylidc's own clustering
    assert int(volume.nodule_labels.max()) == len(clusters)
    for label, cluster in enumerate(clusters, start=1):
        mask, box, _ = consensus(cluster, clevel=0.5)
        expected = np.zeros(volume.hu.shape, bool)
        expected[box[2], box[0], box[1]] = mask.transpose(2, 0, 1)  # (i, j, k) = (y, x, z)
        painted = volume.nodule_labels == label
        dice = 2 * (expected & painted).sum() / max(expected.sum() + painted.sum(), 1)
        assert dice >= 0.9, f"cluster {label}: Dice {dice:.3f}"


def test_nodule_info_describes_each_cluster(volume):
    info = volume.nodules
    assert [n["label"] for n in info] == list(range(1, len(info) + 1))
    for n in info:
        assert 1 <= n["texture"] <= 5 and n["n_readers"] >= 1
        assert n["voxels"] == int((volume.nodule_labels == n["label"]).sum())


def test_a_different_seed_gives_different_anatomy(volume, scan):
    from lungsynth.phantom import phantom_volume

    other = phantom_volume(scan, seed=1)
    assert other.hu.shape == volume.hu.shape
    assert (other.hu != volume.hu).mean() > 0.1
    np.testing.assert_array_equal(other.nodule_labels, volume.nodule_labels)  # the nodules are the data


def test_negative_seed_is_an_input_error(scan):
    from lungsynth.phantom import phantom_volume

    with pytest.raises(InputError, match="seed"):
        phantom_volume(scan, seed=-1)
