"""Figures that let a person look at the data: a montage of axial slices with nodule contours."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

WINDOW_HU = (-1000, 400)


def largest_nodule_slice(mask: np.ndarray) -> int:
    """Index of the axial slice through the centre of the largest connected nodule."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask.shape[0] // 2
    sizes = ndimage.sum_labels(mask > 0, labels, np.arange(1, n + 1))
    centre = ndimage.center_of_mass(mask > 0, labels, int(np.argmax(sizes)) + 1)
    return int(round(centre[0]))


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
        z = largest_nodule_slice(mask)
        aspect = geometry.spacing[1] / geometry.spacing[0]
        ax.imshow(image[z], cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], aspect=aspect, interpolation="nearest")
        if mask[z].any():
            ax.contour(mask[z], levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(f"{name}  z={z}", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
