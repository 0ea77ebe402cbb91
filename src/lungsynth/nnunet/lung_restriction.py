"""Optional post-processing of a prediction: nodule voxels far outside the lung become background.

A lung nodule lies in the lung or at its pleura. On the phantom benchmark most false-positive
voxels of the Real arm lie outside the lung, and their number differs 9x between seeds; cutting
the predictions to the lung mask plus 3 mm halved the arm's run-to-run spread
(docs/benchmark.md, "Where the false positives lie"). Restricting a detector's output to a lung
segmentation is the usual step of lung-nodule CAD; the paper has no post-processing, so the
step is off unless ``nnunet.predict.lung_margin_mm`` is set, and every arm gets the same one.

The lung is the data layer's own mask (:func:`lungsynth.preprocess.lung.lung_mask`) of the
image that was predicted, real or synthetic; the margin (mm, a Euclidean distance on the voxel
grid) keeps nodules at the pleura and the rim of a juxtapleural nodule.

A juxtapleural nodule is soft tissue against the chest wall: the air mask has a dent where it
sits, and a margin of a few mm keeps only its rim. ``closing_mm`` first closes the lung mask
slice by slice with a disk of that radius, the "rolling ball" of lung CAD (Armato et al. 1999):
dents narrower than the disk are filled, the convex chest wall is not. It is an analysis option
(``bench/lung_closing.py``), not a workflow setting: on the benchmark it kept wall-attached false
positives too and lowered the Real arm's Dice (docs/benchmark.md, "The lung mask on the crops").
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)


def distance_to_lung_mm(hu: np.ndarray, spacing_zyx, threshold_hu: float = -400.0,
                        closing_mm: float = 0.0) -> np.ndarray | None:
    """Each voxel's distance (mm) to the lung mask of ``hu`` (closed by ``closing_mm``, if > 0);
    ``None`` where no lung is found."""
    from ..preprocess.lung import lung_mask

    lung = lung_mask(np.asarray(hu), spacing_zyx, threshold_hu)
    if not lung.any():
        return None
    if closing_mm > 0:
        lung = close_slices(lung, spacing_zyx[1:], closing_mm)
    return ndimage.distance_transform_edt(~lung, sampling=spacing_zyx)


def close_slices(mask: np.ndarray, spacing_yx, radius_mm: float) -> np.ndarray:
    """``mask`` closed in each axial slice with a disk of ``radius_mm`` (padded, so that the
    closing does not erode at the slice border)."""
    reach = [int(np.floor(radius_mm / s)) for s in spacing_yx]
    if max(reach) == 0:
        return mask
    y, x = np.meshgrid(*[np.arange(-r, r + 1) * s for r, s in zip(reach, spacing_yx)], indexing="ij")
    disk = (y * y + x * x <= radius_mm**2)[None]
    pad = [(0, 0), (reach[0], reach[0]), (reach[1], reach[1])]
    closed = ndimage.binary_closing(np.pad(mask, pad), structure=disk)
    return closed[:, reach[0]: reach[0] + mask.shape[1], reach[1]: reach[1] + mask.shape[2]]


def restrict_to_lung(segmentation: np.ndarray, hu: np.ndarray, spacing_zyx, margin_mm: float,
                     threshold_hu: float = -400.0, name: str = "", closing_mm: float = 0.0) -> np.ndarray:
    """``segmentation`` with every label farther than ``margin_mm`` from the lung (closed by
    ``closing_mm``) set to 0.

    An image in which no lung is found keeps its prediction (with a warning): removing
    everything would score a failed lung mask as a missed nodule.
    """
    segmentation = np.asarray(segmentation)
    if segmentation.shape != np.shape(hu):
        raise ValueError(f"{name or 'prediction'}: shape {segmentation.shape} differs from its image {np.shape(hu)}")
    to_lung = distance_to_lung_mm(hu, spacing_zyx, threshold_hu, closing_mm)
    if to_lung is None:
        log.warning("%s: no lung found below %g HU; its prediction is kept unrestricted", name or "image",
                    threshold_hu)
        return segmentation
    outside = (segmentation > 0) & (to_lung > margin_mm)
    if outside.any():
        log.info("%s: %d predicted voxels farther than %g mm from the lung set to background", name or "image",
                 int(outside.sum()), margin_mm)
    return np.where(outside, 0, segmentation).astype(segmentation.dtype, copy=False)
