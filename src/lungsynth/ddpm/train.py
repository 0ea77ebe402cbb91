"""Training loop of the patch-wise conditional DDPM (paper section 2.3, formula 3).

Each step draws random patches (with their coordinate channels) from the whole training
volumes, noises the CT patch to a random timestep t, and regresses the noise epsilon
(or v) from ``[x_t, mask, z, y, x]`` with MSE. AdamW, an EMA of the weights (sampling uses it),
optional bf16 autocast and gradient clipping. The training state is saved every
``checkpoint_every`` steps (``execution.ddpm_checkpoint_every``), so a killed run started again continues where it stopped; the model
file is written only at the end.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from ..errors import InputError
from ..io import save_figure, write_csv
from .checkpoint import load_state, save_model, save_state, state_fingerprint
from .coordinates import PatchSampler, check_patch_fits, crop
from .intensity import hu_to_model, mean_image, unit_std_scale
from .network import build_network, check_divisible, count_parameters, network_config
from ..runtime import autocast, bf16_is_used, describe_device, memory_format, resolve_device, set_threads
from .schedule import draw_timesteps, loss_weights, training_scheduler, training_target
from .settings import DdpmSettings, TrainingSettings

log = logging.getLogger("lungsynth.ddpm")

LOSS_COLUMNS = ["step", "loss", "lr", "seconds", "cpu_seconds", "grad_norm"]
#: on a GPU, losses are read (one wait for the GPU) every this many steps
GPU_LOSS_READ_EVERY = 25


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run reports: where the model is, steps, the loss history."""

    model_path: Path
    step: int
    resumed_from: int
    losses: pd.DataFrame
    seconds: float


def training_data_hash(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> str:
    """SHA-256 over the shapes, dtypes and bytes of the training volumes, in order."""
    digest = hashlib.sha256()
    for array in (*images, *masks):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def effective_ema_decay(decay: float, updates: int) -> float:
    """The EMA's decay at its ``updates``-th update: ``min(decay, (1+n)/(10+n))``. The warm-up keeps a
    short run's EMA from being dominated by the initial weights, but it also means a nominal decay is
    reached only after ``(10 d - 1) / (1 - d)`` updates: 0.999 needs 8989 steps; after 1500 steps
    the decay is 0.994 (an average over the last ~170 steps, not ~1000)."""
    n = float(max(updates - 1, 0))
    return min(decay, (1.0 + n) / (10.0 + n))


def ema_update(decay: float, updates: Callable[[], int] | None = None):
    """EMA update for :class:`AveragedModel` with the warm-up of :func:`effective_ema_decay`.

    ``updates()`` gives the number of updates so far from a host-side count; reading the count
    AveragedModel passes (a tensor on the net's device) would wait for the GPU at every step."""

    @torch.no_grad()
    def update(ema_params, params, num_averaged):
        done = updates() if updates is not None else int(num_averaged)
        weight = 1.0 - effective_ema_decay(decay, done + 1)
        torch._foreach_lerp_(ema_params, params, weight)

    return update


def learning_rate_at(step: int, training: TrainingSettings) -> float:
    """The learning rate of step ``step`` (1-based): linear warm-up over ``warmup_steps``, then
    ``lr_schedule``: constant, or a decay to 0 at the last step, cosine or ``(1 - progress)^lr_power``."""
    base, warmup, total = training.learning_rate, training.warmup_steps, training.steps
    if warmup and step <= warmup:
        return base * step / warmup
    if training.lr_schedule == "constant":
        return base
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if training.lr_schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base * (1.0 - progress) ** training.lr_power


def as_training_hu(image) -> np.ndarray:
    """One crop's HU as int16 (rounded and clipped only when it is not int16 already)."""
    image = np.asarray(image)
    if image.dtype == np.int16:
        return image
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, -32768, 32767).astype(np.int16)
    return np.clip(np.rint(image), -32768, 32767).astype(np.int16)


def as_training_mask(mask) -> np.ndarray:
    """One crop's nodule mask as 0/1 uint8 (every voxel > 0 is nodule)."""
    return (np.asarray(mask) > 0).view(np.uint8)


def stack_training_data(images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                        names: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (HU) and masks as ``(N, D, H, W)`` int16 / uint8 tensors; InputError on a shape mismatch.

    Arrays already stacked as int16 / uint8 are wrapped without a copy; a list of cases is written
    case by case into tensors allocated once (no float32 copy of the whole set).
    """
    if len(images) == 0:
        raise InputError("ddpm training data", "no training images")
    if len(images) != len(masks):
        raise InputError("ddpm training data", f"{len(images)} images but {len(masks)} masks")
    names = list(names) if names is not None else [f"training case {i}" for i in range(len(images))]
    shape = np.shape(images[0])
    if len(shape) != 3:
        raise InputError(names[0], f"expected a 3D (z, y, x) volume, got shape {shape}")
    for name, image, mask in zip(names, images, masks):
        if np.shape(image) != shape:
            raise InputError(name, f"image shape {np.shape(image)} differs from the first image's {shape}; "
                                   f"all training crops must share one volume size")
        if np.shape(mask) != shape:
            raise InputError(name, f"mask shape {np.shape(mask)} differs from its image's {shape}")
    if isinstance(images, np.ndarray) and images.dtype == np.int16 and isinstance(masks, np.ndarray) \
            and masks.dtype == np.uint8 and masks.max(initial=0) <= 1:
        return torch.from_numpy(images), torch.from_numpy(masks)
    hu = torch.empty((len(images), *shape), dtype=torch.int16)
    nodules = torch.empty((len(images), *shape), dtype=torch.uint8)
    for index, (image, mask) in enumerate(zip(images, masks)):
        hu[index] = torch.from_numpy(np.ascontiguousarray(as_training_hu(image)))
        nodules[index] = torch.from_numpy(np.ascontiguousarray(as_training_mask(mask)))
    return hu, nodules


@dataclass(frozen=True)
class Batch:
    """One prepared training batch (CPU tensors) and the generator's state right after drawing it,
    which is what a checkpoint taken after this batch's step must save."""

    inputs: torch.Tensor       # (B, 5, *patch): [x_t, mask, z, y, x]
    timesteps: torch.Tensor    # (B,)
    target: torch.Tensor       # (B, 1, *patch): epsilon or v
    weights: torch.Tensor      # (B,)
    generator_state: torch.Tensor


def check_finite(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise RuntimeError(f"DDPM training diverged at step {step} (loss {loss}); "
                           f"lower ddpm.training.learning_rate or enable grad_clip_norm")


class Trainer:
    """The objects of one training run and one optimisation step (formula 3 of the paper).

    Holds the net, its EMA, AdamW, the random generator (patches, timesteps, noise), the
    training scheduler and the patch sampler; :meth:`state` / :meth:`load` give what a
    checkpoint must keep for a resumed run to continue exactly.
    """

    def __init__(self, settings: DdpmSettings, hu: torch.Tensor, nodules: torch.Tensor,
                 device: torch.device, layout: str = "auto"):
        train = settings.training
        self.settings, self.device = settings, device
        self.network = network_config(settings.network)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train.seed)
            self.model = build_network(self.network)
        self.layout = memory_format(device, bf16_is_used(device, train.bf16), layout)
        self.model.to(device, memory_format=self.layout).train()
        # n_averaged stays on the CPU (AveragedModel creates it there): reading it costs no GPU sync
        self.ema = AveragedModel(self.model, multi_avg_fn=ema_update(train.ema_decay, lambda: int(self.ema.n_averaged)),
                                 use_buffers=False)
        self.last_grad_norm = torch.zeros(())
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # fixed patch shape: let cuDNN pick its fastest kernels
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=train.learning_rate,
                                           weight_decay=train.weight_decay)
        self.generator = torch.Generator().manual_seed(train.seed)
        self.scheduler = training_scheduler(settings.schedule)
        self.sampler = PatchSampler(hu, nodules, train.patch_size, train.nodule_patch_fraction, train.patch_draw,
                                    settings.intensity.hu_min)
        # (D, H, W): what the diffusion is relative to (ddpm.intensity.mean_image), else None
        self.mean_image = mean_image(hu, settings.intensity) if settings.intensity.mean_image else None
        # the factor that gives the diffused quantity unit std (ddpm.intensity.unit_std), else 1
        self.data_scale = unit_std_scale(hu, settings.intensity, self.mean_image)

    def prepare(self) -> "Batch":
        """The next batch, on the CPU: patches, noise, timesteps and target from the generator, in
        the order of every earlier version (so a resumed run draws what an unbroken one would)."""
        train = self.settings.training
        patch_hu, condition, where = self.sampler.sample(train.batch_size, self.generator)
        x0 = hu_to_model(patch_hu, self.settings.intensity)
        if self.mean_image is not None:
            x0 = x0 - torch.stack([crop(self.mean_image, corner, train.patch_size, -1.0)[None] for _, corner in where])
        x0 = x0 * self.data_scale
        noise = torch.randn(x0.shape, generator=self.generator)
        timesteps = draw_timesteps(train.batch_size, self.scheduler.num_train_timesteps, train.timestep_sampling,
                                   self.generator, train.logit_normal_location,
                                   train.logit_normal_uniform_share)
        x_t = self.scheduler.add_noise(x0, noise, timesteps)
        target = training_target(self.scheduler, x0, noise, timesteps)
        weights = loss_weights(self.scheduler, timesteps, train.loss_weighting, train.min_snr_gamma)
        inputs = torch.cat([x_t, condition], dim=1)  # (B, 5, *patch)
        if self.device.type == "cuda":   # page-locked: the copy to the GPU overlaps the previous step
            inputs, target = inputs.pin_memory(), target.pin_memory()
        return Batch(inputs, timesteps, target, weights, self.generator.get_state())

    def optimise(self, step: int, batch: "Batch") -> tuple[torch.Tensor, float]:
        """Optimisation step number ``step`` (1-based) on a prepared batch: returns the loss as a
        tensor on the device (reading it would wait for the GPU) and the learning rate."""
        train, device = self.settings.training, self.device
        lr = learning_rate_at(step, train)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        inputs = batch.inputs.to(device, memory_format=self.layout, non_blocking=True)
        with autocast(device, train.bf16):
            prediction = self.model(inputs, batch.timesteps.to(device, non_blocking=True))
        per_sample = (prediction.float() - batch.target.to(device, non_blocking=True)).pow(2).flatten(1).mean(dim=1)
        loss = (batch.weights.to(device) * per_sample).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # the gradient norm before clipping (logged: a net stuck at its zero-initialised output shows here)
        if train.grad_clip_norm > 0:
            self.last_grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.grad_clip_norm)
        else:
            self.last_grad_norm = torch.nn.utils.get_total_norm(
                [p.grad for p in self.model.parameters() if p.grad is not None])
        self.optimizer.step()
        self.ema.update_parameters(self.model)
        return loss.detach(), lr

    def step(self, step: int) -> tuple[float, float]:
        """Optimisation step number ``step`` (1-based): returns ``(loss, learning rate)``."""
        loss, lr = self.optimise(step, self.prepare())
        value = float(loss.item())
        check_finite(value, step)
        return value, lr

    def state(self, generator_state: torch.Tensor | None = None) -> dict:
        """What a checkpoint keeps; ``generator_state``: the generator's state after the last
        optimised batch (the generator may already have drawn the next, prefetched one)."""
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state() if generator_state is None else generator_state}

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


def train_ddpm(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], settings: DdpmSettings,
               model_path, *, state_path=None, loss_csv=None, loss_png=None,
               spacing: Sequence[float] | None = None, names: Sequence[str] | None = None,
               device: str = "auto", threads: int | None = None, progress: bool = True,
               data_hash: str | None = None, checkpoint_every: int = 50, layout: str = "auto",
               on_checkpoint: Callable[[int, "Trainer"], None] | None = None) -> TrainResult:
    """Train the DDPM on random patches of ``images``/``masks`` (each ``(D, H, W)``, HU / 0-1).

    Writes ``model_path`` (EMA weights and metadata) at the end, the resumable state at
    ``state_path`` (default ``<model_path>.state``) every ``checkpoint_every`` steps (a speed
    knob: it never changes the result), and the
    loss table ``(step, loss, lr, seconds, cpu_seconds)`` to ``loss_csv`` with each checkpoint,
    plus its plot ``loss_png`` at the end. ``spacing`` (mm, z/y/x) is recorded so sampling can
    check masks. ``layout``: the tensors' memory format (``execution.ddpm_memory_format``).
    ``on_checkpoint(step, trainer)`` runs after each checkpoint (e.g. a validation-loss probe).
    A state left by a killed run with the same settings and data is resumed.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    model_path = Path(model_path)
    state_path = Path(state_path) if state_path else model_path.with_name(model_path.name + ".state")
    train = settings.training
    set_threads(threads)
    device = resolve_device(device)

    hu, nodules = stack_training_data(images, masks, names)
    volume_size = tuple(hu.shape[1:])
    check_patch_fits(volume_size, train.patch_size, "ddpm.training.patch_size")
    check_divisible(train.patch_size, settings.network.levels, "ddpm.training.patch_size", "patch size")
    try:
        check_divisible(volume_size, settings.network.levels, "training volumes", "volume size")
    except InputError as err:
        log.warning("%s: whole-volume sampling will not work, only windowed", err)
    data_hash = data_hash or training_data_hash(hu.numpy(), nodules.numpy())
    fingerprint = state_fingerprint(settings, data_hash, volume_size)

    trainer = Trainer(settings, hu, nodules, device, layout)

    for path in (state_path, model_path):  # temporaries left by a run killed while writing them
        for stale in path.parent.glob(f".tmp-????????-{path.name}"):
            stale.unlink(missing_ok=True)
    rows: list[list[float]] = []
    step, elapsed_before, cpu_before = 0, 0.0, 0.0
    state = load_state(state_path, fingerprint)
    if state is not None and int(state["step"]) > train.steps:
        log.warning("%s: saved state is at step %d, beyond ddpm.training.steps=%d; starting afresh",
                    state_path, state["step"], train.steps)
        state = None
    if state is not None:
        trainer.load(state)
        rows = [list(r) + [float("nan")] * (len(LOSS_COLUMNS) - len(r)) for r in state["losses"]]
        step, elapsed_before = int(state["step"]), float(state["elapsed"])
        cpu_before = float(state.get("cpu_elapsed", 0.0))
        log.info("resuming DDPM training from step %d (%s)", step, state_path)
    resumed_from = step

    log.info("DDPM training: %d cases of %s voxels, patch %s x %d, %d steps, net %s (%.2f M parameters), "
             "on %s, %s, data scale %.3f", len(hu), volume_size, train.patch_size, train.batch_size, train.steps,
             list(settings.network.channels), count_parameters(trainer.model) / 1e6,
             describe_device(device, train.bf16), str(trainer.layout).removeprefix("torch."), trainer.data_scale)

    def checkpoint(at_step: int, generator_state: torch.Tensor) -> None:
        save_state(state_path, {
            "fingerprint": fingerprint, "step": at_step, **trainer.state(generator_state), "losses": rows,
            "elapsed": elapsed_before + time.perf_counter() - started,
            "cpu_elapsed": cpu_before + time.process_time() - cpu_started,
        })
        if loss_csv:
            write_csv(loss_csv, loss_table(rows))
        if on_checkpoint is not None:
            on_checkpoint(at_step, trainer)

    bar = tqdm(total=train.steps, initial=step, desc="train ddpm", disable=not progress, unit="step",
               mininterval=0.5 if sys.stderr.isatty() else 30.0, file=sys.stderr)
    # On a GPU the next batch is drawn on the CPU while the GPU runs this one, and losses are read
    # in groups (each read waits for the GPU); on the CPU both happen every step, as before.
    on_gpu = device.type == "cuda"
    read_every = GPU_LOSS_READ_EVERY if on_gpu else 1
    pending: list[tuple] = []

    def read_losses() -> None:
        values = torch.stack([p[1] for p in pending]).tolist()
        norms = torch.stack([p[2].float() for p in pending]).tolist()
        for (at, _, _, lr, seconds, cpu), value, norm in zip(pending, values, norms):
            check_finite(value, at)
            rows.append([at, value, lr, seconds, cpu, norm])
        pending.clear()
        bar.set_postfix(loss=f"{rows[-1][1]:.4f}", refresh=False)

    with ThreadPoolExecutor(max_workers=1) as prefetcher:
        upcoming = prefetcher.submit(trainer.prepare) if on_gpu and step < train.steps else None
        while step < train.steps:
            step += 1
            batch = upcoming.result() if upcoming is not None else trainer.prepare()
            upcoming = prefetcher.submit(trainer.prepare) if on_gpu and step < train.steps else None
            loss, lr = trainer.optimise(step, batch)
            pending.append((step, loss, trainer.last_grad_norm, lr,
                            round(elapsed_before + time.perf_counter() - started, 3),
                            round(cpu_before + time.process_time() - cpu_started, 3)))
            bar.update(1)
            at_checkpoint = step % checkpoint_every == 0 or step == train.steps
            if at_checkpoint or len(pending) >= read_every:
                read_losses()
            if at_checkpoint:
                checkpoint(step, batch.generator_state)
    bar.close()

    save_model(model_path, trainer.ema.module, settings=settings, network=trainer.network, volume_size=volume_size,
               spacing=spacing, data_hash=data_hash, step=step, n_cases=len(hu), mean_image=trainer.mean_image,
               data_scale=trainer.data_scale)
    losses = loss_table(rows)
    if loss_csv:
        write_csv(loss_csv, losses)
    if loss_png:
        from .figures import loss_curve_figure

        target = ("x_0 - noise" if settings.schedule.flow else
                  "epsilon" if settings.schedule.prediction_type == "epsilon" else "v")
        save_figure(loss_png, loss_curve_figure(losses, title=f"DDPM training loss (MSE on {target})"))
    seconds = elapsed_before + time.perf_counter() - started
    log.info("DDPM training done: step %d, last loss %.4f, %.0f s in all; EMA decay reached %.4f "
             "(ddpm.training.ema_decay %g); model %s", step, rows[-1][1] if rows else float("nan"), seconds,
             effective_ema_decay(train.ema_decay, step), train.ema_decay, model_path)
    return TrainResult(model_path=model_path, step=step, resumed_from=resumed_from, losses=losses,
                       seconds=seconds)


def loss_table(rows) -> pd.DataFrame:
    """The loss history as a table: ``step, loss, lr, seconds, cpu_seconds, grad_norm`` (before clipping)."""
    frame = pd.DataFrame(rows, columns=LOSS_COLUMNS)
    return frame.astype({"step": int})
