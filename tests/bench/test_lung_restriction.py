"""The lung-restriction analysis: false positives outside the lung are counted and, once the
prediction is cut to the dilated lung, no longer lower the run's Dice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lungsynth.io import Geometry, write_nifti
from tests.bench import load_bench


def analysis():
    return load_bench("lung_restriction")


def test_false_positives_outside_the_lung_are_counted_and_cut(tmp_path):
    geometry = Geometry(spacing=(3.0, 3.0, 5.0), origin=(0.0, 0.0, 0.0))
    hu = np.full((24, 64, 64), 40, np.int16)                 # soft tissue, air around the body
    hu[:, :2], hu[:, -2:], hu[:, :, :2], hu[:, :, -2:] = -1000, -1000, -1000, -1000
    hu[2:22, 12:52, 8:28] = -850                             # two lungs
    hu[2:22, 12:52, 36:56] = -850
    truth = np.zeros(hu.shape, np.uint8)
    truth[10:13, 30:34, 16:20] = 1                           # a nodule inside the right lung
    hu[truth > 0] = 30
    predicted = truth.copy()
    predicted[10:14, 4:8, 30:34] = 1                         # false positive in the mediastinum's soft tissue
    run, study = tmp_path / "run", tmp_path / "study"
    write_nifti(run / "results" / "data" / "images" / "c1.nii.gz", hu, geometry, dtype=np.int16)
    write_nifti(run / "results" / "data" / "masks" / "c1.nii.gz", truth, geometry, dtype=np.uint8)
    write_nifti(study / "s" / "seed1" / "predictions" / "c1.nii.gz", predicted, geometry, dtype=np.uint8)
    csv = tmp_path / "restriction.csv"
    assert analysis().main(["--run", str(run), "--study", str(study), "--settings", "s", "--margins", "3",
                            "--csv", str(csv)]) == 0
    table = pd.read_csv(csv).set_index("lung_margin_mm")
    fp = int((predicted & (1 - truth)).sum())
    assert table.loc["none", "fp_voxels_outside_lung_per_case"] == fp
    assert table.loc["none", "mean_test_dice"] == pytest.approx(2 * truth.sum() / (2 * truth.sum() + fp))
    assert table.loc["3.0", "mean_test_dice"] == pytest.approx(1.0)
    with pytest.raises(SystemExit, match="no cached runs"):
        analysis().main(["--run", str(run), "--study", str(study), "--settings", "missing"])
