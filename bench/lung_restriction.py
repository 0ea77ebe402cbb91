"""Where do the Real arm's false positives lie, and what would keeping only the lung do to its spread?

    .venv/bin/python bench/lung_restriction.py --run runs/benchmark --settings bench600-bf16 bench1200-bf16 \
        --csv docs/benchmark/lung_restriction.csv

Reads the test predictions that ``bench/nnunet_schedule.py`` cached per setting and seed, and
scores each run again with every predicted voxel outside the lung (``lungsynth.preprocess.lung``'s
mask of the test crop, dilated by ``--margins`` mm, so that nodules at the pleura stay) set to
background. One row per setting and margin: the runs' mean and sd of test Dice, and the false-
positive voxels per case outside the dilated lung. An analysis of runs already made: it decides
whether such a post-processing step is worth a setting, it is not one.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT  # noqa: E402


def ball(radius_mm: float, spacing_zyx) -> np.ndarray:
    """A ball of ``radius_mm`` on a grid of ``spacing_zyx`` (mm), as a structuring element."""
    r = [int(radius_mm // s) for s in spacing_zyx]
    z, y, x = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return (z * spacing_zyx[0]) ** 2 + (y * spacing_zyx[1]) ** 2 + (x * spacing_zyx[2]) ** 2 <= radius_mm ** 2


def dice(predicted: np.ndarray, truth: np.ndarray, empty: float = 1.0) -> float:
    total = predicted.sum() + truth.sum()
    return empty if total == 0 else 2.0 * (predicted & truth).sum() / total


def score(run: Path, study: Path, settings: list[str], margins: list[float]) -> pd.DataFrame:
    from scipy import ndimage

    from lungsynth.io import read_nifti
    from lungsynth.preprocess.lung import lung_mask

    @functools.cache
    def allowed(case: str, margin: float) -> np.ndarray:
        hu, geometry = read_nifti(run / "results" / "data" / "images" / f"{case}.nii.gz")
        spacing = tuple(geometry.spacing[::-1])
        lung = lung_mask(hu, spacing)
        return ndimage.binary_dilation(lung, ball(margin, spacing)) if margin > 0 else lung

    @functools.cache
    def truth(case: str) -> np.ndarray:
        return read_nifti(run / "results" / "data" / "masks" / f"{case}.nii.gz")[0] > 0

    rows = []
    for setting in settings:
        seeds = sorted((study / setting).glob("seed*/predictions"))
        if not seeds:
            raise SystemExit(f"{study / setting}: no cached runs with predictions")
        for margin in [None, *margins]:
            run_dice, outside = [], []
            for folder in seeds:
                per_case = []
                for path in sorted(folder.glob("*.nii.gz")):
                    case = path.name[: -len(".nii.gz")]
                    predicted = read_nifti(path)[0] > 0
                    keep = allowed(case, margins[0] if margin is None else margin)
                    if margin is None:
                        outside.append(int((predicted & ~truth(case) & ~keep).sum()))
                    else:
                        predicted = predicted & keep
                    per_case.append(dice(predicted, truth(case)))
                run_dice.append(float(np.mean(per_case)))
            d = np.array(run_dice)
            rows.append({"setting": setting, "lung_margin_mm": "none" if margin is None else margin,
                         "runs": len(d), "mean_test_dice": d.mean(), "sd_test_dice": d.std(ddof=1) if len(d) > 1 else np.nan,
                         "run_dice": " ".join(f"{x:.3f}" for x in d),
                         "fp_voxels_outside_lung_per_case": float(np.mean(outside)) if outside else np.nan})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="workflow run folder holding results/data")
    p.add_argument("--study", type=Path, default=ROOT / "bench" / "results" / "nnunet_schedule",
                   help="bench/nnunet_schedule.py's --out")
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--margins", type=float, nargs="+", default=[3.0, 6.0, 10.0],
                   help="mm around the lung mask that still counts (the first also defines 'outside')")
    p.add_argument("--csv", type=Path)
    args = p.parse_args(argv)
    table = score(args.run, args.study, args.settings, args.margins)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if args.csv:
        from lungsynth.io import write_csv

        write_csv(args.csv, table, float_format="%.4g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
