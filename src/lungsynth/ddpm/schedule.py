"""Noise schedule and samplers: MONAI's DDPMScheduler / DDIMScheduler (T = 1000, linear betas
or the cosine schedule) or its RFlowScheduler (rectified flow, sampled by Euler steps), and what
training draws from the schedule: timesteps, target and loss weights.

The only thing added by hand is the DDIM step spacing: MONAI 1.6's ``DDIMScheduler.step`` jumps
``T // steps`` back from each timestep, while its ``set_timesteps`` spaces them by
``(T - 1) / (steps - 1)`` (rounded); the two disagree unless ``steps`` divides ``T - 1``.
:func:`set_sampling_steps` uses the spacing ``step`` assumes (the original DDIM's uniform skip,
``diffusers``' "leading" spacing), so every step lands exactly on the next timestep.
"""

from __future__ import annotations

import torch
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler, RFlowScheduler

from ..errors import InputError
from .settings import ScheduleSettings


def _schedule_args(settings: ScheduleSettings) -> dict:
    """MONAI scheduler arguments. The predicted x_0 is never clipped by MONAI (a scalar range):
    :func:`lungsynth.ddpm.sample.sample_volume` clips it per voxel, where the image range lies
    relative to the mean image. The cosine schedule takes no betas (MONAI's ``_cosine_beta``)."""
    args = {
        "num_train_timesteps": settings.num_train_timesteps,
        "schedule": settings.schedule,
        "prediction_type": settings.prediction_type,
        "clip_sample": False,
    }
    if settings.schedule != "cosine":
        args.update(beta_start=settings.beta_start, beta_end=settings.beta_end)
    return args


def training_scheduler(settings: ScheduleSettings) -> DDPMScheduler | RFlowScheduler:
    """The forward process used in training (``add_noise``; the target: :func:`training_target`).
    Rectified flow draws its timesteps as the DDPM's do (integers below T, ``draw_timesteps``)."""
    if settings.flow:
        return RFlowScheduler(num_train_timesteps=settings.num_train_timesteps, use_discrete_timesteps=True)
    return DDPMScheduler(**_schedule_args(settings))


def sampling_scheduler(settings: ScheduleSettings, sampler: str, steps: int | None = None):
    """A DDPM (all T steps), DDIM (``steps`` steps) or, for a rectified flow, an Euler (``steps``
    steps from t = T to 0) scheduler with its timesteps set.

    DDPM in MONAI always steps from t to t-1, so it runs all ``T`` steps; asking it for fewer is
    an InputError (use DDIM). A sampler of the other kind of model is an InputError too.
    """
    T = settings.num_train_timesteps
    if settings.flow != (sampler == "euler"):
        raise InputError("sampling.sampler", f"{sampler} cannot sample a model trained with ddpm.schedule.schedule: "
                                             f"{settings.schedule} (rectified_flow samples with euler, the DDPM "
                                             f"schedules with ddim or ddpm)")
    if sampler == "euler":
        steps = 30 if steps is None else int(steps)
        if not 1 <= steps <= T:
            raise InputError("sampling.steps", f"Euler steps must be in 1..{T}, got {steps}")
        scheduler = RFlowScheduler(num_train_timesteps=T, use_discrete_timesteps=True)
        scheduler.set_timesteps(steps)
        return scheduler
    if sampler == "ddpm":
        if steps not in (None, T):
            raise InputError("sampling.steps", f"the DDPM sampler runs all {T} steps (got {steps}); "
                                               f"use the DDIM sampler for fewer")
        scheduler = DDPMScheduler(**_schedule_args(settings))
        scheduler.set_timesteps(T)
        return scheduler
    if sampler == "ddim":
        steps = 50 if steps is None else int(steps)
        if not 1 <= steps <= T:
            raise InputError("sampling.steps", f"DDIM steps must be in 1..{T}, got {steps}")
        scheduler = DDIMScheduler(**_schedule_args(settings))
        set_sampling_steps(scheduler, steps)
        return scheduler
    raise InputError("sampling.sampler", f"expected ddim, ddpm or euler, got {sampler!r}")


def set_sampling_steps(scheduler: DDIMScheduler, steps: int) -> None:
    """Timesteps ``(steps-1)*k, ..., k, 0`` with ``k = T // steps``: the jump ``DDIMScheduler.step`` makes."""
    scheduler.set_timesteps(steps)
    k = scheduler.num_train_timesteps // steps
    scheduler.timesteps = torch.arange(steps - 1, -1, -1, dtype=torch.long) * k


def training_target(scheduler: DDPMScheduler | RFlowScheduler, x0: torch.Tensor, noise: torch.Tensor,
                    timesteps: torch.Tensor) -> torch.Tensor:
    """What the net learns to predict: the noise (epsilon, the paper's) or the velocity v; for a
    rectified flow its velocity x_0 - noise (MAISI's target; RFlowScheduler.step adds it up)."""
    if isinstance(scheduler, RFlowScheduler):
        return x0 - noise
    if scheduler.prediction_type == "v_prediction":
        return scheduler.get_velocity(x0, noise, timesteps)
    return noise


def signal_to_noise(scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    """SNR(t) = alpha_bar_t / (1 - alpha_bar_t) of each timestep."""
    alpha_bar = scheduler.alphas_cumprod.to(torch.float64)[timesteps.cpu()]
    return (alpha_bar / (1.0 - alpha_bar)).to(torch.float32)


def loss_weights(scheduler, timesteps: torch.Tensor, weighting: str, gamma: float) -> torch.Tensor:
    """Per-sample weight of the MSE: ``none`` = 1; ``min_snr`` (Hang et al. 2023, min-SNR-gamma) =
    min(SNR, gamma) / SNR for epsilon, min(SNR, gamma) / (SNR + 1) for v: the weight that makes each
    target's loss the min-SNR-clamped loss on x_0."""
    if weighting == "none":
        return torch.ones(len(timesteps))
    snr = signal_to_noise(scheduler, timesteps)
    clamped = torch.clamp(snr, max=float(gamma))
    return clamped / (snr + 1.0) if scheduler.prediction_type == "v_prediction" else clamped / snr


def draw_timesteps(n: int, total: int, sampling: str, generator: torch.Generator,
                   location: float = 0.0, uniform_share: float = 0.0) -> torch.Tensor:
    """``n`` training timesteps in ``0 .. total-1``: ``uniform`` (the paper's), ``stratified`` (one in
    each of ``n`` equal strata of the range: a batch always spans low and high noise) or
    ``logit_normal`` (t/T = sigmoid(N(location, 1)): more steps at middle noise levels, as in SD3;
    a positive ``location`` moves them to higher noise, where the chest's layout is decided, and
    ``uniform_share`` of them, drawn uniformly instead, keeps the low noise levels trained)."""
    if sampling == "uniform":
        return torch.randint(0, total, (n,), generator=generator)
    if sampling == "stratified":
        u = (torch.arange(n) + torch.rand(n, generator=generator)) / n
    elif sampling == "logit_normal":
        u = torch.sigmoid(torch.randn(n, generator=generator) + location)
        if uniform_share > 0:
            instead = torch.rand(n, generator=generator) < uniform_share
            u = torch.where(instead, torch.rand(n, generator=generator), u)
    else:
        raise InputError("ddpm.training.timestep_sampling", f"unknown timestep sampling {sampling!r}")
    return torch.clamp((u * total).long(), 0, total - 1)
