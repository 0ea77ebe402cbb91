"""Tiny volumes and a tiny net for the DDPM tests."""

from __future__ import annotations

import numpy as np

from lungsynth.ddpm.settings import DdpmSettings

LUNG_HU, NODULE_HU = -800, 0


def tiny_settings(patch=(8, 8, 8), schedule: dict | None = None, **training) -> DdpmSettings:
    """Net (8, 16, 16) with 8 groups, small patches, fp32 (bit-reproducible on CPU)."""
    values = {"patch_size": list(patch), "steps": 20, "batch_size": 2, "learning_rate": 1e-3,
              "bf16": False, "seed": 0}
    values.update(training)
    return DdpmSettings.from_config({"network": {"channels": [8, 16, 16], "norm_num_groups": 8},
                                     "schedule": schedule or {}, "training": values})


def toy_volumes(n: int = 4, shape=(16, 16, 16), seed: int = 0):
    """Lung at -800 HU with one cubic nodule at 0 HU per case (a trivially learnable target)."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for _ in range(n):
        mask = np.zeros(shape, np.uint8)
        c = [int(rng.integers(3, s - 3)) for s in shape]
        mask[c[0] - 2:c[0] + 2, c[1] - 2:c[1] + 2, c[2] - 2:c[2] + 2] = 1
        image = np.full(shape, LUNG_HU, np.int16)
        image[mask > 0] = NODULE_HU
        images.append(image)
        masks.append(mask)
    return images, masks
