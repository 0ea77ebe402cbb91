"""Typed settings of the DDPM: config sections ``ddpm:`` (network, schedule, intensity, training),
``sampling:`` and ``quality:``.

Keys, types, allowed values and defaults live in the schema (``lungsynth/config.schema.yaml``);
these classes are built from it by :func:`lungsynth.config.build` (``Cls.from_config(mapping)``)
and check only what involves more than one key. Sizes are in array order ``(z, y, x)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Section
from ..errors import InputError


@dataclass(frozen=True)
class NetworkSettings(Section):
    """MONAI DiffusionModelUNet size: width per level (levels = len(channels)), blocks, groups."""

    PATH = "ddpm.network"

    channels: tuple[int, ...]
    num_res_blocks: int
    norm_num_groups: int
    resblock_updown: bool
    coordinate_frequencies: int

    def __post_init__(self):
        bad = [c for c in self.channels if c % self.norm_num_groups]
        if bad:
            raise InputError(f"{self.PATH}.norm_num_groups",
                             f"every width in channels {list(self.channels)} must divide by "
                             f"norm_num_groups={self.norm_num_groups} (GroupNorm)")

    @property
    def levels(self) -> int:
        return len(self.channels)


@dataclass(frozen=True)
class ScheduleSettings(Section):
    """The forward process: T steps, beta schedule (MONAI NoiseSchedules name) and target."""

    PATH = "ddpm.schedule"

    num_train_timesteps: int
    schedule: str
    beta_start: float
    beta_end: float
    prediction_type: str
    clip_sample: bool

    @property
    def flow(self) -> bool:
        """Rectified flow (MONAI's RFlowScheduler) instead of a DDPM noise schedule."""
        return self.schedule == "rectified_flow"

    def __post_init__(self):
        if not self.beta_start < self.beta_end:
            raise InputError(f"{self.PATH}.beta_end", f"need beta_start < beta_end, got "
                                                      f"{self.beta_start} .. {self.beta_end}")


@dataclass(frozen=True)
class IntensitySettings(Section):
    """HU window mapped linearly to [-1, 1]; values outside are clipped. With ``mean_image`` the
    diffusion models the difference to the voxel-wise mean of the training crops (in [-2, 2]),
    which sampling adds back: the layout of an average chest no longer has to be learnt from the
    coordinate channels, which GroupNorm makes slow to learn (docs/findings.md, row 5)."""

    PATH = "ddpm.intensity"

    hu_min: float
    hu_max: float
    mean_image: bool
    unit_std: bool

    def __post_init__(self):
        if not self.hu_min < self.hu_max:
            raise InputError(f"{self.PATH}.hu_max", f"must exceed hu_min, got {self.hu_min} .. {self.hu_max}")


@dataclass(frozen=True)
class TrainingSettings(Section):
    """The training loop: random patches, AdamW, EMA, bf16 autocast, clipping."""

    PATH = "ddpm.training"

    patch_size: tuple[int, int, int]
    batch_size: int
    steps: int
    learning_rate: float
    weight_decay: float
    warmup_steps: int
    lr_schedule: str
    lr_power: float
    timestep_sampling: str
    logit_normal_location: float
    logit_normal_uniform_share: float
    loss_weighting: str
    min_snr_gamma: float
    ema_decay: float
    grad_clip_norm: float
    bf16: bool
    nodule_patch_fraction: float
    patch_draw: str
    seed: int


@dataclass(frozen=True)
class DdpmSettings(Section):
    """The ``ddpm:`` config section: everything training needs (and records in the checkpoint)."""

    PATH = "ddpm"

    network: NetworkSettings
    schedule: ScheduleSettings
    intensity: IntensitySettings
    training: TrainingSettings

    def __post_init__(self):
        if self.schedule.schedule == "rectified_flow" and self.training.loss_weighting != "none":
            raise InputError(f"{self.PATH}.training.loss_weighting",
                             f"{self.training.loss_weighting} weights the DDPM schedules' SNR; "
                             "ddpm.schedule.schedule: rectified_flow trains with none")


@dataclass(frozen=True)
class SamplingSettings(Section):
    """The ``sampling:`` config section: what one generated volume depends on."""

    PATH = "sampling"

    sampler: str
    steps: int
    eta: float
    mode: str
    window_overlap: float
    window_blend: str
    bf16: bool
    seed: int


@dataclass(frozen=True)
class QualitySettings(Section):
    """Per-volume quality metrics (lung by HU threshold, shell width around the nodule) and how many
    Real nnU-Net runs score the mask fidelity (the workflow's ``fidelity.csv``)."""

    PATH = "quality"

    shell_mm: float
    lung_threshold_hu: float
    max_lung_values: int
    fidelity_runs: int
