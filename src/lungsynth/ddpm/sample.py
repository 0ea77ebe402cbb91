"""Generating a CT volume from a nodule mask: reverse diffusion from Gaussian noise (DDPM or DDIM).

Two ways to run the net at each step:

- ``whole`` (the paper's and PatchDDM's): the fully convolutional net sees the whole noisy
  volume with the whole coordinate grid and the whole mask. Memory grows with the volume.
- ``windowed``: overlapping windows of the training patch size, blended by MONAI's
  ``sliding_window_inference`` (Gaussian or constant weights). The net's memory stays that of one
  window, and each window sees GroupNorm statistics of a training-sized input. With a single
  window covering the volume it computes exactly what ``whole`` computes.

Every case is seeded from ``(seed, case id)``, so a rerun gives the same volume (on the same
device and thread count).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from tqdm import tqdm

from ..case_ids import case_id_of
from ..errors import InputError
from .checkpoint import LoadedModel, load_model
from .coordinates import check_patch_fits, whole_condition
from .intensity import diffusion_bounds, to_hu_int16
from .network import check_divisible
from ..runtime import autocast, resolve_device, set_threads
from .schedule import sampling_scheduler
from .settings import SamplingSettings, ScheduleSettings

log = logging.getLogger("lungsynth.ddpm")


def case_seed(seed: int, case_id: str) -> int:
    """A 63-bit seed from ``(seed, case id)``: different cases differ, the same case repeats."""
    digest = hashlib.sha256(f"{int(seed)}:{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def case_generator(seed: int, case_id: str, device: str | torch.device = "cpu") -> torch.Generator:
    """The random generator of one case (on the device the noise is drawn on)."""
    return torch.Generator(device=device).manual_seed(case_seed(seed, case_id))


class Denoiser:
    """The net's prediction for the whole volume at one timestep, whole-volume or windowed.

    ``condition (1, 4, D, H, W)`` = [mask, z, y, x] stays fixed; calling with ``x_t (1, 1, D, H, W)``
    and an integer timestep returns the prediction ``(1, 1, D, H, W)`` in float32.
    """

    def __init__(self, model: torch.nn.Module, condition: torch.Tensor, *, mode: str = "whole",
                 window: Sequence[int] | None = None, overlap: float = 0.5, blend: str = "gaussian",
                 window_batch: int = 1, bf16: bool = False):
        if mode not in ("whole", "windowed"):
            raise ValueError(f"mode must be whole or windowed, got {mode!r}")
        if mode == "windowed" and window is None:
            raise ValueError("windowed mode needs the window size")
        self.model, self.condition, self.mode = model, condition, mode
        self.window = None if window is None else tuple(int(w) for w in window)
        self.overlap, self.blend, self.window_batch, self.bf16 = overlap, blend, window_batch, bf16
        self.device = condition.device

    def _net(self, inputs: torch.Tensor, t: int) -> torch.Tensor:
        timesteps = torch.full((inputs.shape[0],), int(t), dtype=torch.long, device=inputs.device)
        with autocast(self.device, self.bf16):
            return self.model(inputs, timesteps).float()

    @torch.no_grad()
    def __call__(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        inputs = torch.cat([x_t, self.condition], dim=1)
        if self.mode == "whole":
            return self._net(inputs, t)
        out = sliding_window_inference(inputs, roi_size=self.window, sw_batch_size=self.window_batch,
                                       predictor=lambda patch: self._net(patch, t), overlap=self.overlap,
                                       mode=self.blend)
        return out.as_tensor() if hasattr(out, "as_tensor") else out


def logged_progress(items: Sequence, what: str, parts: int = 10):
    """Yield ``items``, logging at each tenth how far the loop is: the rule's log shows how far a
    volume is (a DDPM-1000 volume takes an hour on a CPU), where a tqdm bar reaches only a console."""
    total, every, started = len(items), max(1, -(-len(items) // parts)), time.perf_counter()
    for done, item in enumerate(items, start=1):
        yield item
        if done % every == 0 or done == total:
            elapsed = time.perf_counter() - started
            log.info("%s: step %d/%d, %.0f s elapsed, about %.0f s left", what, done, total, elapsed,
                     elapsed / done * (total - done))


@torch.no_grad()
def sample_volume(model: torch.nn.Module, mask, schedule: ScheduleSettings, *, sampler: str = "ddim",
                  steps: int | None = 50, eta: float = 0.0, mode: str = "whole",
                  window: Sequence[int] | None = None, overlap: float = 0.5, blend: str = "gaussian",
                  window_batch: int = 1, bf16: bool = False, generator: torch.Generator | None = None,
                  device: str | torch.device = "cpu", progress: bool = False,
                  mean_image: torch.Tensor | None = None, data_scale: float = 1.0) -> torch.Tensor:
    """Generate one volume for ``mask (D, H, W)``; returns ``(D, H, W)`` float32 in [-1, 1].

    ``sampler`` ``ddpm`` runs all T steps (``steps`` ignored unless it differs from T: error);
    ``ddim`` runs ``steps`` steps with noise weight ``eta`` (0 = deterministic given x_T);
    ``euler`` (a rectified-flow model) ``steps`` Euler steps of its ODE. The model generates
    ``(image - mean_image) * data_scale`` (no mean image: 0; no scale: 1);
    both are undone here. With ``schedule.clip_sample`` the predicted x_0 is clipped at every step
    to the per-voxel range that keeps the image in [-1, 1] (:func:`clip_prediction`).
    """
    device = torch.device(device)
    scheduler = sampling_scheduler(schedule, sampler, None if sampler == "ddpm" and steps is None else steps)
    condition = whole_condition(mask).to(device)
    if mean_image is not None:
        mean_image = mean_image.to(device=device, dtype=torch.float32)
    bounds = None
    if schedule.clip_sample:
        low, high = diffusion_bounds(mean_image, data_scale, condition.shape[2:])
        bounds = (low.to(device)[None, None], high.to(device)[None, None])
    flow = schedule.flow
    alphas_cumprod = None if flow else scheduler.alphas_cumprod.to(device)
    denoise = Denoiser(model, condition, mode=mode, window=window, overlap=overlap, blend=blend,
                       window_batch=window_batch, bf16=bf16)
    shape = (1, 1, *condition.shape[2:])
    x = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    timesteps = [int(t) for t in scheduler.timesteps]
    following = dict(zip(timesteps, timesteps[1:] + [0]))   # a flow's Euler step goes to the next t, the last to 0
    if progress:  # a bar for a console, log records for a rule's log
        steps_done = tqdm(timesteps, desc=f"sample {sampler}", unit="step", file=sys.stderr,
                          mininterval=0.5 if sys.stderr.isatty() else 30.0)
    else:
        steps_done = logged_progress(timesteps, f"sample {sampler}")
    for t in steps_done:
        prediction = denoise(x, t)
        if flow:
            if bounds is not None:
                prediction = clip_flow(prediction, x, t / schedule.num_train_timesteps, *bounds)
            x, _ = scheduler.step(prediction, t, x, following[t])
            continue
        if bounds is not None:
            prediction = clip_prediction(prediction, x, alphas_cumprod[t], schedule.prediction_type, *bounds)
        if sampler == "ddim":
            x, _ = scheduler.step(prediction, t, x, eta=eta, generator=generator)
        else:
            x, _ = scheduler.step(prediction, t, x, generator=generator)
    x = x[0, 0] / data_scale
    if mean_image is not None:
        x = x + mean_image
    return x.clamp(-1.0, 1.0)


def implied_x0(prediction: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The x_0 that the net's output (epsilon or v) at ``x_t`` implies, by the scheduler's formulas."""
    a, b = alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()
    if prediction_type == "v_prediction":
        return a * x_t - b * prediction
    return (x_t - b * prediction) / a


def clip_prediction(prediction: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor, prediction_type: str,
                    low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The net's output at one step with its implied x_0 clipped per voxel to ``[low, high]``.

    x_0 follows from the output (epsilon or v) and x_t; it is clipped and turned back into the
    output that implies the clipped x_0, so that MONAI's scheduler step, which derives x_0 by the
    same formulas, continues from the clipped one. (A scalar clip, MONAI's ``clip_sample``, cannot
    hold a residual to the mean image to the image range: the bound differs from voxel to voxel.)
    """
    a, b = alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt()
    x0 = torch.maximum(torch.minimum(implied_x0(prediction, x_t, alpha_bar, prediction_type), high), low)
    epsilon = (x_t - a * x0) / b
    return a * epsilon - b * x0 if prediction_type == "v_prediction" else epsilon


def flow_x0(velocity: torch.Tensor, x_t: torch.Tensor, noise_share: float) -> torch.Tensor:
    """The x_0 a rectified flow's velocity (x_0 - noise) implies at ``x_t = (1 - s) x_0 + s noise``."""
    return x_t + noise_share * velocity


def clip_flow(velocity: torch.Tensor, x_t: torch.Tensor, noise_share: float, low: torch.Tensor,
              high: torch.Tensor) -> torch.Tensor:
    """A rectified flow's velocity with the x_0 it implies (:func:`flow_x0`) clipped per voxel to
    ``[low, high]`` (as :func:`clip_prediction`)."""
    x0 = torch.maximum(torch.minimum(flow_x0(velocity, x_t, noise_share), high), low)
    return (x0 - x_t) / noise_share


def _mask_array(mask, where: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise InputError(where, f"expected a 3D (z, y, x) mask, got shape {mask.shape}")
    if not np.isin(np.unique(mask), (0, 1)).all():
        values = np.unique(mask)
        log.warning("%s: mask has values %s; every value > 0 counts as nodule", where, values[:8])
    return (mask > 0).astype(np.uint8)


def sample_case(checkpoint: str | Path | LoadedModel, mask, *, case_id: str,
                settings: SamplingSettings | None = None, spacing: Sequence[float] | None = None,
                mask_name: str | None = None, device: str | torch.device = "auto",
                threads: int | None = None, progress: bool = False, window_batch: int = 1) -> np.ndarray:
    """One synthetic CT volume (HU, int16, same ``(z, y, x)`` shape as ``mask``) for one mask.

    The same function serves the workflow rule and the ``lungsynth sample`` command.
    ``checkpoint`` is a model file or an already loaded model; ``spacing`` (mm, z/y/x), when
    given, must match the training spacing; ``case_id`` seeds the case with ``settings.seed``;
    ``window_batch`` (windowed mode: windows per net call) changes the speed, not the volume.
    A checkpoint trained on another volume size is an InputError naming it.
    """
    settings = settings or SamplingSettings.from_config()
    set_threads(threads)
    device = resolve_device(device)
    where = mask_name or f"mask of {case_id}"
    mask = _mask_array(mask, where)
    loaded = checkpoint if isinstance(checkpoint, LoadedModel) else load_model(checkpoint, device)
    loaded.model.to(device)
    loaded.check_geometry(mask.shape, spacing, what=f"the mask {where}")
    if settings.mode == "whole":
        check_divisible(mask.shape, loaded.levels, where, "volume size (whole-volume sampling)")
    else:
        check_patch_fits(mask.shape, loaded.patch_size, where)
    if not mask.any():
        log.warning("%s: the mask is empty; the volume is generated without a nodule", where)
    generator = case_generator(settings.seed, case_id, device)
    x0 = sample_volume(loaded.model, mask, loaded.schedule, sampler=settings.sampler,
                       steps=None if settings.sampler == "ddpm" else settings.steps, eta=settings.eta,
                       mode=settings.mode, window=loaded.patch_size, overlap=settings.window_overlap,
                       blend=settings.window_blend, window_batch=window_batch, bf16=settings.bf16,
                       generator=generator, device=device, progress=progress, mean_image=loaded.mean_image,
                       data_scale=loaded.data_scale)
    return to_hu_int16(x0, loaded.intensity)


def sample_nifti(checkpoint: str | Path | LoadedModel, mask_path, out_path, *, case_id: str | None = None,
                 settings: SamplingSettings | None = None, device: str | torch.device = "auto",
                 threads: int | None = None, progress: bool = False, window_batch: int = 1) -> np.ndarray:
    """Read a mask NIfTI, generate its volume with :func:`sample_case`, write it (int16 HU) with the
    mask's affine; returns the volume. What the workflow's ``sample`` rule and ``lungsynth sample`` run.

    ``case_id`` (default: the mask's file name without ``.nii.gz``) seeds the case.
    """
    from ..io import read_nifti, write_nifti
    from .quality import spacing_zyx

    mask_path, out_path = Path(mask_path), Path(out_path)
    if out_path.resolve() == mask_path.resolve():
        raise InputError(out_path, "the output would overwrite the mask; choose another output path")
    mask, geometry = read_nifti(mask_path)
    hu = sample_case(checkpoint, mask, case_id=case_id or case_id_of(mask_path), settings=settings,
                     spacing=spacing_zyx(geometry), mask_name=str(mask_path), device=device, threads=threads,
                     progress=progress, window_batch=window_batch)
    write_nifti(out_path, hu, geometry, dtype=np.int16)
    return hu

