"""TCIA's download layouts and the quirks of real series, written by the phantom and read back."""

import logging
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest

from lungsynth.errors import InputError
from lungsynth.lidc.dicom import read_series
from lungsynth.lidc.layout import patient_root, present_patients


@pytest.fixture(scope="module")
def scan_and_volume(small_scans):
    from lungsynth.lidc.compat import import_pylidc
    from lungsynth.phantom import phantom_volume

    import_pylidc()
    scan = small_scans[0]
    return scan, phantom_volume(scan, seed=3)


def write(root, scan_and_volume, layout, quirks=()):
    from lungsynth.phantom import write_series

    scan, volume = scan_and_volume
    return write_series(volume, scan, root, seed=3, layout=layout, quirks=quirks)


@pytest.mark.parametrize("layout", ["uid", "nbia", "nbia_old"])
def test_every_layout_reads_back_from_every_root_a_user_may_give(tmp_path, scan_and_volume, layout):
    scan, volume = scan_and_volume
    folder = write(tmp_path, scan_and_volume, layout)
    roots = [tmp_path] if layout == "uid" else [tmp_path, folder.parents[3], folder.parents[2]]
    for root in roots:   # the download folder, the manifest folder, its LIDC-IDRI folder
        hu, geometry = read_series(scan, root)
        assert np.array_equal(hu, volume.hu) and geometry.matches(volume.geometry), root
    if layout == "nbia":
        assert folder.parent.name.startswith("01-01-2000-NA-NA-") and folder.parent.name.endswith(
            scan.study_instance_uid[-5:])
        assert folder.name.endswith("-NA-" + scan.series_instance_uid[-5:])
        assert (folder / "1-001.dcm").exists() and (folder / "069.xml").exists()


def test_nbia_download_has_decoys_the_reader_passes_over(tmp_path, scan_and_volume):
    scan, volume = scan_and_volume
    folder = write(tmp_path, scan_and_volume, "nbia")
    patient = folder.parents[1]
    other_series = [p for p in patient.rglob("*.dcm") if p.parent != folder]
    if int(scan.patient_id[-4:]) % 2:
        assert other_series and pydicom.dcmread(other_series[0]).Modality == "DX"
    dx = patient / "01-01-2000-NA-NA-00000" / "1.000000-NA-00000"   # a DX study named like the CT's
    dx.mkdir(parents=True)
    decoy = pydicom.dcmread(next(folder.glob("*.dcm")))
    decoy.SeriesInstanceUID = "1.2.3.4"
    decoy.save_as(dx / "1-001.dcm")
    assert np.array_equal(read_series(scan, tmp_path)[0], volume.hu)


def test_nbia_manifest_metadata_lists_each_series(tmp_path, scan_and_volume):
    from lungsynth.phantom import manifest_metadata

    scan, _ = scan_and_volume
    folder = write(tmp_path, scan_and_volume, "nbia")
    table = pd.read_csv(manifest_metadata(tmp_path, [scan], "nbia"))
    assert list(table["Series UID"]) == [scan.series_instance_uid]
    assert (folder.parents[3] / table["File Location"][0]).resolve() == folder.resolve()


def test_duplicated_slice_keeps_the_lower_instance_number_as_pylidc_does(tmp_path, scan_and_volume, caplog):
    scan, volume = scan_and_volume
    folder = write(tmp_path, scan_and_volume, "nbia", quirks=["duplicate_slice", "numbered_from_top"])
    assert len(list(folder.glob("*.dcm"))) == volume.hu.shape[0] + 1
    with caplog.at_level(logging.WARNING, logger="lungsynth"):
        hu, _ = read_series(scan, tmp_path)
    assert np.array_equal(hu, volume.hu)   # the duplicate (zeros) was not taken
    assert "duplicated slice" in caplog.text and "as pylidc does" in caplog.text


@pytest.mark.parametrize("quirk, problem", [("mixed_pixel_spacing", "PixelSpacing differs"),
                                            ("missing_slice", "series lacks 1 slice")])
def test_series_that_cannot_be_trusted_stop_with_the_file_or_folder(tmp_path, scan_and_volume, quirk, problem):
    scan, _ = scan_and_volume
    write(tmp_path, scan_and_volume, "uid", quirks=[quirk])
    with pytest.raises(InputError, match=problem):
        read_series(scan, tmp_path)


def test_a_root_without_patient_folders_says_what_to_set(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(InputError, match="manifest folder") as err:
        patient_root(tmp_path)
    assert err.value.where == str(tmp_path)
    with pytest.raises(InputError, match="not found"):
        patient_root(tmp_path / "nowhere")


def test_partial_download_names_the_missing_patients(tmp_path, scan_and_volume, caplog):
    from lungsynth.lidc.annotations import NoduleCriteria
    from lungsynth.selection import select_lidc

    scan, _ = scan_and_volume
    write(tmp_path, scan_and_volume, "nbia")
    root, present, missing = present_patients(tmp_path, [scan.patient_id, "LIDC-IDRI-9999"])
    assert present == [scan.patient_id] and missing == ["LIDC-IDRI-9999"] and root.name == "LIDC-IDRI"
    nodules = pd.DataFrame({"patient_id": [scan.patient_id, "LIDC-IDRI-9998"], "scan_id": [scan.id, 99999],
                            "nodule": [1, 1], "n_readers": [4, 4], "diameter_mm": [12.0, 12.0],
                            "volume_mm3": [900.0, 900.0], "n_slices": [50, 50]})
    with caplog.at_level(logging.WARNING, logger="lungsynth"):
        chosen = select_lidc(nodules, NoduleCriteria(3.0, 1), tmp_path, 0, 0)
    assert list(chosen.case) == [scan.patient_id]
    assert "LIDC-IDRI-9998" in caplog.text and str(root) in caplog.text
    shutil.rmtree(root / scan.patient_id)
    (root / "LIDC-IDRI-0001").mkdir()
    with pytest.raises(InputError, match="holds none of the 2"):
        select_lidc(nodules, NoduleCriteria(3.0, 1), tmp_path, 0, 0)
