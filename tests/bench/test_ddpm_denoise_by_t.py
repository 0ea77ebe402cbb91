"""The per-t denoising diagnosis on a tiny checkpoint: at t = 0 x_t is the crop, whatever the net."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.bench import load_bench
from tests.ddpm.toys import tiny_settings, toy_volumes


def test_one_row_per_timestep_and_the_crop_itself_at_the_first(tmp_path):
    from lungsynth.ddpm.checkpoint import load_model
    from lungsynth.ddpm.train import train_ddpm

    images, masks = toy_volumes()
    train_ddpm(images, masks, tiny_settings(steps=5), tmp_path / "model.pt", spacing=(2.0, 2.0, 2.0),
               progress=False, checkpoint_every=5)
    module = load_bench("ddpm_denoise_by_t")
    crops = [(np.asarray(i, np.float32), m) for i, m in zip(images[:2], masks[:2])]
    rows = module.by_timestep(load_model(tmp_path / "model.pt"), crops, [0, 500, 999])
    assert [r["t"] for r in rows] == [0, 500, 999]
    first = rows[0]     # alpha_bar(0) ~ 1: the prediction is x_t, i.e. the crop plus 1 % noise
    assert first["correlation"] > 0.99 and 0.95 < first["coarse_ratio"] < 1.05
    assert abs(first["lung_median_hu"] - (-800)) < 30
    assert rows[-1]["correlation"] < first["correlation"]


def test_the_command_writes_a_row_per_model_and_timestep(tmp_path):
    import json

    from lungsynth.ddpm.train import train_ddpm
    from lungsynth.io import Geometry, write_nifti

    images, masks = toy_volumes()
    data = tmp_path / "run" / "results" / "data"
    for i, (image, mask) in enumerate(zip(images, masks)):
        write_nifti(data / "images" / f"c{i}.nii.gz", image, Geometry(spacing=(2.0, 2.0, 2.0), origin=(0, 0, 0)))
        write_nifti(data / "masks" / f"c{i}.nii.gz", mask, Geometry(spacing=(2.0, 2.0, 2.0), origin=(0, 0, 0)))
    (data / "splits.json").write_text(json.dumps({"train": ["c0", "c1"], "validation": ["c2", "c3"], "test": []}))
    train_ddpm(images, masks, tiny_settings(steps=5), tmp_path / "model.pt", spacing=(2.0, 2.0, 2.0),
               progress=False, checkpoint_every=5)
    csv = tmp_path / "by_t.csv"
    module = load_bench("ddpm_denoise_by_t")
    assert module.main(["--run", str(tmp_path / "run"), "--model", f"tiny={tmp_path / 'model.pt'}",
                        "--timesteps", "10", "900", "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert list(table["t"]) == [10, 900] and set(table["model"]) == {"tiny"} and (table["cases"] == 2).all()
