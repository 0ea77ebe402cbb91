"""Per-volume quality of synthetic CT: was a nodule inserted where the mask says, does the lung look real?

For each volume: mean HU inside the nodule mask, mean HU in a lung shell of ``shell_mm`` around it
(lung = voxels below a HU threshold *in that volume*; the shell is widened to the largest voxel
side when voxels are coarser than ``shell_mm``, so it is never empty for lack of resolution; the
width used is in the table), their difference (the contrast), and the
Wasserstein distance between the volume's lung HU values and a pooled sample of lung HU values
from the real training crops. The same functions apply to real crops, as a reference.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import wasserstein_distance

from .settings import QualitySettings

COLUMNS = ["case", "nodule_voxels", "shell_voxels", "shell_mm", "lung_fraction", "mean_hu_nodule",
           "mean_hu_shell", "contrast_hu", "mean_hu_lung", "wasserstein_lung_hu"]


def spacing_zyx(geometry) -> tuple[float, float, float]:
    """Voxel spacing in array order (z, y, x) from a :class:`lungsynth.io.Geometry` (x, y, z)."""
    return tuple(float(s) for s in geometry.spacing[::-1])


def lung_region(hu: np.ndarray, threshold_hu: float) -> np.ndarray:
    """Voxels darker than ``threshold_hu``: air-filled lung (and any air around the body)."""
    return np.asarray(hu) < threshold_hu


def shell_width(spacing: Sequence[float], shell_mm: float) -> float:
    """The shell width used: ``shell_mm``, or the largest voxel side if that is coarser."""
    return max(float(shell_mm), *(float(s) for s in spacing))


def shell_region(mask: np.ndarray, spacing: Sequence[float], shell_mm: float) -> np.ndarray:
    """Voxels outside the nodule within ``shell_mm`` (Euclidean distance in mm) of it."""
    nodule = np.asarray(mask) > 0
    if not nodule.any():
        return np.zeros_like(nodule)
    distance = ndimage.distance_transform_edt(~nodule, sampling=tuple(float(s) for s in spacing))
    return (distance <= shell_mm) & ~nodule


def _subsample(values: np.ndarray, max_values: int, rng: np.random.Generator) -> np.ndarray:
    if values.size > max_values:
        return rng.choice(values, size=max_values, replace=False)
    return values


def lung_hu_sample(volumes: Iterable[np.ndarray], settings: QualitySettings | None = None,
                   seed: int = 0, count: int | None = None) -> np.ndarray:
    """A pooled sample (at most ``max_lung_values``, equal share per volume) of lung HU values
    from real crops: the reference distribution for :func:`volume_quality`.

    With ``count`` (the number of volumes) ``volumes`` is consumed one at a time, so a generator
    that reads each crop keeps one crop in memory (553 crops of 128 x 256 x 256 are 9 GB)."""
    settings = settings or QualitySettings.from_config()
    if count is None:
        volumes = list(volumes)
        count = len(volumes)
    if not count:
        return np.zeros(0, np.float32)
    rng = np.random.default_rng(seed)
    share = max(1, settings.max_lung_values // count)
    parts = [_subsample(np.asarray(v, np.float32)[lung_region(v, settings.lung_threshold_hu)], share, rng)
             for v in volumes]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def volume_quality(case: str, hu: np.ndarray, mask: np.ndarray, spacing: Sequence[float],
                   real_lung_hu: np.ndarray | None, settings: QualitySettings | None = None,
                   seed: int = 0) -> dict:
    """One row of the quality table for a ``(z, y, x)`` HU volume and its conditioning mask.

    Means over empty regions (no nodule, no lung in the shell) are NaN.
    """
    settings = settings or QualitySettings.from_config()
    hu = np.asarray(hu, np.float32)
    nodule = np.asarray(mask) > 0
    if hu.shape != nodule.shape:
        raise ValueError(f"volume {hu.shape} and mask {nodule.shape} differ")
    lung = lung_region(hu, settings.lung_threshold_hu)
    width = shell_width(spacing, settings.shell_mm)
    shell = shell_region(nodule, spacing, width) & lung
    mean_nodule = float(hu[nodule].mean()) if nodule.any() else float("nan")
    mean_shell = float(hu[shell].mean()) if shell.any() else float("nan")
    lung_values = _subsample(hu[lung], settings.max_lung_values, np.random.default_rng(seed))
    if real_lung_hu is not None and len(real_lung_hu) and lung_values.size:
        distance = float(wasserstein_distance(lung_values, np.asarray(real_lung_hu, np.float32)))
    else:
        distance = float("nan")
    return {
        "case": case,
        "nodule_voxels": int(nodule.sum()),
        "shell_voxels": int(shell.sum()),
        "shell_mm": width,
        "lung_fraction": float(lung.mean()),
        "mean_hu_nodule": mean_nodule,
        "mean_hu_shell": mean_shell,
        "contrast_hu": mean_nodule - mean_shell,
        "mean_hu_lung": float(lung_values.mean()) if lung_values.size else float("nan"),
        "wasserstein_lung_hu": distance,
    }


def quality_table(rows: Iterable[dict]) -> pd.DataFrame:
    """The per-volume rows plus a last ``summary`` row: the mean of every numeric column over the
    volumes where it is defined (NaN-aware), so voxel counts there are mean counts."""
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    summary = {"case": "summary"}
    for column in COLUMNS[1:]:
        values = pd.to_numeric(frame[column], errors="coerce")
        summary[column] = float(values.mean()) if values.notna().any() else float("nan")
    return pd.concat([frame, pd.DataFrame([summary], columns=COLUMNS)], ignore_index=True)


def dense_components(hu: np.ndarray, mask: np.ndarray, spacing: Sequence[float], threshold_hu: float = -400.0,
                     lung: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(voxel count of each 26-connected component, lung)`` of the voxels above ``threshold_hu``
    in the lung and outside the conditioning mask: what :func:`nodule_like_blobs` counts.

    The lung is the data layer's lung mask (holes filled, so dense spots inside it count; pass
    ``lung`` to reuse one already computed for ``hu``); the mask is widened by one voxel so that
    the conditioned nodule's rim is not counted.
    """
    from ..preprocess.lung import lung_mask

    hu = np.asarray(hu)
    lung = lung_mask(hu, spacing, threshold_hu) if lung is None else lung
    nodule = ndimage.binary_dilation(np.asarray(mask) > 0, iterations=1)
    labels, count = ndimage.label((hu > threshold_hu) & lung & ~nodule, structure=np.ones((3, 3, 3)))
    return (np.bincount(labels.ravel())[1:] if count else np.zeros(0, int)), lung


def nodule_like_blobs(hu: np.ndarray, mask: np.ndarray, spacing: Sequence[float], threshold_hu: float = -400.0,
                      min_voxels: int = 2, max_voxels: int = 30, lung: np.ndarray | None = None) -> int:
    """Connected components in the lung, outside the conditioning mask, that look like nodules:
    voxels above ``threshold_hu``, ``min_voxels`` .. ``max_voxels`` voxels in size (26-connected;
    :func:`dense_components`).

    On real crops these are vessel cross-sections and small nodules; a synthetic lung with several
    times as many holds blobs a segmentation model takes for nodules.
    """
    sizes, _ = dense_components(hu, mask, spacing, threshold_hu, lung)
    return int(np.count_nonzero((sizes >= min_voxels) & (sizes <= max_voxels)))
