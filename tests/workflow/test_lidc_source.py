"""The `lidc` source end to end through preprocessing, on a phantom written as a TCIA download
(the NBIA Data Retriever's layout, decoy XML and DX series included) and found from its manifest root."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from lungsynth.phantom.dicom_writer import MANIFEST

pytestmark = pytest.mark.workflow

N_SCANS = 3


@pytest.fixture(scope="module")
def nbia_download(tmp_path_factory, nodule_table_build):
    """A phantom run that wrote 3 patients in the NBIA layout; gives (its workdir, the manifest root)."""
    from tests.workflow.conftest import TEST_CONFIG, snakemake

    work = tmp_path_factory.mktemp("nbia-phantom")
    (work / "results/lidc").mkdir(parents=True)
    shutil.copy(nodule_table_build(), work / "results/lidc/nodules.csv")
    overlay = work / "nbia.yaml"
    overlay.write_text(f"phantom:\n  n_scans: {N_SCANS}\n  layout: nbia\n")
    manifest = work / "results/phantom/dicom" / MANIFEST
    result = snakemake(work, str(manifest.relative_to(work) / "metadata.csv"), configfiles=[TEST_CONFIG, overlay])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, manifest


@pytest.mark.parametrize("root", ["manifest", "LIDC-IDRI"])
def test_lidc_source_preprocesses_every_patient_of_an_nbia_download(nbia_download, root, tmp_path,
                                                                    nodule_table_build):
    from tests.workflow.conftest import TEST_CONFIG, snakemake

    phantom_run, manifest = nbia_download
    lidc_root = manifest if root == "manifest" else manifest / "LIDC-IDRI"
    work = tmp_path / "lidc"
    (work / "results/lidc").mkdir(parents=True)
    shutil.copy(nodule_table_build(), work / "results/lidc/nodules.csv")
    overlay = tmp_path / "lidc.yaml"
    overlay.write_text(f"data:\n  source: lidc\n  lidc_root: {lidc_root}\n")
    written = pd.read_csv(phantom_run / "results/data/selection.csv")
    # from the manifest root every case is read; from the LIDC-IDRI folder, the same series lookup
    # once the patients are found: their selection and one case
    first = sorted(written["patient_id"])[0]
    targets = ["results/data/cases.csv"] if root == "manifest" else \
        ["results/data/selection.csv", f"results/data/images/{first}.nii.gz"]
    result = snakemake(work, *targets, configfiles=[TEST_CONFIG, overlay])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    selected = pd.read_csv(work / "results/data/selection.csv")
    assert sorted(selected["patient_id"]) == sorted(written["patient_id"])       # every patient found
    assert not (work / "results/phantom").exists()                               # read in place, nothing written
    if root != "manifest":
        assert (work / f"results/data/images/{first}.nii.gz").stat().st_size > 10_000
        return
    cases = pd.read_csv(work / "results/data/cases.csv")
    assert sorted(cases["patient_id"]) == sorted(written["patient_id"])
    assert (cases["source"] == "lidc").all() and (cases["nodule_voxels"] > 0).all()
    for case in cases["case"]:
        assert (work / f"results/data/images/{case}.nii.gz").stat().st_size > 10_000
