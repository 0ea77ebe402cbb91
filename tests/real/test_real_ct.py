"""Real anatomy through the data layer: the lung mask, the crop, a lesion's position, a compressed series."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lungsynth.io import Geometry, read_nifti, write_nifti
from lungsynth.preprocess.lung import lung_mask


@pytest.fixture(scope="module")
def chest(real_ct):
    hu, geometry = read_nifti(real_ct["chest_ct"])
    spacing = np.array(geometry.spacing[::-1])
    return hu, geometry, spacing, lung_mask(hu, spacing, -400)


def in_body_air(hu: np.ndarray) -> np.ndarray:
    """Air below -400 HU not connected, in its slice, to the border: lungs, airways, gut gas."""
    air = hu < -400
    out = np.zeros_like(air)
    for z, plane in enumerate(air):
        labels, _ = ndimage.label(plane)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        out[z] = plane & ~np.isin(labels, border[border > 0])
    return out


def test_lung_mask_finds_two_lungs_of_adult_volume_on_a_real_chest_ct(chest):
    hu, geometry, spacing, lungs = chest
    voxel_l = np.prod(spacing) / 1e6
    assert 2.0 < lungs.sum() * voxel_l < 7.0            # litres, vessels filled in
    labels, n = ndimage.label(lungs, structure=np.ones((3, 3, 3)))
    assert n == 2
    sides = []
    for k in (1, 2):
        part = labels == k
        assert part.sum() * voxel_l > 0.7
        centre = geometry.index_to_physical(ndimage.center_of_mass(part)[::-1])
        sides.append(np.sign(centre[0]))                # LPS: x < 0 is the patient's right
    assert sorted(sides) == [-1.0, 1.0]
    assert np.median(hu[lungs]) < -700                   # mostly aerated lung, not soft tissue


def test_lung_mask_leaves_out_the_trachea_and_the_air_around_the_body(chest):
    hu, _, _, lungs = chest
    top = hu.shape[0] - 1                                # the neck: z ascends to the head in this scan
    trachea = in_body_air(hu[top - 5:top + 1])
    assert trachea.sum() > 100                           # there is an airway in the top slices ...
    assert not lungs[top - 5:top + 1].any()              # ... and it is not lung
    assert not lungs[:, [0, -1], :].any() and not lungs[:, :, [0, -1]].any()
    outside = (hu < -400) & ~in_body_air(hu)
    assert not (lungs & outside).any()


def test_nifti_source_crops_the_lungs_and_keeps_a_lesion_at_its_world_position(chest, real_ct, tmp_path):
    from lungsynth.pipeline.data import preprocess
    from lungsynth.settings import PreprocessSettings

    hu, geometry, spacing, lungs = chest
    labels, _ = ndimage.label(lungs, structure=np.ones((3, 3, 3)))
    right = max((1, 2), key=lambda k: -geometry.index_to_physical(ndimage.center_of_mass(labels == k)[::-1])[0])
    depth = ndimage.distance_transform_edt(labels == right, sampling=spacing)
    deepest = np.unravel_index(np.argmax(depth), depth.shape)      # deep inside the right lung
    z, y, x = np.indices(hu.shape)
    lesion = sum(((g - c) * s) ** 2 for g, c, s in zip((z, y, x), deepest, spacing)) <= 10.0**2   # 20 mm
    images, masks = tmp_path / "images", tmp_path / "masks"
    write_nifti(images / "chest.nii.gz", hu, geometry)
    write_nifti(masks / "chest.nii.gz", lesion.astype(np.uint8), geometry)
    out = tmp_path / "out"
    settings = PreprocessSettings.from_config().to_dict()
    preprocess("chest", "nifti", settings, out / "image.nii.gz", out / "mask.nii.gz", out / "record.json",
               image=images / "chest.nii.gz", mask=masks / "chest.nii.gz")
    crop, crop_geometry = read_nifti(out / "image.nii.gz")
    mask, _ = read_nifti(out / "mask.nii.gz")
    assert crop.shape == tuple(settings["volume_size"])
    import json
    record = json.loads((out / "record.json").read_text())
    assert record["crop_coverage"] > 0.95                # the box of both lungs lies in the grid
    centre = crop_geometry.index_to_physical(ndimage.center_of_mass(mask > 0)[::-1])
    expected = geometry.index_to_physical(np.array(deepest[::-1], float))
    assert np.linalg.norm(np.asarray(centre) - np.asarray(expected)) < 3.0     # mm, on a 5 x 3 x 3 mm grid
    volume = (mask > 0).sum() * np.prod(crop_geometry.spacing)
    assert volume == pytest.approx(4 / 3 * np.pi * 10.0**3, rel=0.25)
    assert np.median(crop[mask > 0]) < -500              # the mask lies on aerated lung of the image, as painted


def test_a_compressed_real_series_reads_as_a_ct_volume(real_ct):
    import pydicom

    from lungsynth.lidc.dicom import read_dicom_folder

    files = sorted(real_ct["dicom_series"].iterdir())
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID.is_compressed     # JPEG 2000 lossless
    hu, geometry = read_dicom_folder(real_ct["dicom_series"])
    assert hu.shape == (20, 512, 512) and hu.dtype == np.int16
    assert geometry.spacing == pytest.approx((0.9765625, 0.9765625, 2.0))
    assert hu.min() >= -1100 and hu.max() < 4000
    assert (hu < -900).mean() > 0.05 and ((hu > -100) & (hu < 100)).mean() > 0.05   # air and soft tissue
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files]
    assert geometry.origin[2] == pytest.approx(min(z))   # ascending z, whatever the file order


def test_a_missing_decoder_is_named_with_the_package_to_install(real_ct, monkeypatch, tmp_path):
    import shutil

    import pydicom

    from lungsynth.errors import InputError
    from lungsynth.lidc.dicom import read_dicom_folder

    def no_plugin(self, *args, **kwargs):
        raise RuntimeError("Unable to decode the pixel data as none of the available plugins are available")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_plugin))
    with pytest.raises(InputError, match="pip install pylibjpeg pylibjpeg-openjpeg") as err:
        read_dicom_folder(real_ct["dicom_series"])
    assert "JPEG 2000" in str(err.value)


def test_own_data_may_give_a_dicom_folder_as_the_image(real_ct, tmp_path):
    from lungsynth.lidc.dicom import read_dicom_folder
    from lungsynth.nifti.source import load_pair, pair_cases

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    (images / "series1").symlink_to(real_ct["dicom_series"], target_is_directory=True)
    hu, geometry = read_dicom_folder(real_ct["dicom_series"])
    lesion = np.zeros(hu.shape, np.uint8)
    lesion[8:12, 250:260, 150:160] = 1
    write_nifti(masks / "series1.nii.gz", lesion, geometry)
    [(case, image, mask)] = pair_cases(images, masks)
    assert case == "series1"
    hu2, labels, geometry2 = load_pair(image, mask)
    assert np.array_equal(hu2, hu) and labels.max() == 1 and geometry2.matches(geometry)
