#!/usr/bin/env python
"""Do synthetic crops regress to the mean training crop? The diagnosis behind the lung HU gap.

For each set of synthetic volumes (a folder of ``<case>*.nii.gz`` conditioned on that case's
mask) and for the real crops of the same cases: the standard deviation of the volume minus the
mean training crop, coarse (layout) and fine (texture) parts (lungsynth.ddpm.quality.
residual_amplitude), each as a ratio to the real crops'; the lung (HU below the threshold)
fraction and median HU beside the mean crop's own. A ratio well below 1 with a lung median near
the mean crop's says the generator draws a blend of all training chests, not one chest.

    .venv/bin/python bench/ddpm_shrinkage.py --run runs/benchmark --config config/benchmark.yaml \\
        --volumes base=bench/results/recipe/base/volumes --csv docs/benchmark/ddpm_shrinkage.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import config_with, replace_row  # noqa: E402
from lungsynth.ddpm.intensity import mean_image, model_to_hu  # noqa: E402
from lungsynth.ddpm.settings import DdpmSettings  # noqa: E402
from lungsynth.ddpm.quality import residual_amplitude  # noqa: E402
from lungsynth.io import read_nifti  # noqa: E402
from lungsynth.runtime import cpu_description  # noqa: E402


def read_hu(path: Path) -> np.ndarray:
    return np.asarray(read_nifti(path)[0], np.float32)


def mean_crop(images: Path, cases, intensity) -> np.ndarray:
    """The mean training crop in HU, as ``ddpm.intensity.mean_image`` computes it (in the model's
    intensity window) and sampling adds it back."""
    hu = torch.stack([torch.from_numpy(read_hu(images / f"{case}.nii.gz")) for case in cases])
    return model_to_hu(mean_image(hu, intensity), intensity).numpy()


def lung_figures(hu: np.ndarray, threshold_hu: float) -> dict:
    lung = hu < threshold_hu
    return {"lung_fraction": float(lung.mean()),
            "lung_median_hu": float(np.median(hu[lung])) if lung.any() else float("nan")}


def scores(volumes: list[tuple[str, Path]], reference: np.ndarray, threshold_hu: float) -> dict:
    """Mean per-volume figures of ``(case, path)`` volumes against the mean crop."""
    rows = []
    for _, path in volumes:
        hu = read_hu(path)
        rows.append({**residual_amplitude(hu, reference), **lung_figures(hu, threshold_hu)})
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}


def synthetic_volumes(folder: Path, cases) -> list[tuple[str, Path]]:
    """The volumes of ``folder`` named after one of ``cases`` (longest name first, so that a case
    whose name extends another's is not mistaken for it)."""
    found, longest_first = [], sorted(cases, key=len, reverse=True)
    for path in sorted(folder.glob("*.nii.gz")):
        case = next((c for c in longest_first if path.name.startswith(c)), None)
        if case is not None:
            found.append((case, path))
    if not found:
        raise SystemExit(f"{folder}: no volume named after a case of the run")
    return found


def add_volume_arguments(parser: argparse.ArgumentParser) -> None:
    """``--run``, ``--volumes NAME=FOLDER`` (repeatable) and ``--lung-threshold-hu``: what the scripts
    that score sets of synthetic volumes against a run's real crops take."""
    parser.add_argument("--run", type=Path, required=True, help="workflow run folder holding results/data")
    parser.add_argument("--volumes", action="append", required=True, metavar="NAME=FOLDER",
                        help="a set of synthetic volumes (repeatable)")
    parser.add_argument("--lung-threshold-hu", type=float, default=-400.0)


def run_cases(run: Path) -> tuple[Path, dict, list[str]]:
    """``(results/data, its split, every case of the split)`` of a workflow run folder."""
    data = run / "results" / "data"
    split = json.loads((data / "splits.json").read_text())
    return data, split, [c for part in ("train", "validation", "test") for c in split[part]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_volume_arguments(p)
    p.add_argument("--config", type=Path, action="append", default=[],
                   help="config overlay(s) over config/config.yaml: the DDPM's intensity window")
    p.add_argument("--csv", type=Path, required=True)
    args = p.parse_args(argv)

    data, split, cases = run_cases(args.run)
    intensity = DdpmSettings.from_config(config_with(args.config, [])["ddpm"]).intensity
    reference = mean_crop(data / "images", split["train"], intensity)
    mean_lung = lung_figures(reference, args.lung_threshold_hu)
    real_by_cases: dict[tuple, dict] = {}   # sets of variants share their masks: score the real crops once
    for item in args.volumes:
        name, _, folder = item.partition("=")
        volumes = synthetic_volumes(Path(folder), cases)
        same_cases = tuple(sorted({c for c, _ in volumes}))
        if same_cases not in real_by_cases:
            real_by_cases[same_cases] = scores([(c, data / "images" / f"{c}.nii.gz") for c in same_cases],
                                               reference, args.lung_threshold_hu)
        real = real_by_cases[same_cases]
        synthetic = scores(volumes, reference, args.lung_threshold_hu)
        row = {"set": name, "volumes": len(volumes),
               "coarse_ratio": synthetic["coarse_sd_hu"] / real["coarse_sd_hu"],
               "fine_ratio": synthetic["fine_sd_hu"] / real["fine_sd_hu"],
               **synthetic, **{f"real_{k}": v for k, v in real.items()},
               "mean_crop_lung_fraction": mean_lung["lung_fraction"],
               "mean_crop_lung_median_hu": mean_lung["lung_median_hu"],
               "cpu": cpu_description()}
        replace_row(args.csv, "set", row)
        print(f"{name}: coarse {row['coarse_ratio']:.2f} x real, fine {row['fine_ratio']:.2f} x real, lung median "
              f"{synthetic['lung_median_hu']:.0f} HU (real {real['lung_median_hu']:.0f}, mean crop "
              f"{mean_lung['lung_median_hu']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
