"""Toy data for the nnU-Net tests: bright spheres ("nodules") in noisy lung-like HU, 32^3 voxels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lungsynth.io import Geometry, write_nifti
from lungsynth.nnunet.settings import NnunetSettings

SHAPE = (32, 32, 32)
GEOMETRY = Geometry(spacing=(2.5, 2.5, 2.5), origin=(-40.0, -40.0, -120.0))


def toy_case(rng: np.random.Generator, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """``(image HU int16, mask uint8)``: a sphere of soft-tissue HU in noise around -800 HU."""
    image = rng.normal(-800, 60, shape)
    z, y, x = np.indices(shape)
    centre = rng.uniform(8, np.array(shape) - 8)
    radius = rng.uniform(3, 6)
    mask = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
    image[mask] = rng.normal(20, 60, int(mask.sum()))
    return image.astype(np.int16), mask.astype(np.uint8)


def write_toy_cases(folder: Path, n: int, seed: int = 0, prefix: str = "toy") -> dict[str, tuple[Path, Path]]:
    """Write ``n`` toy cases as ``images/<case>.nii.gz`` and ``masks/<case>.nii.gz``."""
    rng = np.random.default_rng(seed)
    cases = {}
    for i in range(n):
        image, mask = toy_case(rng)
        case = f"{prefix}{i:03d}"
        cases[case] = (folder / "images" / f"{case}.nii.gz", folder / "masks" / f"{case}.nii.gz")
        write_nifti(cases[case][0], image, GEOMETRY)
        write_nifti(cases[case][1], mask, GEOMETRY)
    return cases


def tiny_config(**overrides) -> dict:
    """The ``nnunet:`` config section of :func:`tiny_settings`."""
    values = {
        "datasets": {"Real": 501, "Synthetic": 502, "RealSynthetic": 503}, "runs": 2, "seed": 7,
        "train": {"epochs": 2, "iterations_per_epoch": 3, "val_iterations_per_epoch": 1},
        "plan": {"configuration": "3d_fullres", "plans_name": "lungsynthTiny", "features": [8, 16, 32],
                 "patch_size": [32, 32, 32], "batch_size": 2},
    }
    values.update(overrides)
    return values


def tiny_settings(**overrides) -> NnunetSettings:
    """A plan and schedule small enough for a train+predict cycle in seconds."""
    return NnunetSettings.from_config(tiny_config(**overrides))
