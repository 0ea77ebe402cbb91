"""Lung mask by thresholding and morphology: no trained model, no downloaded weights.

Only the crop needs it, so it is computed on a coarse copy of the volume (about 3 mm voxels),
which keeps it to a second or two for a whole CT.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

COARSE_VOXEL_MM = 3.0
#: airways narrower than twice this (trachea ~ 18 mm, main bronchi ~ 12 mm) are cut off the lungs
AIRWAY_RADIUS_MM = 10.0


def lung_mask(hu: np.ndarray, spacing_zyx, threshold_hu: float = -400.0) -> np.ndarray:
    """Boolean ``(z, y, x)`` lung mask of a chest CT ``hu`` at its own resolution.

    Air below ``threshold_hu`` that does not touch the in-plane border of a slice (the air
    around the body) is a candidate. The trachea and main bronchi join the two lungs into one
    component on a real CT, so the lungs are found by an opening by reconstruction: the
    candidates are eroded by a ball of :data:`AIRWAY_RADIUS_MM` (the airways vanish, the lungs
    do not), the two largest eroded components are kept (a second one much smaller than the
    first is bowel gas, not a lung) and grown back within the candidates by the same radius.
    Holes (vessels, nodules) are then closed and filled slice by slice.
    """
    factors = np.maximum(1, np.floor(COARSE_VOXEL_MM / np.asarray(spacing_zyx, float))).astype(int)
    coarse = _block_mean(hu.astype(np.float32), factors)
    air = coarse < threshold_hu
    candidates = air & ~_border_connected(air)
    lungs = _without_airways(candidates, np.asarray(spacing_zyx, float) * factors)
    if not lungs.any():
        return np.zeros(hu.shape, dtype=bool)
    lungs = ndimage.binary_closing(lungs, structure=np.ones((1, 5, 5)), border_value=0)
    lungs = np.stack([ndimage.binary_fill_holes(s) for s in lungs])
    return _upsample(lungs, factors, hu.shape)


def _largest_components(mask: np.ndarray, n: int = 2, share: float = 0.1) -> np.ndarray:
    """The ``n`` largest 26-connected components of ``mask``, each at least ``share`` of the largest."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if count == 0:
        return np.zeros_like(mask)
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    keep = [k + 1 for k in np.argsort(sizes)[::-1][:n] if sizes[k] >= share * sizes.max()]
    return np.isin(labels, keep)


def _without_airways(candidates: np.ndarray, spacing_mm) -> np.ndarray:
    """The lungs among the in-body air: opening by reconstruction with a ball of AIRWAY_RADIUS_MM.

    A volume too small to erode (a tiny test volume) keeps its two largest components as they are.
    """
    reach = [int(np.ceil(AIRWAY_RADIUS_MM / s)) for s in spacing_mm]
    grid = np.meshgrid(*[np.arange(-r, r + 1) * s for r, s in zip(reach, spacing_mm)], indexing="ij")
    ball = sum(g * g for g in grid) <= AIRWAY_RADIUS_MM**2
    cores = _largest_components(ndimage.binary_erosion(candidates, structure=ball))
    if not cores.any():
        return _largest_components(candidates)
    step = ndimage.generate_binary_structure(3, 1)
    lungs = cores
    for _ in range(max(reach) + 1):   # geodesic growth by the erosion's radius (city-block steps)
        lungs = ndimage.binary_dilation(lungs, structure=step) & candidates
    return lungs


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
    """Air outside the body: connected (within its slice) to the slice's border and outside the
    convex hull of the slice's body (its largest soft-tissue component).

    The hull matters on a crop narrower than the chest: there a lung runs into the crop's edge,
    so its air touches the border too (on the benchmark's 288 mm crops, for instance, the upper
    lungs of a broad chest); the chest wall in front of it and behind it still reaches that edge,
    so the lung lies inside the body's hull and stays a candidate.
    """
    outside = np.zeros_like(air)
    for z, plane in enumerate(air):
        labels, _ = ndimage.label(plane)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        outside[z] = np.isin(labels, border[border > 0]) & ~_body_hull(~plane)
    return outside


def _body_hull(tissue: np.ndarray) -> np.ndarray:
    """The filled convex hull of the largest component of a slice's ``tissue`` (all False if the
    slice holds too little tissue for a hull)."""
    from scipy.spatial import ConvexHull, QhullError

    labels, count = ndimage.label(tissue)
    if count == 0:
        return np.zeros_like(tissue)
    body = labels == 1 + int(np.argmax(ndimage.sum_labels(tissue, labels, index=np.arange(1, count + 1))))
    edge = np.argwhere(body & ~ndimage.binary_erosion(body))
    try:
        hull = ConvexHull(edge)
    except QhullError:            # a line or a few pixels: no area to hold a lung
        return np.zeros_like(tissue)
    points = np.indices(tissue.shape).reshape(2, -1).T
    inside = (points @ hull.equations[:, :2].T + hull.equations[:, 2] <= 1e-9).all(axis=1)
    return inside.reshape(tissue.shape)


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
