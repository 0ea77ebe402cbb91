"""The restriction-variant analysis of a workflow run's models: cached unrestricted predictions
are scored with and without the lung restriction, test and validation alike."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lungsynth.io import write_nifti
from tests.bench import load_bench
from tests.conftest import synthetic_chest


def analysis():
    return load_bench("lung_closing")


def test_variants_score_cached_predictions_and_name_the_worst_validation_case(tmp_path):
    hu, lungs, nodule, geometry = synthetic_chest()
    run, cache = tmp_path / "run", tmp_path / "cache"
    data = run / "results" / "data"
    (data / "splits.json").parent.mkdir(parents=True)
    (data / "splits.json").write_text(json.dumps({"train": [], "validation": ["v1", "v2"], "test": ["t1"]}))
    cz, cy, cx = (np.asarray(hu.shape) - 1) // 2
    far = np.zeros(hu.shape, bool)
    far[cz - 1: cz + 2, cy + 32: cy + 35, cx - 1: cx + 2] = True      # soft tissue far behind the heart
    predictions = {"v1": nodule | far, "v2": np.zeros(hu.shape, bool), "t1": nodule | far}
    for case, predicted in predictions.items():
        write_nifti(data / "images" / f"{case}.nii.gz", hu, geometry, dtype=np.int16)
        write_nifti(data / "masks" / f"{case}.nii.gz", nodule.astype(np.uint8), geometry, dtype=np.uint8)
        write_nifti(cache / "run" / "Real" / "run1" / f"{case}.nii.gz", predicted.astype(np.uint8), geometry,
                    dtype=np.uint8)
    (run / "results" / "nnunet" / "Real" / "run1" / "model").mkdir(parents=True)   # every crop is cached
    csv = tmp_path / "variants.csv"

    assert analysis().main(["--run", str(run), "--variants", "none", "3", "3:15", "--worst", "1",
                            "--cache", str(cache), "--csv", str(csv)]) == 0

    table = pd.read_csv(csv).set_index("variant")
    with_far = 2 * nodule.sum() / (2 * nodule.sum() + far.sum())
    assert table.loc["none", "mean_test_dice"] == pytest.approx(with_far, rel=1e-3)
    assert table.loc["3", "mean_test_dice"] == pytest.approx(1.0)      # the far false positive is cut
    assert table.loc["3:15", "mean_test_dice"] == pytest.approx(1.0)
    assert table.loc["3", "mean_validation_dice"] == pytest.approx(0.5)  # v1 perfect, v2 missed
    assert table.loc["3", "worst_validation"] == "v2=0.000"
    with pytest.raises(SystemExit, match="no trained runs"):
        analysis().main(["--run", str(run), "--arms", "Synthetic", "--cache", str(cache)])
