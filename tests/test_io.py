import nibabel as nib
import numpy as np
import pytest

from lungsynth.errors import InputError
from lungsynth.io import Geometry, atomic_path, read_nifti, write_nifti


def test_nifti_round_trip_keeps_array_order_and_geometry(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    geometry = Geometry(spacing=(0.7, 0.8, 2.5), origin=(-180.0, -170.5, -310.0))
    write_nifti(tmp_path / "a.nii.gz", array, geometry)
    back, back_geometry = read_nifti(tmp_path / "a.nii.gz")
    assert np.array_equal(back, array) and back_geometry.matches(geometry)


def test_simpleitk_and_nibabel_agree_on_spacing_and_origin(tmp_path):
    geometry = Geometry(spacing=(0.7, 0.8, 2.5), origin=(-180.0, -170.5, -310.0))
    write_nifti(tmp_path / "a.nii.gz", np.zeros((2, 3, 4), np.int16), geometry)
    image = nib.load(tmp_path / "a.nii.gz")
    assert np.allclose(image.header.get_zooms(), geometry.spacing)
    # NIfTI is RAS, SimpleITK/DICOM are LPS: x and y change sign
    assert np.allclose(image.affine[:3, 3], np.array(geometry.origin) * [-1, -1, 1])
    assert image.shape == (4, 3, 2)


def test_atomic_path_leaves_nothing_behind_when_the_write_fails(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_nifti_names_the_file(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="bad.nii.gz: not a readable image"):
        read_nifti(bad)
