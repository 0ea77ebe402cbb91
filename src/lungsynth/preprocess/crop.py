"""One case through preprocessing: lung mask -> crop box -> fixed grid, plus its metadata row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io import Geometry
from ..settings import PreprocessSettings
from .grid import crop_grid, resample_image, resample_mask
from .lung import bounding_box, lung_mask


@dataclass
class PreprocessedCase:
    image: np.ndarray        # (z, y, x) int16 HU on the output grid
    mask: np.ndarray         # (z, y, x) uint8, 1 = nodule
    geometry: Geometry
    record: dict             # one row of cases.csv


def preprocess_case(case_id: str, hu: np.ndarray, nodule_labels: np.ndarray, source: Geometry,
                    settings: PreprocessSettings, where: str) -> PreprocessedCase:
    """Crop ``hu`` (``(z, y, x)``) at the lungs and resample it and its nodules to the fixed grid.

    ``nodule_labels`` holds one label per nodule (0 = background); the output mask is binary.
    ``where`` names the source (series folder or file) in error messages.
    """
    nodules = nodule_labels > 0
    spacing_zyx = source.spacing[::-1]
    lungs = lung_mask(hu, spacing_zyx, settings.lung_threshold_hu)
    if not lungs.any():
        raise InputError(where, f"no lung found (no air below {settings.lung_threshold_hu:g} HU inside the body); "
                                "is this a chest CT in HU?")
    box = bounding_box(lungs | nodules.astype(bool))
    crop = crop_grid(source, box, settings.crop_margin_mm, settings.target_spacing, settings.volume_size)
    image = resample_image(hu, source, crop)
    mask = resample_mask(nodules, source, crop)

    voxel_mm3 = float(np.prod(source.spacing))
    counts = np.bincount(nodule_labels.ravel())[1:]
    volumes = counts[counts > 0] * voxel_mm3
    if not mask.any():
        raise InputError(where, f"no nodule voxel left on the {settings.target_spacing} mm grid "
                                f"(largest nodule {volumes.max():.0f} mm^3): use a finer target_spacing")
    _, n_crop = ndimage.label(mask)
    record = {
        "case": case_id,
        "n_nodules": int(len(volumes)),
        "n_nodules_in_crop": int(n_crop),
        "nodule_volumes_mm3": ";".join(f"{v:.1f}" for v in sorted(volumes, reverse=True)),
        "nodule_voxels": int(mask.sum()),
        "source_spacing_zyx": ";".join(f"{v:.4g}" for v in spacing_zyx),
        "source_shape_zyx": ";".join(str(v) for v in hu.shape),
        "spacing_zyx": ";".join(f"{v:.4g}" for v in settings.target_spacing),
        "crop_box_zyx": ";".join(f"{a}-{b}" for a, b in box),
        "crop_coverage": round(crop.coverage, 3),
        "origin_xyz": ";".join(f"{v:.2f}" for v in crop.geometry.origin),
    }
    return PreprocessedCase(image, mask, crop.geometry, record)
