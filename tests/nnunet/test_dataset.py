import json
import os

import numpy as np
import pytest

from lungsynth.errors import InputError
from lungsynth.io import Geometry, read_nifti, write_nifti
from lungsynth.nnunet.dataset import write_raw_dataset

from .toys import GEOMETRY


def test_raw_dataset_has_nnunet_layout_and_one_fixed_fold(tmp_path, toy_cases):
    train = {c: toy_cases[c] for c in ("toy000", "toy001", "toy002")}
    validation = {c: toy_cases[c] for c in ("toy004",)}
    target = tmp_path / "raw" / "Dataset501_Real"
    split = write_raw_dataset(target, train, validation)

    everyone = ("toy000", "toy001", "toy002", "toy004")
    assert sorted(os.listdir(target / "imagesTr")) == [f"{c}_0000.nii.gz" for c in everyone]
    assert sorted(os.listdir(target / "labelsTr")) == [f"{c}.nii.gz" for c in everyone]
    info = json.loads((target / "dataset.json").read_text())
    assert info["channel_names"] == {"0": "CT"} and info["labels"] == {"background": 0, "nodule": 1}
    assert info["numTraining"] == 4 and info["file_ending"] == ".nii.gz"
    splits = json.loads((target / "splits_final.json").read_text())
    assert splits == [split] == [{"train": ["toy000", "toy001", "toy002"], "val": ["toy004"]}]
    # relative links that resolve to the crops
    link = target / "imagesTr" / "toy000_0000.nii.gz"
    assert link.is_symlink() and not os.readlink(link).startswith("/")
    assert np.array_equal(read_nifti(link)[0], read_nifti(toy_cases["toy000"][0])[0])
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".tmp")]


def test_copy_mode_copies_files(tmp_path, toy_cases):
    target = tmp_path / "Dataset502_Synthetic"
    write_raw_dataset(target, {"toy000": toy_cases["toy000"]}, {"toy004": toy_cases["toy004"]}, link="copy")
    assert not (target / "labelsTr" / "toy000.nii.gz").is_symlink()


def test_rewriting_replaces_the_whole_dataset(tmp_path, toy_cases):
    target = tmp_path / "Dataset501_Real"
    val = {"toy004": toy_cases["toy004"]}
    write_raw_dataset(target, {"toy000": toy_cases["toy000"], "toy001": toy_cases["toy001"]}, val)
    write_raw_dataset(target, {"toy002": toy_cases["toy002"]}, val)
    assert sorted(os.listdir(target / "labelsTr")) == ["toy002.nii.gz", "toy004.nii.gz"]


def test_case_in_train_and_validation_is_rejected(tmp_path, toy_cases):
    with pytest.raises(InputError, match="both in training and validation"):
        write_raw_dataset(tmp_path / "Dataset501_Real", {"toy000": toy_cases["toy000"]},
                          {"toy000": toy_cases["toy000"]})


def test_mask_with_other_grid_is_rejected_naming_the_mask(tmp_path, toy_cases):
    bad_mask = tmp_path / "bad.nii.gz"
    write_nifti(bad_mask, np.zeros((32, 32, 30), np.uint8), GEOMETRY)
    with pytest.raises(InputError) as err:
        write_raw_dataset(tmp_path / "Dataset501_Real", {"toy000": (toy_cases["toy000"][0], bad_mask)},
                          {"toy004": toy_cases["toy004"]})
    assert err.value.where == str(bad_mask) and "size" in err.value.problem
    assert not (tmp_path / "Dataset501_Real").exists()


def test_mask_with_other_spacing_is_rejected(tmp_path, toy_cases):
    bad_mask = tmp_path / "bad.nii.gz"
    write_nifti(bad_mask, np.zeros((32, 32, 32), np.uint8), Geometry((2.0, 2.5, 2.5), GEOMETRY.origin))
    with pytest.raises(InputError, match="spacing"):
        write_raw_dataset(tmp_path / "Dataset501_Real", {"toy000": (toy_cases["toy000"][0], bad_mask)},
                          {"toy004": toy_cases["toy004"]})


def test_missing_file_and_bad_folder_name_are_rejected(tmp_path, toy_cases):
    val = {"toy004": toy_cases["toy004"]}
    with pytest.raises(InputError, match="file not found"):
        write_raw_dataset(tmp_path / "Dataset501_Real", {"x": (tmp_path / "none.nii.gz", toy_cases["toy000"][1])}, val)
    with pytest.raises(InputError, match="DatasetXXX_Name"):
        write_raw_dataset(tmp_path / "Real", {"toy000": toy_cases["toy000"]}, val)
    with pytest.raises(InputError, match="no validation"):
        write_raw_dataset(tmp_path / "Dataset501_Real", {"toy000": toy_cases["toy000"]}, {})


def test_arms_take_the_papers_training_cases():
    from lungsynth.arms import arm
    from lungsynth.nnunet.dataset import arm_training_cases

    real = {"LIDC-1": ("r1.nii.gz", "m1.nii.gz")}
    general = {"LIDC-1": ("g1.nii.gz", "m1.nii.gz")}
    targeted = {"LIDC-9_v1": ("t9.nii.gz", "m9.nii.gz")}
    assert arm_training_cases(arm("Real"), {"real": real}) == real
    assert arm_training_cases(arm("Synthetic"), {"general": general}) == {"syn-LIDC-1": general["LIDC-1"]}
    assert arm_training_cases(arm("Real+Synthetic"), {"real": real, "targeted": targeted}) == {
        "LIDC-1": real["LIDC-1"], "tgt-LIDC-9_v1": targeted["LIDC-9_v1"]}
    with pytest.raises(InputError, match="general"):
        arm_training_cases(arm("Synthetic"), {"real": real})
    with pytest.raises(InputError, match="does not train on the targeted"):
        arm_training_cases(arm("Real"), {"real": real, "targeted": targeted})
    with pytest.raises(InputError, match="unknown arm"):
        arm("Other")
