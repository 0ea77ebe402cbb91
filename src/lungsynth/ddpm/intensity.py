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
