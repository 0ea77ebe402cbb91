"""The phantom as a DICOM series: found by pylidc, read back exactly, same seed -> same bytes."""

from __future__ import annotations

import hashlib

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from lungsynth.io import Geometry
from lungsynth.lidc.compat import import_pylidc


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.dcm"))}


def test_series_is_where_pylidc_looks_for_it(written, scan, dicom_root):
    import_pylidc(dicom_root)
    assert written == dicom_root / scan.patient_id / scan.study_instance_uid / scan.series_instance_uid
    assert scan.get_path_to_dicom_files() == str(written)
    assert len(list(written.glob("*.dcm"))) == len(scan.slice_zvals)
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_positions_spacing_and_uids_read_back_equal_the_database(written, scan):
    datasets = [pydicom.dcmread(p) for p in sorted(written.glob("*.dcm"))]
    zs = [float(ds.ImagePositionPatient[2]) for ds in datasets]
    assert zs == list(np.asarray(scan.slice_zvals, float))  # exact, in file order
    for ds in datasets:
        assert [float(v) for v in ds.PixelSpacing] == [scan.pixel_spacing, scan.pixel_spacing]
        assert float(ds.SliceThickness) == scan.slice_thickness
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert ds.StudyInstanceUID == scan.study_instance_uid
        assert ds.SeriesInstanceUID == scan.series_instance_uid
        assert ds.PatientID == scan.patient_id
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1


def test_file_meta_is_ct_image_storage_in_explicit_vr_little_endian(written):
    ds = pydicom.dcmread(next(written.glob("*.dcm")))
    assert ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.CTImageStorage
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.preamble == b"\x00" * 128


def test_every_viewer_field_says_not_patient_data(written):
    ds = pydicom.dcmread(next(written.glob("*.dcm")))
    assert str(ds.PatientName) == "PHANTOM^NOT_PATIENT_DATA"
    for field in ("SeriesDescription", "StudyDescription", "ImageComments"):
        assert "NOT PATIENT DATA" in str(getattr(ds, field))
    assert ds.Manufacturer == "lungsynth phantom"
    assert ds.StudyDate == "" and ds.PatientBirthDate == ""


def test_hu_round_trip_through_pylidc_is_exact(written, volume, scan, dicom_root):
    import_pylidc(dicom_root)
    images = scan.load_all_dicom_images(verbose=False)  # pylidc's reader, sorted by z
    hu = np.stack([im.pixel_array * float(im.RescaleSlope) + float(im.RescaleIntercept) for im in images])
    np.testing.assert_array_equal(hu, volume.hu)


def test_simpleitk_reads_the_series_with_the_phantom_geometry(written, volume):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(written)))
    image = reader.Execute()
    assert Geometry.of(image).matches(volume.geometry, atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume.hu)


def test_same_seed_gives_identical_bytes(written, scan, tmp_path):
    from lungsynth.phantom import write_phantom_series

    again = write_phantom_series(scan, tmp_path, seed=0)
    assert _hashes(again) == _hashes(written)


def test_rewriting_replaces_the_series_in_place(volume, scan, tmp_path):
    from lungsynth.phantom import write_series

    first = write_series(volume, scan, tmp_path, seed=0)
    (first / "stale.dcm").write_bytes(b"old")
    second = write_series(volume, scan, tmp_path, seed=0)
    assert second == first
    assert not (second / "stale.dcm").exists()
    assert [p.name for p in first.parent.iterdir()] == [first.name]


@pytest.mark.parametrize("seed", [0, 7])
def test_instance_uids_are_deterministic_and_depend_on_the_seed(scan, seed):
    from lungsynth.phantom.dicom_writer import instance_uid

    assert instance_uid(scan, seed, 3) == instance_uid(scan, seed, 3)
    assert instance_uid(scan, seed, 3) != instance_uid(scan, seed + 1, 3)
    assert instance_uid(scan, seed, 3) != instance_uid(scan, seed, 4)


def test_a_failed_write_leaves_no_partial_series(volume, scan, tmp_path, monkeypatch):
    from lungsynth.phantom import dicom_writer

    calls = {"n": 0}
    real = dicom_writer.dcmwrite

    def failing(path, ds, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(path, ds, **kwargs)

    monkeypatch.setattr(dicom_writer, "dcmwrite", failing)
    with pytest.raises(OSError):
        dicom_writer.write_series(volume, scan, tmp_path, seed=0)
    assert list(tmp_path.iterdir()) == []   # neither the patient folder nor its temporary sibling
