"""Bad input through the real rules: one line naming the file and the problem, no partial output."""

from __future__ import annotations

import numpy as np
import pytest

from lungsynth.io import Geometry, write_nifti
from tests.conftest import synthetic_chest

pytestmark = pytest.mark.workflow


@pytest.fixture
def own_data(tmp_path):
    """A user's NIfTI folders (source `nifti`) with one good and one broken case; returns (workdir, overlay)."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    hu, lungs, nodule, geometry = synthetic_chest()
    write_nifti(images / "good.nii.gz", hu, geometry)
    write_nifti(masks / "good.nii.gz", nodule.astype(np.uint8), geometry)
    write_nifti(images / "bad.nii.gz", hu, geometry)
    overlay = tmp_path / "own.yaml"
    overlay.write_text(f"data:\n  source: nifti\n  nifti_images: {images}\n  nifti_masks: {masks}\n")
    work = tmp_path / "work"
    work.mkdir()
    return work, overlay, masks


def _fails_cleanly(work, overlay, run_snakemake, expected):
    result = run_snakemake(work, "results/data/images/bad.nii.gz", configfiles=[overlay])
    assert result.returncode != 0
    errors = [line for line in (work / "logs/data/preprocess/bad.log").read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and expected in errors[0], errors
    assert "Traceback" not in (work / "logs/data/preprocess/bad.log").read_text()
    assert not (work / "results/data/images/bad.nii.gz").exists()
    assert not list((work / "results").rglob(".tmp-*"))


def test_mask_of_another_shape_stops_the_rule_naming_the_mask(own_data, run_snakemake):
    work, overlay, masks = own_data
    write_nifti(masks / "bad.nii.gz", np.ones((10, 10, 10), np.uint8), Geometry((3.0, 3.0, 5.0), (0.0, 0.0, 0.0)))
    _fails_cleanly(work, overlay, run_snakemake, f"{masks / 'bad.nii.gz'}: mask shape")


def test_empty_mask_stops_the_rule_naming_the_mask(own_data, run_snakemake):
    work, overlay, masks = own_data
    hu, lungs, nodule, geometry = synthetic_chest()
    write_nifti(masks / "bad.nii.gz", np.zeros(nodule.shape, np.uint8), geometry)
    _fails_cleanly(work, overlay, run_snakemake, f"{masks / 'bad.nii.gz'}: mask is empty")
