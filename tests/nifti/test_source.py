import numpy as np
import pytest

from lungsynth.errors import InputError
from lungsynth.io import Geometry, write_nifti
from lungsynth.nifti.source import load_pair, pair_cases

G = Geometry(spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0))


def _write(folder, name, array, geometry=G):
    folder.mkdir(exist_ok=True)
    write_nifti(folder / f"{name}.nii.gz", array, geometry)
    return folder / f"{name}.nii.gz"


def test_cases_pair_by_file_name(tmp_path):
    _write(tmp_path / "img", "a", np.zeros((4, 4, 4), np.int16))
    _write(tmp_path / "msk", "a", np.ones((4, 4, 4), np.uint8))
    assert [c for c, _, _ in pair_cases(tmp_path / "img", tmp_path / "msk")] == ["a"]


def test_an_image_without_its_mask_is_named(tmp_path):
    _write(tmp_path / "img", "a", np.zeros((4, 4, 4), np.int16))
    (tmp_path / "msk").mkdir()
    with pytest.raises(InputError, match=r"msk/a.nii.gz: missing"):
        pair_cases(tmp_path / "img", tmp_path / "msk")


def test_mask_of_another_shape_is_named(tmp_path):
    image = _write(tmp_path / "img", "a", np.zeros((4, 4, 4), np.int16))
    mask = _write(tmp_path / "msk", "a", np.ones((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match=r"msk/a.nii.gz: mask shape .* does not match"):
        load_pair(image, mask)


def test_mask_with_another_affine_is_named(tmp_path):
    image = _write(tmp_path / "img", "a", np.zeros((4, 4, 4), np.int16))
    mask = _write(tmp_path / "msk", "a", np.ones((4, 4, 4), np.uint8), Geometry((1.0, 1.0, 2.0), (5.0, 0.0, 0.0)))
    with pytest.raises(InputError, match=r"msk/a.nii.gz: mask affine does not match"):
        load_pair(image, mask)


def test_empty_mask_is_named(tmp_path):
    image = _write(tmp_path / "img", "a", np.zeros((4, 4, 4), np.int16))
    mask = _write(tmp_path / "msk", "a", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(InputError, match=r"msk/a.nii.gz: mask is empty"):
        load_pair(image, mask)
