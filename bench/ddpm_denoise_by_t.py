#!/usr/bin/env python
"""At which noise level does a trained DDPM lose the chest? Its one-step x_0 prediction per t.

Real validation crops are noised to timestep t (their residual to the model's mean crop, as in
training), the whole-volume net predicts x_0 once, and the prediction is compared with the
truth: its coarse and fine departure from the mean crop as a ratio to the truth's
(lungsynth.ddpm.quality.residual_amplitude), the correlation of the two departures, and the
prediction's lung median HU. Where the ratio falls towards 0 the model sees no layout in x_t and
predicts the mean crop; sampling has to commit to a chest there, from what the net sees.

    .venv/bin/python bench/ddpm_denoise_by_t.py --run runs/benchmark \\
        --model base=bench/results/recipe/base/model.pt --csv docs/benchmark/ddpm_denoise_by_t.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import replace_row  # noqa: E402
from lungsynth.ddpm.checkpoint import load_model  # noqa: E402
from lungsynth.ddpm.coordinates import whole_condition  # noqa: E402
from lungsynth.ddpm.intensity import hu_to_model, model_to_hu  # noqa: E402
from lungsynth.ddpm.quality import residual_amplitude  # noqa: E402
from lungsynth.ddpm.sample import Denoiser, implied_x0  # noqa: E402
from lungsynth.ddpm.schedule import training_scheduler  # noqa: E402
from lungsynth.io import read_nifti  # noqa: E402
from lungsynth.runtime import cpu_description  # noqa: E402

TIMESTEPS = (50, 200, 400, 600, 800, 950)


def predicted_x0(loaded, scheduler, denoise: Denoiser, hu: np.ndarray, t: int,
                 generator: torch.Generator) -> np.ndarray:
    """The net's x_0 (HU) from the crop noised to ``t`` as training noises it (its residual to the
    mean crop, scaled); ``denoise`` holds the crop's mask condition."""
    mean = loaded.mean_image if loaded.mean_image is not None else torch.zeros(hu.shape)
    residual = ((hu_to_model(torch.from_numpy(hu), loaded.intensity) - mean) * loaded.data_scale)[None, None]
    timestep = torch.tensor([t])
    x_t = scheduler.add_noise(residual, torch.randn(residual.shape, generator=generator), timestep)
    x0 = implied_x0(denoise(x_t, t), x_t, scheduler.alphas_cumprod[t], loaded.schedule.prediction_type)
    return model_to_hu(x0[0, 0] / loaded.data_scale + mean, loaded.intensity).numpy()


def by_timestep(loaded, crops: list[tuple[np.ndarray, np.ndarray]], timesteps, seed: int = 0) -> list[dict]:
    """One row per timestep: the mean over ``crops`` ``(hu, mask)`` of the prediction's figures."""
    generator = torch.Generator().manual_seed(seed)
    scheduler = training_scheduler(loaded.schedule)
    mean = loaded.mean_image if loaded.mean_image is not None else torch.zeros(crops[0][0].shape)
    mean_hu = model_to_hu(mean, loaded.intensity).numpy()
    denoisers = [Denoiser(loaded.model, whole_condition(mask)) for _, mask in crops]
    truths = [residual_amplitude(hu, mean_hu) for hu, _ in crops]
    rows = []
    for t in timesteps:
        figures = []
        for (hu, _), denoise, truth in zip(crops, denoisers, truths):
            prediction = predicted_x0(loaded, scheduler, denoise, hu, int(t), generator)
            got = residual_amplitude(prediction, mean_hu)
            lung = prediction < -400
            figures.append([got["coarse_sd_hu"] / truth["coarse_sd_hu"], got["fine_sd_hu"] / truth["fine_sd_hu"],
                            float(np.corrcoef((prediction - mean_hu).ravel(), (hu - mean_hu).ravel())[0, 1]),
                            float(np.median(prediction[lung])) if lung.any() else float("nan")])
        figures = np.asarray(figures)
        coarse, fine, corr = figures[:, :3].mean(axis=0)
        medians = figures[:, 3][np.isfinite(figures[:, 3])]        # NaN: no voxel below -400 HU
        lung_median = float(medians.mean()) if medians.size else float("nan")
        rows.append({"t": int(t), "coarse_ratio": coarse, "fine_ratio": fine, "correlation": corr,
                     "lung_median_hu": lung_median})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="workflow run folder holding results/data")
    p.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT")
    p.add_argument("--cases", type=int, default=3, help="validation crops used")
    p.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--csv", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    data = args.run / "results" / "data"
    cases = json.loads((data / "splits.json").read_text())["validation"][: args.cases]
    crops = [(np.asarray(read_nifti(data / "images" / f"{c}.nii.gz")[0], np.float32),
              np.asarray(read_nifti(data / "masks" / f"{c}.nii.gz")[0])) for c in cases]
    for item in args.model:
        name, _, path = item.partition("=")
        loaded = load_model(path)
        for row in by_timestep(loaded, crops, args.timesteps):
            replace_row(args.csv, ["model", "t"], {"model": name, "cases": len(crops), **row, "cpu": cpu_description()})
            print(f"{name} t={row['t']}: coarse {row['coarse_ratio']:.2f}, fine {row['fine_ratio']:.2f}, "
                  f"correlation {row['correlation']:.2f}, lung median {row['lung_median_hu']:.0f} HU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
