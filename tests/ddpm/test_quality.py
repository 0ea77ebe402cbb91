import numpy as np
import pytest

from lungsynth.ddpm.quality import lung_hu_sample, quality_table, shell_region, volume_quality
from lungsynth.ddpm.settings import QualitySettings
from lungsynth.io import Geometry
from lungsynth.ddpm.quality import spacing_zyx


def _volume(nodule_hu=0.0, lung_hu=-850.0, noise=20.0, seed=0):
    rng = np.random.default_rng(seed)
    hu = rng.normal(lung_hu, noise, (20, 20, 20)).astype(np.float32)
    hu[:, :, :2] = 40.0  # chest wall, not lung
    mask = np.zeros(hu.shape, np.uint8)
    mask[8:12, 8:12, 8:12] = 1
    hu[mask > 0] = nodule_hu
    return hu, mask


def test_shell_is_outside_the_nodule_within_the_distance_in_mm():
    mask = np.zeros((9, 9, 9), np.uint8)
    mask[4, 4, 4] = 1
    shell = shell_region(mask, (2.0, 1.0, 1.0), 3.0)
    assert not shell[4, 4, 4]
    assert shell[4, 4, 7] and not shell[4, 4, 8]  # 3 mm along x (1 mm voxels)
    assert shell[5, 4, 4] and not shell[6, 4, 4]  # 2 mm voxels along z: 4 mm is outside


def test_shell_is_widened_to_the_voxel_size_when_voxels_are_coarser():
    hu, mask = _volume()
    row = volume_quality("coarse", hu, mask, (5.0, 4.5, 4.5), None)
    assert row["shell_mm"] == 5.0 and row["shell_voxels"] > 0
    assert volume_quality("fine", hu, mask, (1.0, 1.0, 1.0), None)["shell_mm"] == 3.0


def test_inserted_nodule_shows_as_contrast_against_its_lung_shell():
    hu, mask = _volume(nodule_hu=0.0)
    real = lung_hu_sample([_volume(seed=1)[0]])
    row = volume_quality("a", hu, mask, (1.0, 1.0, 1.0), real)
    assert row["mean_hu_nodule"] == pytest.approx(0.0)
    assert row["mean_hu_shell"] == pytest.approx(-850, abs=5)
    assert row["contrast_hu"] == pytest.approx(850, abs=5)
    assert row["nodule_voxels"] == 64 and row["shell_voxels"] > 0
    assert row["wasserstein_lung_hu"] < 5


def test_wasserstein_distance_grows_with_a_shifted_lung_histogram():
    real = lung_hu_sample([_volume(seed=1)[0]])
    shifted, mask = _volume(lung_hu=-750.0)
    row = volume_quality("b", shifted, mask, (1.0, 1.0, 1.0), real)
    assert row["wasserstein_lung_hu"] == pytest.approx(100, abs=5)


def test_no_nodule_gives_nan_means_and_summary_row_averages_defined_values():
    hu, mask = _volume()
    rows = [volume_quality("a", hu, mask, (1, 1, 1), None),
            volume_quality("empty", hu, np.zeros_like(mask), (1, 1, 1), None)]
    assert np.isnan(rows[1]["mean_hu_nodule"]) and np.isnan(rows[1]["contrast_hu"])
    table = quality_table(rows)
    assert table["case"].tolist() == ["a", "empty", "summary"]
    assert table.iloc[-1]["contrast_hu"] == pytest.approx(rows[0]["contrast_hu"])
    assert table.iloc[-1]["nodule_voxels"] == pytest.approx(32)


def test_lung_sample_respects_its_size_limit_and_threshold():
    volumes = [_volume(seed=s)[0] for s in range(3)]
    sample = lung_hu_sample(volumes, QualitySettings.from_config({"max_lung_values": 300}))
    assert len(sample) <= 300 and sample.max() < -400


def test_spacing_is_turned_into_array_order():
    assert spacing_zyx(Geometry((0.7, 0.8, 2.5), (0, 0, 0))) == (2.5, 0.8, 0.7)


def test_nodule_like_blobs_count_small_dense_spots_in_the_lung_outside_the_mask(chest):
    from lungsynth.ddpm.quality import nodule_like_blobs

    hu, lungs, nodule, geometry = chest
    spacing = geometry.spacing[::-1]
    before = nodule_like_blobs(hu, nodule, spacing)
    spotted = hu.copy()
    inside = np.argwhere(lungs & ~nodule)
    rng = np.random.default_rng(0)
    placed = 0
    for z, y, x in inside[rng.choice(len(inside), 40, replace=False)]:
        region = spotted[z:z + 2, y:y + 2, x:x + 2]
        if (lungs[z:z + 2, y:y + 2, x:x + 2]).all() and (spotted[max(z-2,0):z + 4, max(y-2,0):y + 4, max(x-2,0):x + 4] < -400).all():
            region[...] = 40   # a 2 x 2 x 2 voxel solid spot
            placed += 1
    assert placed >= 5
    assert nodule_like_blobs(spotted, nodule, spacing) == before + placed
    big = hu.copy()
    z, y, x = inside[len(inside) // 2]
    big[z - 2:z + 3, y - 3:y + 4, x - 3:x + 4] = 40   # 245 voxels: a nodule, not a blob
    assert nodule_like_blobs(big, nodule, spacing) == before
