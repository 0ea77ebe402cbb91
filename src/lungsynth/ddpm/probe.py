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
