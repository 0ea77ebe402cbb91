"""Fixtures of the DDPM tests: one torch thread, toy data, a tiny trained checkpoint."""

from __future__ import annotations

import pytest
import torch

from .toys import tiny_settings, toy_volumes

torch.set_num_threads(1)


@pytest.fixture
def toy_data():
    return toy_volumes()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A model checkpoint trained for a few steps on 16^3 toy volumes (patch 8^3), spacing 2 mm."""
    from lungsynth.ddpm.train import train_ddpm

    folder = tmp_path_factory.mktemp("ddpm")
    images, masks = toy_volumes()
    train_ddpm(images, masks, tiny_settings(steps=5), folder / "model.pt",
               spacing=(2.0, 2.0, 2.0), progress=False, checkpoint_every=5)
    return folder / "model.pt"
