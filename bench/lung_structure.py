#!/usr/bin/env python
"""Where do the synthetic lungs' nodule-like blobs come from? Lung level against vessel coherence.

For each set of synthetic volumes (a folder of ``<case>*.nii.gz`` conditioned on that case's
mask) and for the real crops of the same cases, per volume and then averaged:

- the lung's median HU and the nodule-like blobs of :func:`lungsynth.ddpm.quality.nodule_like_blobs`;
- the blobs again with the volume shifted by its lung offset (its lung median minus the real
  crop's of the same case): if a brighter lung alone made the blobs, this count falls to real's;
- how the dense lung voxels hang together (:func:`lungsynth.ddpm.quality.dense_structure`): their
  share of the lung, their components, the components over 30 voxels and the share of dense
  voxels in them. Real vessels are trees (few components, most voxels in big ones); a generator
  that draws vessel texture without the trees breaks them into many small pieces.

    .venv/bin/python bench/lung_structure.py --run runs/benchmark \\
        --volumes base=bench/results/recipe/base/volumes --csv docs/benchmark/lung_structure.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import replace_row  # noqa: E402
from ddpm_shrinkage import add_volume_arguments, run_cases, synthetic_volumes  # noqa: E402
from lungsynth.ddpm.quality import dense_structure, nodule_like_blobs, spacing_zyx  # noqa: E402
from lungsynth.io import read_nifti  # noqa: E402
from lungsynth.preprocess.lung import lung_mask  # noqa: E402
from lungsynth.runtime import cpu_description  # noqa: E402

FIGURES = ["lung_median_hu", "blobs", "blobs_at_real_lung_level", "dense_share", "dense_components",
           "big_components", "big_component_share"]


def volume_figures(hu: np.ndarray, mask: np.ndarray, spacing, threshold_hu: float,
                   real_median: float | None = None) -> dict:
    """The figures of one volume; ``real_median`` is the real crop's lung median of its case
    (None: the volume is that real crop). One lung mask serves every figure but the shifted blobs."""
    lung = lung_mask(hu, spacing, threshold_hu)
    air = lung & (hu < threshold_hu)
    median = float(np.median(hu[air])) if air.any() else float("nan")
    offset = median - real_median if real_median is not None and np.isfinite(median - real_median) else 0.0
    blobs = nodule_like_blobs(hu, mask, spacing, threshold_hu, lung=lung)
    return {"lung_median_hu": median, "blobs": blobs,
            "blobs_at_real_lung_level": nodule_like_blobs(hu - offset, mask, spacing, threshold_hu) if offset
            else blobs,
            **dense_structure(hu, mask, spacing, threshold_hu, lung=lung)}


def mean_figures(rows: list[dict]) -> dict:
    return {key: float(np.nanmean([r[key] for r in rows])) for key in FIGURES}


def ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_volume_arguments(p)
    p.add_argument("--csv", type=Path, required=True)
    args = p.parse_args(argv)

    data, _, cases = run_cases(args.run)
    real: dict[str, dict] = {}          # per case, scored once for all sets
    masks: dict[str, np.ndarray] = {}
    for item in args.volumes:
        name, _, folder = item.partition("=")
        volumes = synthetic_volumes(Path(folder), cases)
        for case in {c for c, _ in volumes} - set(real):
            hu, geometry = read_nifti(data / "images" / f"{case}.nii.gz")
            masks[case] = np.asarray(read_nifti(data / "masks" / f"{case}.nii.gz")[0])
            real[case] = volume_figures(np.asarray(hu, np.float32), masks[case], spacing_zyx(geometry),
                                        args.lung_threshold_hu)
        rows = []
        for case, path in volumes:
            hu, geometry = read_nifti(path)
            if hu.shape != masks[case].shape:
                raise SystemExit(f"{path}: shape {hu.shape} differs from the mask of {case} {masks[case].shape}")
            rows.append(volume_figures(np.asarray(hu, np.float32), masks[case], spacing_zyx(geometry),
                                       args.lung_threshold_hu, real[case]["lung_median_hu"]))
        synthetic = mean_figures(rows)
        reference = mean_figures([real[c] for c, _ in volumes])
        row = {"set": name, "volumes": len(volumes), **{k: round(v, 4) for k, v in synthetic.items()},
               **{f"real_{k}": round(v, 4) for k, v in reference.items()},
               "blob_ratio": ratio(synthetic["blobs"], reference["blobs"]),
               "blob_ratio_at_real_lung_level": ratio(synthetic["blobs_at_real_lung_level"], reference["blobs"]),
               "dense_share_ratio": ratio(synthetic["dense_share"], reference["dense_share"]),
               "component_ratio": ratio(synthetic["dense_components"], reference["dense_components"]),
               "cpu": cpu_description()}
        replace_row(args.csv, "set", row)
        print(f"{name}: lung median {synthetic['lung_median_hu']:.0f} HU (real {reference['lung_median_hu']:.0f}); "
              f"blobs {row['blob_ratio']:.2f} x real, {row['blob_ratio_at_real_lung_level']:.2f} x at real's lung "
              f"level; dense share {row['dense_share_ratio']:.2f} x, components {row['component_ratio']:.2f} x, "
              f"{synthetic['big_component_share']:.2f} of dense voxels in big ones "
              f"(real {reference['big_component_share']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
