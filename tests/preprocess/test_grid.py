import numpy as np
import pytest
from scipy import ndimage

from lungsynth.errors import InputError
from lungsynth.lidc.scan import patient_centroids
from lungsynth.preprocess.crop import preprocess_case
from lungsynth.settings import PreprocessSettings


def _settings(spacing=(6.0, 4.0, 4.0), size=(32, 64, 64)):
    return PreprocessSettings.from_config({"consensus_level": 0.5, "min_nodule_mm": 3.0, "min_readers": 1, "lung_threshold_hu": -400, "crop_margin_mm": 10.0, "target_spacing": spacing, "volume_size": size})


def test_crop_has_the_fixed_size_spacing_and_dtypes(chest):
    hu, lungs, nodule, geometry = chest
    result = preprocess_case("c", hu, nodule, geometry, _settings(), "chest")
    assert result.image.shape == (32, 64, 64) and result.image.dtype == np.int16
    assert result.mask.shape == (32, 64, 64) and result.mask.dtype == np.uint8
    assert result.geometry.spacing == (4.0, 4.0, 6.0)
    assert result.record["n_nodules"] == 1 and result.record["n_nodules_in_crop"] == 1


def test_nodule_keeps_its_patient_position_within_one_voxel(chest):
    hu, lungs, nodule, geometry = chest
    result = preprocess_case("c", hu, nodule, geometry, _settings(), "chest")
    before = patient_centroids(nodule, geometry)[0]
    after = patient_centroids(result.mask, result.geometry)[0]
    assert np.all(np.abs(after - before) <= np.asarray(result.geometry.spacing))


def test_nodule_volume_is_roughly_preserved(chest):
    hu, lungs, nodule, geometry = chest
    result = preprocess_case("c", hu, nodule, geometry, _settings(), "chest")
    before = nodule.sum() * np.prod(geometry.spacing)
    after = result.mask.sum() * np.prod(result.geometry.spacing)
    assert 0.6 < after / before < 1.5


def test_nodule_is_brighter_than_the_lung_around_it_after_resampling(chest):
    hu, lungs, nodule, geometry = chest
    result = preprocess_case("c", hu, nodule, geometry, _settings(), "chest")
    inside = result.image[result.mask > 0].mean()
    shell = ndimage.binary_dilation(result.mask, iterations=2) & ~ndimage.binary_dilation(result.mask)
    assert inside > result.image[shell].mean() + 300


def test_a_nodule_too_small_for_the_grid_is_a_clear_error(chest):
    from tests.conftest import synthetic_chest

    hu, lungs, nodule, geometry = synthetic_chest(nodule_radius_mm=4.0)
    with pytest.raises(InputError, match="no nodule voxel left"):
        preprocess_case("c", hu, nodule, geometry, _settings(spacing=(20.0, 20.0, 20.0), size=(16, 16, 16)), "chest")


def test_a_volume_without_lungs_is_a_clear_error(chest):
    hu, lungs, nodule, geometry = chest
    with pytest.raises(InputError, match="no lung found"):
        preprocess_case("c", np.full_like(hu, 40), nodule, geometry, _settings(), "scan-x")


def test_nodule_count_and_volumes_come_from_the_labels(chest):
    hu, lungs, nodule, geometry = chest
    labels = nodule.astype(np.uint8)
    x = np.indices(nodule.shape)[2]
    labels[nodule & (x > x[nodule].mean())] = 2   # split the nodule in two labels
    result = preprocess_case("c", hu, labels, geometry, _settings(), "chest")
    assert result.record["n_nodules"] == 2
    volumes = [float(v) for v in result.record["nodule_volumes_mm3"].split(";")]
    assert np.isclose(sum(volumes), nodule.sum() * np.prod(geometry.spacing), rtol=1e-3)


# ----------------------------------------------------------------------------- nodule volume on the grid

@pytest.mark.parametrize("grid", [(5.0, 3.0, 3.0), (2.5, 1.25, 1.25)], ids=["demo", "lidc"])
def test_resampled_nodules_keep_their_volume_and_none_is_lost(grid):
    from lungsynth.preprocess.grid import sphere_volume_kept

    rng = np.random.default_rng(7)
    for diameter in (3, 4, 5, 6, 8, 10, 15, 20, 30):
        for _ in range(3):
            before, after = sphere_volume_kept(diameter, grid, rng)
            assert after > 0, f"a {diameter} mm nodule vanished on the {grid} mm grid"
            # within 15 %, or within the rounding to whole voxels where 15 % is less than half a voxel
            # (a 5 mm nodule is 1.4 voxels of the demo's 5 x 3 x 3 mm grid)
            tolerance = max(0.15 * before, 0.55 * np.prod(grid))
            if diameter >= 5:
                assert abs(after - before) <= tolerance, (diameter, grid, before, after)


def test_partial_volumes_keep_the_rounded_sum_per_component():
    from lungsynth.preprocess.grid import keep_partial_volume

    partial = np.zeros((8, 8, 8))
    partial[1, 1, 1:4] = [0.6, 0.9, 0.7]       # sums to 2.2: the two highest voxels
    partial[6, 6, 6] = 0.2                     # under half a voxel: still kept, as one voxel
    kept = keep_partial_volume(partial)
    assert kept[1, 1, 1:4].tolist() == [0, 1, 1] and kept[6, 6, 6] == 1 and kept.sum() == 3
