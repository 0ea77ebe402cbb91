"""Typed settings of the utility experiment (config section ``nnunet``).

Sizes are in array order ``(z, y, x)``, as in nnU-Net's plans. Built once from the config by
:meth:`NnunetSettings.from_config`; nested sections (``plan``, ``predict``, ``datasets``) are
checked key by key like every other section of the project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import InputError
from ..settings import section

#: the three arms of the paper's Table 1, in its order
ARMS = ("Real", "Synthetic", "Real+Synthetic")


@dataclass(frozen=True)
class PlanSettings:
    """The smaller plan written over nnU-Net's own (features per stage, patch, batch).

    ``features`` gives one entry per U-Net stage; the pooling follows nnU-Net's own topology
    rule for the patch and the data's spacing, capped at ``len(features) - 1`` poolings.
    ``None`` keeps nnU-Net's planned value (all three ``None``: nnU-Net's own plan, e.g. for
    the paper-scale run on a GPU).
    """

    features: tuple[int, ...] | None = (16, 32, 64, 128)
    patch_size: tuple[int, int, int] | None = (32, 32, 32)
    batch_size: int | None = 2

    def __post_init__(self):
        where = "nnunet.plan"
        if self.features is not None and (len(self.features) < 2 or any(int(f) < 1 for f in self.features)):
            raise InputError(f"{where}.features", f"need >= 2 positive widths, got {list(self.features)}")
        if self.patch_size is not None and (len(self.patch_size) != 3 or any(int(p) < 1 for p in self.patch_size)):
            # a 2d configuration ignores the z side
            raise InputError(f"{where}.patch_size", f"need 3 positive sides (z, y, x), got {list(self.patch_size)}")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise InputError(f"{where}.batch_size", f"must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class PredictSettings:
    """How a trained run predicts a case (nnU-Net's ``nnUNetPredictor`` options)."""

    checkpoint: str = "checkpoint_final.pth"
    mirroring: bool = False          # nnU-Net's test-time mirroring (8 passes per tile in 3D)
    tile_step_size: float = 0.5      # sliding-window overlap, nnU-Net's default
    tile_batch: int = 4              # tiles per network call (CPU: a batch of one is slow); 1 = nnU-Net's loop

    def __post_init__(self):
        if not 0 < float(self.tile_step_size) <= 1:
            raise InputError("nnunet.predict.tile_step_size", f"must be in (0, 1], got {self.tile_step_size}")
        if int(self.tile_batch) < 1:
            raise InputError("nnunet.predict.tile_batch", f"must be >= 1, got {self.tile_batch}")
        if self.checkpoint not in ("checkpoint_final.pth", "checkpoint_best.pth"):
            raise InputError("nnunet.predict.checkpoint",
                             f"must be checkpoint_final.pth or checkpoint_best.pth, got {self.checkpoint!r}")


@dataclass(frozen=True)
class TrainSettings:
    """One training run: schedule and seed (nnU-Net itself has no seed option)."""

    epochs: int = 10
    iterations_per_epoch: int = 25
    val_iterations_per_epoch: int = 2
    initial_lr: float = 1e-2
    save_every: int = 50              # epochs between checkpoint_latest.pth (resume after a kill)
    oversample_foreground: float = 0.33   # share of a batch forced to hold a nodule (nnU-Net's 0.33)

    def __post_init__(self):
        for name in ("epochs", "iterations_per_epoch", "save_every"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"nnunet.{name}", f"must be >= 1, got {getattr(self, name)}")
        if not float(self.initial_lr) > 0:
            raise InputError("nnunet.initial_lr", f"must be > 0, got {self.initial_lr}")
        if not 0 <= float(self.oversample_foreground) <= 1:
            raise InputError("nnunet.oversample_foreground", f"must be in [0, 1], got {self.oversample_foreground}")
        if int(self.val_iterations_per_epoch) < 1:
            # nnU-Net's epoch end averages the validation batches; zero batches crash it
            raise InputError("nnunet.val_iterations_per_epoch", f"must be >= 1, got {self.val_iterations_per_epoch}")


@dataclass(frozen=True)
class NnunetSettings:
    """Everything the nnU-Net stage needs, from config section ``nnunet``."""

    datasets: Mapping[str, int]
    configuration: str
    plans_name: str
    runs: int
    seed: int
    train: TrainSettings
    plan: PlanSettings
    predict: PredictSettings
    empty_dice: float = 1.0
    link: str = "symlink"
    augmentation_workers: int = 0

    @classmethod
    def from_config(cls, values: Mapping[str, Any], where: str = "nnunet") -> "NnunetSettings":
        """Build from the config's ``nnunet`` mapping; unknown/missing keys name the key."""
        values = dict(values)
        plan = section(PlanSettings, values.pop("plan", {}) or {}, f"{where}.plan")
        predict = section(PredictSettings, values.pop("predict", {}) or {}, f"{where}.predict")
        train_keys = {"epochs", "iterations_per_epoch", "val_iterations_per_epoch", "initial_lr", "save_every",
                      "oversample_foreground"}
        train = section(TrainSettings, {k: values.pop(k) for k in list(values) if k in train_keys}, where)
        flat = section(_Flat, values, where)
        datasets = dict(flat.datasets)
        unknown = sorted(set(datasets) - set(ARMS))
        if unknown:
            raise InputError(f"{where}.datasets", f"unknown arm(s) {unknown}; known: {list(ARMS)}")
        ids = list(datasets.values())
        if any(not (isinstance(i, int) and 1 <= i <= 999) for i in ids) or len(set(ids)) != len(ids):
            raise InputError(f"{where}.datasets", f"ids must be distinct integers in 1..999, got {datasets}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", flat.plans_name):
            raise InputError(f"{where}.plans_name", f"letters, digits and _ only, got {flat.plans_name!r}")
        if flat.configuration not in ("3d_fullres", "2d", "3d_lowres"):
            raise InputError(f"{where}.configuration",
                             f"must be 3d_fullres, 2d or 3d_lowres, got {flat.configuration!r}")
        if int(flat.runs) < 1:
            raise InputError(f"{where}.runs", f"must be >= 1, got {flat.runs}")
        if flat.link not in ("symlink", "copy"):
            raise InputError(f"{where}.link", f"must be symlink or copy, got {flat.link!r}")
        if int(flat.augmentation_workers) < 0:
            raise InputError(f"{where}.augmentation_workers", f"must be >= 0, got {flat.augmentation_workers}")
        return cls(datasets=datasets, configuration=flat.configuration, plans_name=flat.plans_name,
                   runs=int(flat.runs), seed=int(flat.seed), train=train, plan=plan, predict=predict,
                   empty_dice=float(flat.empty_dice), link=flat.link,
                   augmentation_workers=int(flat.augmentation_workers))

    def dataset_name(self, arm: str) -> str:
        """nnU-Net's folder name of an arm's dataset, e.g. ``Dataset503_RealSynthetic``."""
        if arm not in self.datasets:
            raise InputError("nnunet.datasets", f"no dataset id for arm {arm!r}")
        return dataset_name(self.datasets[arm], arm)

    def run_seed(self, run: int) -> int:
        """Seed of run ``run`` (1-based); the same for every arm, so run k of each arm starts alike."""
        if not 1 <= int(run) <= self.runs:
            raise InputError("nnunet.runs", f"run {run} outside 1..{self.runs}")
        return self.seed + int(run) - 1


@dataclass(frozen=True)
class _Flat:
    datasets: Mapping[str, int]
    configuration: str
    plans_name: str
    runs: int
    seed: int
    empty_dice: float = 1.0
    link: str = "symlink"
    augmentation_workers: int = 0


def dataset_name(dataset_id: int, arm: str) -> str:
    """``DatasetXXX_Name`` with the arm's letters and digits only (nnU-Net's naming rule)."""
    return f"Dataset{int(dataset_id):03d}_{re.sub(r'[^A-Za-z0-9]', '', arm)}"
