"""A fixed validation-loss probe: the denoising loss on frozen (validation patch, t, noise) triples.

The training loss is measured on new random patches and timesteps every step, so its curve mixes
progress with sampling noise and cannot compare recipes that draw timesteps differently. The probe
draws once, from the validation crops, ``per_bin`` patches for each of ``bins`` equal timestep bins
with their noise, and reports the plain (unweighted) MSE on the prediction target per bin: the same
numbers for every variant and every checkpoint.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .coordinates import PatchSampler, crop
from .intensity import hu_to_model
from .schedule import training_scheduler, training_target
from .settings import DdpmSettings


class LossProbe:
    """Frozen triples from ``images``/``masks`` (validation crops, HU / 0-1); call with a model."""

    def __init__(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], settings: DdpmSettings,
                 mean_image: torch.Tensor | None = None, data_scale: float = 1.0, bins: int = 10,
                 per_bin: int = 4, seed: int = 1234):
        from .train import stack_training_data

        hu, nodules = stack_training_data(images, masks)
        train = settings.training
        generator = torch.Generator().manual_seed(seed)
        sampler = PatchSampler(hu, nodules, train.patch_size, train.nodule_patch_fraction)
        self.scheduler = training_scheduler(settings.schedule)
        total = self.scheduler.num_train_timesteps
        self.bins = bins
        n = bins * per_bin
        patch_hu, self.condition, where = sampler.sample(n, generator)
        x0 = hu_to_model(patch_hu, settings.intensity)
        if mean_image is not None:
            x0 = x0 - torch.stack([crop(mean_image, corner, train.patch_size)[None] for _, corner in where])
        x0 = x0 * data_scale
        edges = torch.linspace(0, total, bins + 1)
        self.bin_of = torch.arange(n) // per_bin
        u = torch.rand(n, generator=generator)
        self.timesteps = torch.clamp((edges[self.bin_of] + u * (edges[1] - edges[0])).long(), 0, total - 1)
        noise = torch.randn(x0.shape, generator=generator)
        self.x_t = self.scheduler.add_noise(x0, noise, self.timesteps)
        self.target = training_target(self.scheduler, x0, noise, self.timesteps)

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, batch: int = 8) -> pd.Series:
        """Mean MSE per timestep bin (index: the bin's first timestep) and over all (``all``)."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        losses = []
        for start in range(0, len(self.timesteps), batch):
            part = slice(start, start + batch)
            inputs = torch.cat([self.x_t[part], self.condition[part]], dim=1).to(device)
            prediction = model(inputs, self.timesteps[part].to(device)).float().cpu()
            losses.append((prediction - self.target[part]).pow(2).flatten(1).mean(dim=1))
        model.train(was_training)
        per_sample = torch.cat(losses)
        total = self.scheduler.num_train_timesteps
        per_bin = {f"t{int(b * total / self.bins)}": float(per_sample[self.bin_of == b].mean())
                   for b in range(self.bins)}
        return pd.Series({**per_bin, "all": float(per_sample.mean())})


@torch.no_grad()
def norm_consistency(loaded, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                     noise_levels: Sequence[float] = (0.05, 0.2, 0.5, 0.8), overlap: float = 0.5,
                     lung_threshold_hu: float = -400.0, seed: int = 0) -> pd.DataFrame:
    """Does the net predict the same over the whole crop as over training-sized windows of it?

    GroupNorm averages over a training patch in training, but over the whole crop when a volume is
    sampled whole (the paper's mode). Each crop of ``images`` (HU) is noised to t = level x T for
    each of ``noise_levels`` (t = 50, 200, 500, 800 of 1000); the model (a
    :class:`~lungsynth.ddpm.checkpoint.LoadedModel`) predicts it whole and in windows of its patch
    size at ``overlap`` (the windowed sampling mode). One row per crop, t and
    region (lung: below ``lung_threshold_hu`` in the clean crop; outside): the RMS difference of the
    two implied x_0 in HU, each one's RMS error against the clean crop, and ``relative`` = the
    difference over the windowed error (the mode's share of the model's own error).
    """
    from .coordinates import whole_condition
    from .intensity import model_to_hu
    from .sample import Denoiser, flow_x0, implied_x0

    scheduler, generator = training_scheduler(loaded.schedule), torch.Generator().manual_seed(seed)
    device = next(loaded.model.parameters()).device
    mean = 0.0 if loaded.mean_image is None else loaded.mean_image[None, None].cpu()
    rows = []
    for index, (hu, mask) in enumerate(zip(images, masks)):
        clean = hu_to_model(torch.as_tensor(np.asarray(hu, dtype=np.float32)), loaded.intensity)
        hu = model_to_hu(clean, loaded.intensity)   # the truth inside the HU window
        x0 = (clean[None, None] - mean) * loaded.data_scale
        condition = whole_condition(np.asarray(mask) > 0).to(device)
        lung = hu < lung_threshold_hu
        modes = {m: Denoiser(loaded.model, condition, mode=m, window=loaded.patch_size, overlap=overlap)
                 for m in ("whole", "windowed")}
        for t in (int(level * scheduler.num_train_timesteps) for level in noise_levels):
            noise = torch.randn(x0.shape, generator=generator)
            x_t = scheduler.add_noise(x0, noise, torch.tensor([t]))
            predicted = {m: d(x_t.to(device), t).cpu() for m, d in modes.items()}
            if loaded.schedule.flow:
                implied = {m: flow_x0(v, x_t, t / scheduler.num_train_timesteps) for m, v in predicted.items()}
            else:
                implied = {m: implied_x0(p, x_t, scheduler.alphas_cumprod[t], loaded.schedule.prediction_type)
                           for m, p in predicted.items()}
            hu_of = {m: model_to_hu(x / loaded.data_scale + mean, loaded.intensity)[0, 0] for m, x in implied.items()}
            for region, where in (("lung", lung), ("outside", ~lung)):
                def rms(a, b):
                    return float((a - b)[where].pow(2).mean().sqrt())
                difference, error = rms(hu_of["whole"], hu_of["windowed"]), rms(hu_of["windowed"], hu)
                rows.append({"crop": index, "t": int(t), "region": region, "rms_difference_hu": difference,
                             "rms_error_whole_hu": rms(hu_of["whole"], hu), "rms_error_windowed_hu": error,
                             "relative": difference / error if error > 0 else float("nan")})
    return pd.DataFrame(rows)
