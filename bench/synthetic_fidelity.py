"""The workflow's synthetic sets scored like the DDPM A/B table (docs/benchmark/fidelity.csv).

    .venv/bin/python bench/synthetic_fidelity.py --run runs/benchmark --config config/benchmark.yaml

For each set (``results/synthetic/general``, ``targeted``) of a workflow run: the frozen real-data
segmentation model of ``bench/ddpm_recipe.py`` (trained once, cached) predicts every volume; its Dice
against the conditioning mask and its false-positive voxels are divided by its figures on the real
validation crops (fidelity ratio, FP ratio); the lung HU Wasserstein distance is given beside the
real-vs-real one, and the nodule-like blob count as a ratio to the real crops'. One row per set and
judge (``--judge``/``--judge-set`` as in ``bench/ddpm_recipe.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ddpm_recipe as recipe  # noqa: E402
from benchlib import ROOT, config_with, replace_row  # noqa: E402
from lungsynth.ddpm.quality import lung_hu_sample, nodule_like_blobs, spacing_zyx, volume_quality  # noqa: E402
from lungsynth.ddpm.settings import QualitySettings  # noqa: E402
from lungsynth.io import read_nifti  # noqa: E402
from lungsynth.runtime import cpu_description  # noqa: E402


def score_set(folder: Path, data: recipe.Data, config: dict, model: Path, threads: int) -> pd.DataFrame:
    q = QualitySettings.from_config(config["quality"])
    reference = lung_hu_sample((read_nifti(p)[0] for p in data.paths("images", data.split["train"])), q)
    images = sorted(folder.glob("*.nii.gz"))
    masks = [folder / "masks" / p.name for p in images]
    rows = []
    for image, mask_path in zip(images, masks):
        hu, geometry = read_nifti(image)
        mask = read_nifti(mask_path)[0]
        rows.append({**volume_quality(image.name, hu, mask, spacing_zyx(geometry), reference, q),
                     "blobs": nodule_like_blobs(hu, mask, spacing_zyx(geometry))})
    table = pd.DataFrame(rows).set_index("case")
    seg = recipe.segmentation_scores(model, images, masks, config, threads)
    table["dice"], table["fp_voxels"] = seg["dice"].to_numpy(), seg["fp"].to_numpy()
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--config", type=Path, action="append", default=[])
    p.add_argument("--sets", nargs="+", default=["general", "targeted"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--label", default="", help="a note for the rows (e.g. which DDPM made the sets)")
    recipe.add_judge_arguments(p)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recipe")
    p.add_argument("--csv", type=Path, default=ROOT / "docs" / "benchmark" / "fidelity.csv")
    args = p.parse_args(argv)
    config = config_with(args.config, [])
    data = recipe.Data(args.run)
    judge, model = recipe.judge_model(data, config, args.out, args.judge, args.judge_set, args.threads)
    cases = data.split["validation"]
    real = recipe.real_reference(data, judge, args.out / args.judge, model, cases, args.threads)
    for name in args.sets:
        table = score_set(args.run / "results" / "synthetic" / name, data, judge, model, args.threads)
        mean = table.mean(numeric_only=True)
        row = {"set": name, "label": args.label, "judge": args.judge, "volumes": len(table),
               "fidelity_dice": mean["dice"], "real_dice": real["dice"],
               "fidelity_ratio": recipe.ratio(mean["dice"], real["dice"]),
               "fp_voxels": mean["fp_voxels"], "real_fp_voxels": real["fp_voxels"],
               "fp_ratio": recipe.ratio(mean["fp_voxels"], real["fp_voxels"]),
               "wasserstein_lung_hu": mean["wasserstein_lung_hu"], "real_wasserstein_lung_hu": real["wasserstein_lung_hu"],
               "blobs": mean["blobs"], "real_blobs": real["blobs"], "blob_ratio": recipe.ratio(mean["blobs"], real["blobs"]),
               "contrast_hu": mean["contrast_hu"], "real_contrast_hu": real["contrast_hu"], "cpu": cpu_description()}
        replace_row(args.csv, ["set", "judge"], {**row, "set": f"{name}{' ' + args.label if args.label else ''}"})
        print(pd.Series(row).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
