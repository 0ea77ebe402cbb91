"""The LIDC reading path on phantom DICOM: what it reads right, and how it refuses broken series."""

import shutil

import numpy as np
import pytest

from lungsynth.errors import InputError
from lungsynth.lidc.annotations import NoduleCriteria, cluster_nodules
from lungsynth.lidc.scan import load_scan
from lungsynth.lidc.dicom import read_series, series_folder


@pytest.fixture(scope="module")
def phantom(tmp_path_factory, small_scans):
    """One scan written as phantom DICOM (module-scoped: writing takes seconds)."""
    from lungsynth.lidc.compat import import_pylidc
    from lungsynth.phantom import phantom_volume, write_phantom_series

    root = tmp_path_factory.mktemp("dicom")
    import_pylidc(root)
    scan = small_scans[0]
    write_phantom_series(scan, root, seed=3)
    return scan, root, phantom_volume(scan, seed=3)


@pytest.fixture
def broken(phantom, tmp_path):
    """A private copy of the phantom series to damage."""
    from lungsynth.lidc.compat import import_pylidc

    scan, root, _ = phantom
    copy = tmp_path / "dicom"
    shutil.copytree(root, copy)
    import_pylidc(copy)
    yield scan, copy, sorted(series_folder(scan, copy).glob("*.dcm"))
    import_pylidc(root)


def test_series_reads_back_as_the_phantom_volume(phantom):
    scan, root, volume = phantom
    hu, geometry = read_series(scan, root)
    assert np.array_equal(hu, volume.hu)
    assert geometry.matches(volume.geometry)
    assert np.allclose(geometry.spacing[:2], scan.pixel_spacing)


def test_pylidc_consensus_lands_on_the_painted_nodules(phantom):
    scan, root, volume = phantom
    hu, labels, geometry = load_scan(scan, root, NoduleCriteria(0.0, 1), 0.5)
    assert labels.max() == len(cluster_nodules(scan))
    for label in range(1, labels.max() + 1):    # each nodule on its own painted nodule
        ours, painted = labels == label, volume.nodule_labels == label
        assert 2 * (ours & painted).sum() / (ours.sum() + painted.sum()) >= 0.9


def test_corrupt_file_is_named(broken):
    scan, root, files = broken
    files[3].write_bytes(b"\x00" * 64 + b"this is not DICOM")
    with pytest.raises(InputError, match=rf"{files[3].name}: not a readable DICOM file"):
        read_series(scan, root)


def test_truncated_file_is_named(broken):
    scan, root, files = broken
    data = files[5].read_bytes()
    files[5].write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"{files[5].name}: (pixel data truncated|not a readable DICOM)"):
        read_series(scan, root)


def test_missing_slice_is_reported_against_the_database(broken):
    scan, root, files = broken
    files[7].unlink()
    with pytest.raises(InputError, match=r"series lacks 1 slice\(s\) listed in the LIDC annotation database"):
        read_series(scan, root)


def test_duplicated_slice_with_another_pixel_spacing_is_named(broken):
    import pydicom

    scan, root, files = broken
    copy = pydicom.dcmread(files[2])
    copy.PixelSpacing = [2 * float(v) for v in copy.PixelSpacing]
    copy.InstanceNumber = 999
    copy.save_as(files[2].with_name("copy-of-slice.dcm"))
    with pytest.raises(InputError, match=r"copy-of-slice.dcm: duplicated slice: .* cannot be trusted"):
        read_series(scan, root)


def test_missing_patient_folder_is_named(broken):
    scan, root, files = broken
    shutil.rmtree(root / scan.patient_id)
    (root / "LIDC-IDRI-0001").mkdir()   # the download holds other patients
    with pytest.raises(InputError, match=rf"{scan.patient_id}: no folder for {scan.patient_id}"):
        read_series(scan, root)
