import math

import numpy as np
import pytest

from lungsynth.errors import InputError
from lungsynth.io import Geometry, write_nifti
from lungsynth.nnunet.evaluate import (confusion_counts, dice, dice_from_counts, dice_table, nnunet_dice,
                                       nodule_properties)

from .toys import GEOMETRY


def cube(shape, lo, hi):
    m = np.zeros(shape, np.uint8)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = 1
    return m


def test_dice_is_formula_4_of_the_paper():
    truth = cube((8, 8, 8), (0, 0, 0), (2, 2, 2))       # 8 voxels
    prediction = cube((8, 8, 8), (1, 0, 0), (3, 2, 2))  # 8 voxels, 4 shared
    assert confusion_counts(truth, prediction) == (4, 4, 4)
    assert dice(truth, prediction) == pytest.approx(2 * 4 / (2 * 4 + 4 + 4))
    assert dice(truth, truth) == 1.0 and dice(truth, np.zeros_like(truth)) == 0.0


def test_empty_truth_and_prediction_score_empty_dice_not_nan():
    empty = np.zeros((4, 4, 4), np.uint8)
    assert dice(empty, empty) == 1.0
    assert math.isnan(dice(empty, empty, empty_dice=math.nan))
    assert dice(empty, cube((4, 4, 4), (0, 0, 0), (1, 1, 1))) == 0.0  # false positives on an empty truth
    assert dice_from_counts(0, 0, 0, empty_dice=0.5) == 0.5


def test_dice_rejects_different_shapes():
    with pytest.raises(ValueError):
        dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))


def test_project_dice_equals_nnunets_own_evaluation_on_the_same_files(tmp_path):
    rng = np.random.default_rng(0)
    shape = (16, 16, 16)
    truths = {
        "overlap": cube(shape, (2, 2, 2), (9, 9, 9)),
        "miss": cube(shape, (2, 2, 2), (5, 5, 5)),
        "noisy": (rng.random(shape) < 0.2).astype(np.uint8),
        "empty_truth": np.zeros(shape, np.uint8),
    }
    predictions = {
        "overlap": cube(shape, (4, 3, 2), (11, 9, 8)),
        "miss": cube(shape, (10, 10, 10), (12, 12, 12)),
        "noisy": (rng.random(shape) < 0.3).astype(np.uint8),
        "empty_truth": cube(shape, (0, 0, 0), (2, 2, 2)),
    }
    pairs = {}
    for case in truths:
        pairs[case] = (tmp_path / f"t_{case}.nii.gz", tmp_path / f"p_{case}.nii.gz")
        write_nifti(pairs[case][0], truths[case], GEOMETRY)
        write_nifti(pairs[case][1], predictions[case], GEOMETRY)
    table = dice_table(pairs).set_index("case")
    for case, (truth_path, prediction_path) in pairs.items():
        assert table.loc[case, "dice"] == pytest.approx(nnunet_dice(truth_path, prediction_path), abs=1e-12)
    assert 0 < table.loc["overlap", "dice"] < 1 and table.loc["miss", "dice"] == 0
    assert table.loc["overlap", "truth_voxels"] == int(truths["overlap"].sum())


def test_both_empty_case_differs_from_nnunet_only_as_documented(tmp_path):
    empty = np.zeros((8, 8, 8), np.uint8)
    truth, prediction = tmp_path / "t.nii.gz", tmp_path / "p.nii.gz"
    write_nifti(truth, empty, GEOMETRY)
    write_nifti(prediction, empty, GEOMETRY)
    assert math.isnan(nnunet_dice(truth, prediction))
    row = dice_table({"c": (truth, prediction)}).iloc[0]
    assert row["dice"] == 1.0 and row["tp"] == row["fp"] == row["fn"] == 0


def test_dice_table_rejects_prediction_on_another_grid(tmp_path):
    write_nifti(tmp_path / "t.nii.gz", np.zeros((8, 8, 8), np.uint8), GEOMETRY)
    write_nifti(tmp_path / "p.nii.gz", np.zeros((8, 8, 8), np.uint8), Geometry((2.5, 2.5, 2.5), (0.0, 0.0, 0.0)))
    with pytest.raises(InputError) as err:
        dice_table({"c": (tmp_path / "t.nii.gz", tmp_path / "p.nii.gz")})
    assert err.value.where.endswith("p.nii.gz")


def test_nodule_properties_count_volume_and_pleura_distance():
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[5:7, 5:7, 5:7] = 1            # 8 voxels; lung starts at index 2, outside at index 1
    mask[12:15, 12:15, 12:15] = 1      # 27 voxels
    lung = np.zeros_like(mask)
    lung[2:18, 2:18, 2:18] = 1
    props = nodule_properties(mask, (2.0, 1.0, 1.0), lung)
    assert props["nodules"] == 2
    assert props["nodule_volume_mm3"] == pytest.approx(35 * 2.0)
    assert props["largest_nodule_mm3"] == pytest.approx(27 * 2.0)
    assert props["distance_to_pleura_mm"] == pytest.approx(4.0)  # voxel 5 to outside voxel 1 along y/x (1 mm)
    assert math.isnan(nodule_properties(mask, (1, 1, 1))["distance_to_pleura_mm"])
    assert nodule_properties(np.zeros_like(mask), (1, 1, 1))["nodules"] == 0


def test_describe_cases_reads_mask_and_image(tmp_path):
    from lungsynth.nnunet.evaluate import describe_cases

    image = np.full((6, 20, 20), -1000, np.int16)
    image[:, 2:18, 2:18] = 40
    image[:, 5:15, 5:15] = -850
    mask = np.zeros_like(image, dtype=np.uint8)
    mask[2:4, 5:7, 8:10] = 1                      # on the pleura (lung starts at y = 5)
    image[mask > 0] = 30
    g = Geometry((0.5, 0.5, 2.0), (0.0, 0.0, 0.0))  # x, y, z spacing
    write_nifti(tmp_path / "m.nii.gz", mask, g)
    write_nifti(tmp_path / "i.nii.gz", image, g)
    table = describe_cases(["c"], {"c": tmp_path / "m.nii.gz"}, images={"c": tmp_path / "i.nii.gz"})
    row = table.iloc[0]
    assert row["nodules"] == 1 and row["nodule_volume_mm3"] == pytest.approx(8 * 0.5 * 0.5 * 2.0)
    assert row["distance_to_pleura_mm"] == pytest.approx(0.5)  # one in-plane voxel
    assert np.isnan(describe_cases(["c"], {"c": tmp_path / "m.nii.gz"}).iloc[0]["distance_to_pleura_mm"])
