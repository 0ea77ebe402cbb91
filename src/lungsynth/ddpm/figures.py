"""Figures of the DDPM stage: the training-loss curve and a montage like the paper's Figure 2.

Functions return matplotlib figures; :func:`lungsynth.io.save_figure` writes them atomically.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..figures_data import WINDOW_HU, nodule_slice  # noqa: E402


def loss_curve_figure(losses: pd.DataFrame, title: str = "DDPM training loss"):
    """Loss per step (faint) and its running mean, log scale; ``losses`` has ``step`` and ``loss``."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    if len(losses):
        window = max(1, len(losses) // 20)
        ax.plot(losses["step"], losses["loss"], color="0.75", lw=0.8, label="per step")
        smooth = losses["loss"].rolling(window, min_periods=1).mean()
        ax.plot(losses["step"], smooth, color="C0", lw=1.6, label=f"mean of {window} steps")
        if (losses["loss"] > 0).all():
            ax.set_yscale("log")
        ax.legend(frameon=False)
    else:
        ax.text(0.5, 0.5, "no training steps", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def figure2(cases: Sequence[dict], window: tuple[float, float] = WINDOW_HU,
            title: str = "Generated images for their conditioning masks"):
    """A montage like the paper's Figure 2: one column per case, at the axial slice with the most
    nodule: the conditioning mask, the generated slice with the mask outlined, and (when given)
    the real slice of the same case with the same outline.

    ``cases``: dicts with ``case`` (id), ``mask (D, H, W)``, ``synthetic (D, H, W)`` HU and
    optionally ``real (D, H, W)`` HU.
    """
    cases = list(cases)
    has_real = any(c.get("real") is not None for c in cases)
    rows = ["mask", "synthetic"] + (["real"] if has_real else [])
    n = max(1, len(cases))
    fig, axes = plt.subplots(len(rows), n, figsize=(2.2 * n, 2.3 * len(rows)), squeeze=False)
    for col, case in enumerate(cases):
        mask = np.asarray(case["mask"]) > 0
        z = nodule_slice(mask)
        panels = {"mask": None, "synthetic": case["synthetic"], "real": case.get("real")}
        for row, name in enumerate(rows):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "mask":
                ax.imshow(mask[z], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(f"{case['case']}\nz = {z}", fontsize=8)
            elif panels[name] is not None:
                ax.imshow(np.asarray(panels[name])[z], cmap="gray", vmin=window[0], vmax=window[1],
                          interpolation="nearest")
                if mask[z].any():
                    ax.contour(mask[z].astype(float), levels=[0.5], colors="red", linewidths=0.7)
            else:
                ax.set_axis_off()
            if col == 0:
                ax.set_ylabel(name, fontsize=9)
    for col in range(len(cases), n):
        for row in range(len(rows)):
            axes[row, col].set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def samples_grid(rows: dict, window: tuple[float, float] = WINDOW_HU, title: str = ""):
    """One row per setting (e.g. sampler), one column per case, at each case's largest nodule slice,
    mask outlined: ``rows`` maps a label to ``[(case, hu (D, H, W), mask (D, H, W)), ...]``, the
    same cases in the same order in every row (put the real crops last as the reference)."""
    labels = list(rows)
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(labels), n, figsize=(2.3 * n, 2.3 * len(labels)), squeeze=False)
    for r, label in enumerate(labels):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(rows[label]):
                ax.set_axis_off()
                continue
            case, hu, mask = rows[label][c]
            mask = np.asarray(mask) > 0
            z = nodule_slice(mask)
            ax.imshow(np.asarray(hu)[z], cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest")
            if mask[z].any():
                ax.contour(mask[z].astype(float), levels=[0.5], colors="red", linewidths=0.7)
            if r == 0:
                ax.set_title(f"{case}\nz = {z}", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def patch_coverage_figure(coverages: dict, title: str = "patch coverage"):
    """Coronal middle slice of each ``name -> (D, H, W)`` coverage map (:meth:`PatchSampler.coverage`,
    1 = the mean): how often training sees each voxel of the crop."""
    fig, axes = plt.subplots(1, len(coverages), figsize=(3.8 * len(coverages), 3.4), squeeze=False)
    for ax, (name, cover) in zip(axes[0], coverages.items()):
        image = ax.imshow(np.asarray(cover)[:, cover.shape[1] // 2, :], vmin=0, vmax=2.5, cmap="magma",
                          origin="lower")
        ax.set_title(f"{name} draw")
        ax.set_xlabel("x (voxels)")
        ax.set_ylabel("z (voxels)")
    fig.colorbar(image, ax=axes[0].tolist(), label="coverage / mean")
    fig.suptitle(title)
    return fig


def norm_consistency_figure(table: pd.DataFrame, title: str = "whole-crop against windowed predictions"):
    """Per noise level and region, the RMS difference of the implied x_0 between the two modes next
    to the windowed prediction's own error (a table of :func:`lungsynth.ddpm.probe.norm_consistency`)."""
    means = table.groupby(["region", "t"])[["rms_difference_hu", "rms_error_windowed_hu"]].mean()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for color, region in zip(("C0", "C1"), means.index.get_level_values(0).unique()):
        part = means.loc[region]
        ax.plot(part.index, part["rms_difference_hu"], "o-", color=color, label=f"{region}: whole - windowed")
        ax.plot(part.index, part["rms_error_windowed_hu"], "o--", color=color, alpha=0.5,
                label=f"{region}: windowed - truth")
    ax.set_xlabel("t")
    ax.set_ylabel("RMS of the implied x_0 (HU)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
