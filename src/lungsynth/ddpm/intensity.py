"""HU <-> model intensity: one linear map of a HU window onto [-1, 1], used by training and sampling.

The DDPM works on data in [-1, 1] (the schedulers clip the predicted x_0 there), so the same
window must be used to scale the training crops and to turn a generated sample back into HU.
The window travels in the checkpoint (:class:`IntensitySettings`), never re-read from a config.
"""

from __future__ import annotations

import numpy as np
import torch

from .settings import IntensitySettings


def hu_to_model(hu, window: IntensitySettings):
    """HU (array or tensor, any shape) -> float32 in [-1, 1]; values outside the window are clipped."""
    lo, hi = window.hu_min, window.hu_max
    if isinstance(hu, torch.Tensor):
        x = hu.to(torch.float32).clamp(lo, hi)
    else:
        x = np.clip(np.asarray(hu, dtype=np.float32), lo, hi)
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def model_to_hu(x, window: IntensitySettings):
    """Model intensity (array or tensor) -> float32 HU; values outside [-1, 1] are clipped first."""
    lo, hi = window.hu_min, window.hu_max
    if isinstance(x, torch.Tensor):
        x = x.to(torch.float32).clamp(-1.0, 1.0)
    else:
        x = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    return (x + 1.0) * ((hi - lo) / 2.0) + lo


def mean_image(hu: torch.Tensor, window: IntensitySettings) -> torch.Tensor:
    """The voxel-wise mean of the training crops ``(N, D, H, W)`` HU in model intensity: ``(D, H, W)``."""
    total = torch.zeros(hu.shape[1:], dtype=torch.float64)
    for volume in hu:  # one case at a time: no (N, D, H, W) float copy
        total += hu_to_model(volume, window).to(torch.float64)
    return (total / len(hu)).to(torch.float32)


def to_hu_int16(x, window: IntensitySettings) -> np.ndarray:
    """Model intensity -> HU rounded to int16 (the dtype of the project's CT NIfTIs)."""
    hu = model_to_hu(x, window)
    if isinstance(hu, torch.Tensor):
        hu = hu.cpu().numpy()
    return np.clip(np.rint(hu), -32768, 32767).astype(np.int16)


def unit_std_scale(hu: torch.Tensor, window: IntensitySettings, mean: torch.Tensor | None) -> float:
    """1 / std of what the model diffuses (the crops ``(N, D, H, W)`` in model intensity, minus the
    mean image if any) over every training voxel: the factor that gives it unit variance (MAISI's
    ``scale_factor``). 1.0 unless ``window.unit_std``."""
    if not window.unit_std:
        return 1.0
    total = total_sq = 0.0
    count = 0
    for volume in hu:  # one case at a time, in float64
        x = hu_to_model(volume, window).to(torch.float64)
        if mean is not None:
            x = x - mean.to(torch.float64)
        total += float(x.sum())
        total_sq += float((x * x).sum())
        count += x.numel()
    variance = total_sq / count - (total / count) ** 2
    return 1.0 / max(variance, 1e-12) ** 0.5


def diffusion_bounds(mean: torch.Tensor | None, scale: float, shape):
    """Per-voxel range ``(low, high)`` of the diffused quantity for an image in [-1, 1]:
    ``[(-1 - m) s, (1 - m) s]`` with the mean image ``m`` (0 without one) and the scale ``s``.
    Clipping the predicted x_0 to it holds the image itself to [-1, 1] at every step."""
    m = torch.zeros(shape) if mean is None else mean.to(torch.float32)
    return (-1.0 - m) * scale, (1.0 - m) * scale
