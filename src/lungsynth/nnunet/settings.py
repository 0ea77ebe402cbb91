"""Typed settings of the utility experiment: config section ``nnunet`` (datasets, runs, plan, train,
predict), built from the schema like every section (:mod:`lungsynth.config`).

Sizes are in array order ``(z, y, x)``, as in nnU-Net's plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..config import Section
from ..errors import InputError


@dataclass(frozen=True)
class PlanSettings(Section):
    """The smaller plan written over nnU-Net's own: configuration, plans identifier, sizes.

    ``features`` gives one entry per U-Net stage; the pooling follows nnU-Net's own topology
    rule for the patch and the data's spacing, capped at ``len(features) - 1`` poolings.
    ``None`` keeps nnU-Net's planned value (all three ``None``: nnU-Net's own plan, e.g. for
    the paper-scale run on a GPU).
    """

    PATH = "nnunet.plan"

    configuration: str
    plans_name: str
    features: tuple[int, ...] | None
    patch_size: tuple[int, int, int] | None
    batch_size: int | None


@dataclass(frozen=True)
class TrainSettings(Section):
    """One training run's schedule (nnU-Net itself has no seed option: the run's seed comes apart)."""

    PATH = "nnunet.train"

    epochs: int
    iterations_per_epoch: int
    val_iterations_per_epoch: int
    initial_lr: float
    oversample_foreground: float
    oversampling: str
    augmentation_workers: int
    bf16: bool
    deep_supervision: bool


@dataclass(frozen=True)
class PredictSettings(Section):
    """How a trained run predicts (nnU-Net's ``nnUNetPredictor`` options) and scores a case."""

    PATH = "nnunet.predict"

    checkpoint: str
    mirroring: bool
    tile_step_size: float
    empty_dice: float
    bf16: bool
    lung_margin_mm: float | None


@dataclass(frozen=True)
class NnunetSettings(Section):
    """The ``nnunet`` config section."""

    PATH = "nnunet"

    datasets: Mapping[str, int]
    runs: int
    seed: int
    link: str
    plan: PlanSettings
    train: TrainSettings
    predict: PredictSettings

    def __post_init__(self):
        ids = list(self.datasets.values())
        if len(set(ids)) != len(ids):
            raise InputError(f"{self.PATH}.datasets", f"ids must be distinct, got {dict(self.datasets)}")

    def run_seed(self, run: int) -> int:
        """Seed of run ``run`` (1-based); the same for every arm, so run k of each arm starts alike."""
        return run_seed(self.seed, run)


def run_seed(seed: int, run: int) -> int:
    """Seed of run ``run`` (1-based) when run 1 has ``seed``."""
    if int(run) < 1:
        raise InputError("nnunet.runs", f"runs are numbered from 1, got {run}")
    return int(seed) + int(run) - 1

