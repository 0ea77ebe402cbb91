"""Where do the Real arm's false positives lie, and what would keeping only the lung do to its spread?

    .venv/bin/python bench/lung_restriction.py --run runs/benchmark --settings bench600-bf16 bench1200-bf16 \
        --csv docs/benchmark/lung_restriction.csv

Reads the test predictions that ``bench/nnunet_schedule.py`` cached per setting and seed, and
scores each run again with every predicted voxel outside the lung (``lungsynth.preprocess.lung``'s
mask of the test crop, widened by ``--margins`` mm, so that nodules at the pleura stay) set to
background. One row per setting and margin: the runs' mean and sd of test Dice, and the false-
positive voxels per case outside the widened lung. An analysis of runs already made: it decides
whether the post-processing ``nnunet.predict.lung_margin_mm`` (:mod:`lungsynth.nnunet.lung_restriction`,
the same distance) is worth switching on, from runs made without it.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, print_and_write  # noqa: E402


def score(run: Path, study: Path, settings: list[str], margins: list[float]) -> pd.DataFrame:
    from lungsynth.ddpm.quality import spacing_zyx
    from lungsynth.io import read_nifti
    from lungsynth.nnunet.evaluate import dice
    from lungsynth.nnunet.lung_restriction import distance_to_lung_mm

    data = run / "results" / "data"

    @functools.cache
    def case(name: str) -> tuple[np.ndarray, np.ndarray]:
        """The nodule mask and each voxel's distance (mm) to the crop's lung mask."""
        hu, geometry = read_nifti(data / "images" / f"{name}.nii.gz")
        spacing = spacing_zyx(geometry)
        to_lung = distance_to_lung_mm(hu, spacing)
        if to_lung is None:   # no lung found: the post-processing keeps such a prediction whole
            to_lung = np.zeros(hu.shape)
        return read_nifti(data / "masks" / f"{name}.nii.gz")[0] > 0, to_lung

    rows = []
    for setting in settings:
        seeds = sorted((study / setting).glob("seed*/predictions"))
        if not seeds:
            raise SystemExit(f"{study / setting}: no cached runs with predictions")
        run_dice = {margin: [] for margin in ["none", *margins]}
        outside = []
        for folder in seeds:
            per_case = {margin: [] for margin in run_dice}
            for path in sorted(folder.glob("*.nii.gz")):
                truth, to_lung = case(path.name[: -len(".nii.gz")])
                predicted = read_nifti(path)[0] > 0
                outside.append(int((predicted & ~truth & (to_lung > margins[0])).sum()))
                per_case["none"].append(dice(truth, predicted))
                for margin in margins:
                    per_case[margin].append(dice(truth, predicted & (to_lung <= margin)))
            for margin, values in per_case.items():
                run_dice[margin].append(float(np.mean(values)))
        for margin, values in run_dice.items():
            d = np.array(values)
            rows.append({"setting": setting, "lung_margin_mm": margin, "runs": len(d), "mean_test_dice": d.mean(),
                         "sd_test_dice": d.std(ddof=1) if len(d) > 1 else np.nan,
                         "run_dice": " ".join(f"{x:.3f}" for x in d),
                         "fp_voxels_outside_lung_per_case": float(np.mean(outside)) if margin == "none" else np.nan})
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
    print_and_write(table, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
