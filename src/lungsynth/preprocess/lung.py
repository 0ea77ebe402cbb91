"""Lung mask by thresholding and morphology: no trained model, no downloaded weights.

Only the crop needs it, so it is computed on a coarse copy of the volume (about 3 mm voxels),
which keeps it to a second or two for a whole CT.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

COARSE_VOXEL_MM = 3.0


def lung_mask(hu: np.ndarray, spacing_zyx, threshold_hu: float = -400.0) -> np.ndarray:
    """Boolean ``(z, y, x)`` lung mask of a chest CT ``hu`` at its own resolution.

    Air below ``threshold_hu`` that does not touch the in-plane border of a slice (the air
    around the body) and belongs to one of the two largest 3D components is lung; holes
    (vessels, nodules) are closed and filled slice by slice.
    """
    factors = np.maximum(1, np.floor(COARSE_VOXEL_MM / np.asarray(spacing_zyx, float))).astype(int)
    coarse = _block_mean(hu.astype(np.float32), factors)
    air = coarse < threshold_hu
    body_air = _border_connected(air)
    candidates = air & ~body_air
    labels, count = ndimage.label(candidates)
    if count == 0:
        return np.zeros(hu.shape, dtype=bool)
    sizes = ndimage.sum_labels(candidates, labels, index=np.arange(1, count + 1))
    keep = np.argsort(sizes)[::-1][:2] + 1
    # a second component much smaller than the first is an airway or bowel gas, not a lung
    keep = [k for k in keep if sizes[k - 1] >= 0.1 * sizes.max()]
    lungs = np.isin(labels, keep)
    lungs = ndimage.binary_closing(lungs, structure=np.ones((1, 5, 5)), border_value=0)
    lungs = np.stack([ndimage.binary_fill_holes(s) for s in lungs])
    return _upsample(lungs, factors, hu.shape)


def _block_mean(volume: np.ndarray, factors) -> np.ndarray:
    pads = [(0, (-n) % f) for n, f in zip(volume.shape, factors)]
    padded = np.pad(volume, pads, mode="edge")
    shape = []
    for n, f in zip(padded.shape, factors):
        shape += [n // f, f]
    return padded.reshape(shape).mean(axis=(1, 3, 5))


def _upsample(mask: np.ndarray, factors, shape) -> np.ndarray:
    full = mask
    for axis, f in enumerate(factors):
        full = np.repeat(full, f, axis=axis)
    return full[: shape[0], : shape[1], : shape[2]]


def _border_connected(air: np.ndarray) -> np.ndarray:
    """Air connected (within its slice) to the slice's border: outside the body."""
    outside = np.zeros_like(air)
    for z, plane in enumerate(air):
        labels, _ = ndimage.label(plane)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        outside[z] = np.isin(labels, border[border > 0])
    return outside


def bounding_box(mask: np.ndarray) -> tuple[tuple[int, int], ...] | None:
    """Inclusive-exclusive ``((z0, z1), (y0, y1), (x0, x1))`` of a mask, or None if it is empty."""
    if not mask.any():
        return None
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append((int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)
