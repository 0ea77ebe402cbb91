"""Noise schedule and samplers: MONAI's DDPMScheduler / DDIMScheduler (T = 1000, linear betas).

The only thing added by hand is the DDIM step spacing: MONAI 1.6's ``DDIMScheduler.step`` jumps
``T // steps`` back from each timestep, while its ``set_timesteps`` spaces them by
``(T - 1) / (steps - 1)`` (rounded); the two disagree unless ``steps`` divides ``T - 1``.
:func:`set_sampling_steps` uses the spacing ``step`` assumes (the original DDIM's uniform skip,
``diffusers``' "leading" spacing), so every step lands exactly on the next timestep.
"""

from __future__ import annotations

import torch
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from ..errors import InputError
from .settings import ScheduleSettings


def _schedule_args(settings: ScheduleSettings, clip: float = 1.0) -> dict:
    return {
        "clip_sample_min": -float(clip),
        "clip_sample_max": float(clip),
        "num_train_timesteps": settings.num_train_timesteps,
        "schedule": settings.schedule,
        "beta_start": settings.beta_start,
        "beta_end": settings.beta_end,
        "prediction_type": settings.prediction_type,
        "clip_sample": settings.clip_sample,
    }


def training_scheduler(settings: ScheduleSettings) -> DDPMScheduler:
    """The forward process used in training (``add_noise``, ``get_velocity``)."""
    return DDPMScheduler(**_schedule_args(settings))


def sampling_scheduler(settings: ScheduleSettings, sampler: str, steps: int | None = None, clip: float = 1.0):
    """A DDPM (all T steps) or DDIM (``steps`` steps) scheduler with its timesteps set; with
    ``clip_sample`` the predicted x_0 is clipped to ``[-clip, clip]``.

    DDPM in MONAI always steps from t to t-1, so it runs all ``T`` steps; asking it for fewer is
    an InputError (use DDIM).
    """
    T = settings.num_train_timesteps
    if sampler == "ddpm":
        if steps not in (None, T):
            raise InputError("sampling.steps", f"the DDPM sampler runs all {T} steps (got {steps}); "
                                               f"use the DDIM sampler for fewer")
        scheduler = DDPMScheduler(**_schedule_args(settings, clip))
        scheduler.set_timesteps(T)
        return scheduler
    if sampler == "ddim":
        steps = 50 if steps is None else int(steps)
        if not 1 <= steps <= T:
            raise InputError("sampling.steps", f"DDIM steps must be in 1..{T}, got {steps}")
        scheduler = DDIMScheduler(**_schedule_args(settings, clip))
        set_sampling_steps(scheduler, steps)
        return scheduler
    raise InputError("sampling.sampler", f"expected ddim or ddpm, got {sampler!r}")


def set_sampling_steps(scheduler: DDIMScheduler, steps: int) -> None:
    """Timesteps ``(steps-1)*k, ..., k, 0`` with ``k = T // steps``: the jump ``DDIMScheduler.step`` makes."""
    scheduler.set_timesteps(steps)
    k = scheduler.num_train_timesteps // steps
    scheduler.timesteps = torch.arange(steps - 1, -1, -1, dtype=torch.long) * k


def training_target(scheduler: DDPMScheduler, x0: torch.Tensor, noise: torch.Tensor,
                    timesteps: torch.Tensor) -> torch.Tensor:
    """What the net learns to predict: the noise (epsilon, the paper's) or the velocity v."""
    if scheduler.prediction_type == "v_prediction":
        return scheduler.get_velocity(x0, noise, timesteps)
    return noise
