"""Figures that let a person look at the data (a montage of axial slices with nodule contours),
and what every CT figure of the project shares: the display window and the slice shown."""

from __future__ import annotations

import numpy as np

WINDOW_HU = (-1000.0, 400.0)  # display window: HU shown black .. white


def nodule_slice(*masks: np.ndarray) -> int:
    """The axial index (z) with the most nodule voxels in the first non-empty mask of ``masks``
    (e.g. the truth, then the predictions); the middle slice if all are empty."""
    for mask in masks:
        areas = (np.asarray(mask) > 0).reshape(np.shape(mask)[0], -1).sum(axis=1)
        if areas.any():
            return int(np.argmax(areas))
    return np.shape(masks[0])[0] // 2


def nodule_montage(items, title: str = ""):
    """One panel per ``(name, image, mask, geometry)``: the slice through the largest nodule, contour in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(items))
    rows = int(np.ceil(len(items) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, image, mask, geometry) in zip(axes.ravel(), items):
        z = nodule_slice(mask)
        aspect = geometry.spacing[1] / geometry.spacing[0]
        ax.imshow(image[z], cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], aspect=aspect, interpolation="nearest")
        if mask[z].any():
            ax.contour(mask[z], levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(f"{name}  z={z}", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
