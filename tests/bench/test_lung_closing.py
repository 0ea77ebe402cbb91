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


def test_a_schedule_study_setting_is_scored_seed_by_seed(tmp_path):
    hu, lungs, nodule, geometry = synthetic_chest()
    run, cache, study = tmp_path / "run", tmp_path / "cache", tmp_path / "study" / "bench1200"
    data = run / "results" / "data"
    (data / "splits.json").parent.mkdir(parents=True)
    (data / "splits.json").write_text(json.dumps({"train": [], "validation": ["v1"], "test": ["t1"]}))
    half = nodule.copy()
    half[: nodule.shape[0] // 2 + 1] = False                      # seed 2 finds part of the nodule
    for seed, predicted in ((1, nodule), (2, half), (10, np.zeros(hu.shape, bool))):
        (study / f"seed{seed}" / "model").mkdir(parents=True)
        for case in ("v1", "t1"):
            write_nifti(cache / "run" / "bench1200" / f"seed{seed}" / f"{case}.nii.gz", predicted.astype(np.uint8),
                        geometry, dtype=np.uint8)
    for case in ("v1", "t1"):
        write_nifti(data / "images" / f"{case}.nii.gz", hu, geometry, dtype=np.int16)
        write_nifti(data / "masks" / f"{case}.nii.gz", nodule.astype(np.uint8), geometry, dtype=np.uint8)
    csv = tmp_path / "study.csv"

    assert analysis().main(["--run", str(run), "--study", str(study), "--variants", "3",
                            "--cache", str(cache), "--csv", str(csv)]) == 0

    row = pd.read_csv(csv).iloc[0]
    assert row["arm"] == "bench1200" and row["runs"] == 3
    dice = [float(x) for x in row["run_test_dice"].split()]     # seeds in numeric order: 1, 2, 10
    assert dice[0] == pytest.approx(1.0) and 0 < dice[1] < 1 and dice[2] == 0
    with pytest.raises(SystemExit, match="no trained seeds"):
        analysis().main(["--run", str(run), "--study", str(tmp_path / "nothing"), "--cache", str(cache)])
