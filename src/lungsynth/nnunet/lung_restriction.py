"""Optional post-processing of a prediction: nodule voxels far outside the lung become background.

A lung nodule lies in the lung or at its pleura. On the phantom benchmark most false-positive
voxels of the Real arm lie outside the lung, and cutting them steadies the arm (docs/findings.md,
row 14). Restricting a detector's output to a lung
segmentation is the usual step of lung-nodule CAD; the paper has no post-processing, so the
step is off unless ``nnunet.predict.lung_margin_mm`` is set, and every arm gets the same one.

The lung is the data layer's own mask (:func:`lungsynth.preprocess.lung.lung_mask`) of the
image that was predicted, real or synthetic; the margin (mm, a Euclidean distance on the voxel
grid) keeps nodules at the pleura and the rim of a juxtapleural nodule.

Closing the lung mask over the pleura first (the "rolling ball" of lung CAD) was measured and
rejected: docs/findings.md, row 16.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)


def distance_to_lung_mm(hu: np.ndarray, spacing_zyx, threshold_hu: float = -400.0) -> np.ndarray | None:
    """Each voxel's distance (mm) to the lung mask of ``hu``; ``None`` where no lung is found."""
    from ..preprocess.lung import lung_mask

    lung = lung_mask(np.asarray(hu), spacing_zyx, threshold_hu)
    if not lung.any():
        return None
    return ndimage.distance_transform_edt(~lung, sampling=spacing_zyx)


def restrict_to_lung(segmentation: np.ndarray, hu: np.ndarray, spacing_zyx, margin_mm: float,
                     threshold_hu: float = -400.0, name: str = "") -> np.ndarray:
    """``segmentation`` with every label farther than ``margin_mm`` from the lung set to 0.

    An image in which no lung is found keeps its prediction (with a warning): removing
    everything would score a failed lung mask as a missed nodule.
    """
    segmentation = np.asarray(segmentation)
    if segmentation.shape != np.shape(hu):
        raise ValueError(f"{name or 'prediction'}: shape {segmentation.shape} differs from its image {np.shape(hu)}")
    to_lung = distance_to_lung_mm(hu, spacing_zyx, threshold_hu)
    if to_lung is None:
        log.warning("%s: no lung found below %g HU; its prediction is kept unrestricted", name or "image",
                    threshold_hu)
        return segmentation
    outside = (segmentation > 0) & (to_lung > margin_mm)
    if outside.any():
        log.info("%s: %d predicted voxels farther than %g mm from the lung set to background", name or "image",
                 int(outside.sum()), margin_mm)
    return np.where(outside, 0, segmentation).astype(segmentation.dtype, copy=False)
