"""The shrinkage diagnosis on a toy run: real crops score 1 x real, blends with the mean crop less."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from lungsynth.io import read_nifti, write_nifti
from tests.bench import load_bench, toy_run


def test_blends_towards_the_mean_crop_score_below_the_real_crops(tmp_path):
    run, _ = toy_run(tmp_path / "run", seed=4)
    module = load_bench("ddpm_shrinkage")
    data = run / "results" / "data"
    split = json.loads((data / "splits.json").read_text())
    from lungsynth.ddpm.settings import DdpmSettings

    reference = module.mean_crop(data / "images", split["train"], DdpmSettings.from_config({}).intensity)
    copies, blends = tmp_path / "copies", tmp_path / "blends"
    for case in split["validation"] + split["test"]:
        hu, geometry = read_nifti(data / "images" / f"{case}.nii.gz")
        write_nifti(copies / f"{case}_s0.nii.gz", hu, geometry)
        write_nifti(blends / f"{case}_s0.nii.gz", (0.3 * hu + 0.7 * reference).astype(np.float32), geometry)
    (blends / "unrelated.nii.gz").write_bytes(b"")           # not named after a case: ignored
    csv = tmp_path / "shrinkage.csv"
    assert module.main(["--run", str(run), "--volumes", f"copies={copies}", "--volumes", f"blends={blends}",
                        "--csv", str(csv)]) == 0
    table = pd.read_csv(csv).set_index("set")
    assert table.loc["copies", "coarse_ratio"] == 1 and table.loc["copies", "fine_ratio"] == 1
    assert 0.2 < table.loc["blends", "coarse_ratio"] < 0.4 and 0.2 < table.loc["blends", "fine_ratio"] < 0.4
    assert (table["volumes"] == 2).all() and table["cpu"].str.len().gt(0).all()
    assert module.main(["--run", str(run), "--volumes", f"copies={copies}", "--csv", str(csv)]) == 0
    assert len(pd.read_csv(csv)) == 2                          # a rerun replaces its row
