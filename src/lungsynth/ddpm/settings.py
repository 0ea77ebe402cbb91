"""Typed settings of the DDPM: network, noise schedule, intensity scaling, training, sampling.

Built once from the workflow config (sections ``ddpm:`` and ``sampling:``) with
:func:`lungsynth.settings.section`, so an unknown or misspelt key is an :class:`InputError`
naming it. Sizes are in array order ``(z, y, x)``. Every field has a default so the CLI and the
tests can build settings from a partial dict; the workflow config spells them all out.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InputError
from ..settings import section

PREDICTION_TYPES = ("epsilon", "v_prediction")
SAMPLERS = ("ddim", "ddpm")
MODES = ("whole", "windowed")
BLENDS = ("gaussian", "constant")


def _coerce(obj, where: str) -> None:
    """Check and convert the fields of a frozen dataclass after YAML parsing.

    PyYAML reads ``2e-4`` (no dot) as a string and users write ``-1024`` for a float; both are
    accepted here, anything else is an InputError naming ``where.<field>``.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        kind = hints[f.name]
        key = f"{where}.{f.name}"
        if dataclasses.is_dataclass(kind):
            continue
        if kind is bool:
            if not isinstance(value, bool):
                raise InputError(key, f"expected true or false, got {value!r}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                raise InputError(key, f"expected an integer, got {value!r}")
            value = int(value)
        elif kind is float:
            try:
                if isinstance(value, bool):
                    raise ValueError
                value = float(value)
            except (TypeError, ValueError):
                raise InputError(key, f"expected a number, got {value!r}") from None
        elif kind is str:
            if not isinstance(value, str):
                raise InputError(key, f"expected a string, got {value!r}")
        elif typing.get_origin(kind) is tuple:
            args = typing.get_args(kind)
            if not isinstance(value, (list, tuple)) or any(
                isinstance(v, bool) or not isinstance(v, int) for v in value
            ):
                raise InputError(key, f"expected a list of integers, got {value!r}")
            if Ellipsis not in args and len(value) != len(args):
                raise InputError(key, f"expected {len(args)} integers (z, y, x), got {list(value)}")
            value = tuple(int(v) for v in value)
        object.__setattr__(obj, f.name, value)


def _positive(where: str, **values) -> None:
    for name, value in values.items():
        if isinstance(value, tuple):
            if not value or min(value) < 1:
                raise InputError(f"{where}.{name}", f"expected positive sizes, got {list(value)}")
        elif value <= 0:
            raise InputError(f"{where}.{name}", f"must be > 0, got {value}")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(key, f"expected one of {list(allowed)}, got {value!r}")


@dataclass(frozen=True)
class NetworkSettings:
    """MONAI DiffusionModelUNet size: width per level (levels = len(channels)), blocks, groups."""

    channels: tuple[int, ...] = (32, 64, 64)
    num_res_blocks: int = 1
    norm_num_groups: int = 16
    resblock_updown: bool = False

    def __post_init__(self):
        where = "ddpm.network"
        _coerce(self, where)
        _positive(where, channels=self.channels, num_res_blocks=self.num_res_blocks,
                  norm_num_groups=self.norm_num_groups)
        bad = [c for c in self.channels if c % self.norm_num_groups]
        if bad:
            raise InputError(f"{where}.norm_num_groups",
                             f"every width in channels {list(self.channels)} must divide by "
                             f"norm_num_groups={self.norm_num_groups} (GroupNorm)")

    @property
    def levels(self) -> int:
        return len(self.channels)


@dataclass(frozen=True)
class ScheduleSettings:
    """The forward process: T steps, beta schedule (MONAI NoiseSchedules name) and target."""

    num_train_timesteps: int = 1000
    schedule: str = "linear_beta"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    clip_sample: bool = True

    def __post_init__(self):
        where = "ddpm.schedule"
        _coerce(self, where)
        _positive(where, num_train_timesteps=self.num_train_timesteps, beta_start=self.beta_start,
                  beta_end=self.beta_end)
        _choice(f"{where}.prediction_type", self.prediction_type, PREDICTION_TYPES)
        _choice(f"{where}.schedule", self.schedule, ("linear_beta", "scaled_linear_beta"))
        if not self.beta_start < self.beta_end < 1:
            raise InputError(f"{where}.beta_end", f"need beta_start < beta_end < 1, got "
                                                  f"{self.beta_start} .. {self.beta_end}")


@dataclass(frozen=True)
class IntensitySettings:
    """HU window mapped linearly to [-1, 1]; values outside are clipped. With ``mean_image`` the
    diffusion models the difference to the voxel-wise mean of the training crops (in [-2, 2]),
    which sampling adds back: the layout of an average chest no longer has to be learnt from the
    coordinate channels, which GroupNorm makes slow to learn (see docs/benchmark.md)."""

    hu_min: float = -1024.0
    hu_max: float = 1024.0
    mean_image: bool = False

    def __post_init__(self):
        _coerce(self, "ddpm.intensity")
        if not self.hu_min < self.hu_max:
            raise InputError("ddpm.intensity.hu_max", f"must exceed hu_min, got {self.hu_min} .. {self.hu_max}")


@dataclass(frozen=True)
class TrainingSettings:
    """The training loop: random patches, AdamW, EMA, bf16 autocast, clipping, checkpoints."""

    patch_size: tuple[int, int, int] = (32, 32, 32)
    steps: int = 300
    batch_size: int = 2
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    ema_decay: float = 0.999
    grad_clip_norm: float = 1.0
    bf16: bool = True
    nodule_patch_fraction: float = 0.5
    checkpoint_every: int = 100
    seed: int = 0

    def __post_init__(self):
        where = "ddpm.training"
        _coerce(self, where)
        _positive(where, patch_size=self.patch_size, steps=self.steps, batch_size=self.batch_size,
                  learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every)
        if self.warmup_steps < 0:
            raise InputError(f"{where}.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        if self.weight_decay < 0:
            raise InputError(f"{where}.weight_decay", f"must be >= 0, got {self.weight_decay}")
        if self.grad_clip_norm < 0:
            raise InputError(f"{where}.grad_clip_norm", f"must be >= 0 (0 = off), got {self.grad_clip_norm}")
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"{where}.ema_decay", f"must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.nodule_patch_fraction <= 1:
            raise InputError(f"{where}.nodule_patch_fraction",
                             f"must be in [0, 1], got {self.nodule_patch_fraction}")


def build_section(cls: type, values: Mapping[str, Any] | None, where: str):
    """``section()`` for a dataclass some of whose fields are sections themselves (recursively)."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise InputError(where, f"expected a mapping, got {values!r}")
    values = dict(values)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]) and f.name in values:
            values[f.name] = build_section(hints[f.name], values[f.name], f"{where}.{f.name}")
    return section(cls, values, where)


@dataclass(frozen=True)
class DdpmSettings:
    """The ``ddpm:`` config section: everything training needs (and records in the checkpoint)."""

    network: NetworkSettings = field(default_factory=NetworkSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    intensity: IntensitySettings = field(default_factory=IntensitySettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None, where: str = "ddpm") -> "DdpmSettings":
        """Build from the ``ddpm:`` mapping (subsections network/schedule/intensity/training)."""
        return build_section(cls, values, where)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class QualitySettings:
    """Per-volume quality metrics: lung by HU threshold, shell width around the nodule, and how many
    Real nnU-Net runs score the mask fidelity (the workflow's ``fidelity.csv``)."""

    shell_mm: float = 3.0
    lung_threshold_hu: float = -400.0
    max_lung_values: int = 200_000
    fidelity_runs: int = 1

    def __post_init__(self):
        where = "sampling.quality"
        _coerce(self, where)
        _positive(where, shell_mm=self.shell_mm, max_lung_values=self.max_lung_values,
                  fidelity_runs=self.fidelity_runs)


@dataclass(frozen=True)
class SamplingSettings:
    """The ``sampling:`` config section: sampler, steps, whole-volume or windowed, seeds."""

    sampler: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    mode: str = "whole"
    window_overlap: float = 0.5
    window_blend: str = "gaussian"
    window_batch: int = 1
    bf16: bool = True
    seed: int = 0
    per_mask: int = 1
    quality: QualitySettings = field(default_factory=QualitySettings)

    def __post_init__(self):
        where = "sampling"
        _coerce(self, where)
        _choice(f"{where}.sampler", self.sampler, SAMPLERS)
        _choice(f"{where}.mode", self.mode, MODES)
        _choice(f"{where}.window_blend", self.window_blend, BLENDS)
        _positive(where, steps=self.steps, window_batch=self.window_batch, per_mask=self.per_mask)
        if not 0 <= self.window_overlap < 1:
            raise InputError(f"{where}.window_overlap", f"must be in [0, 1), got {self.window_overlap}")
        if self.eta < 0:
            raise InputError(f"{where}.eta", f"must be >= 0, got {self.eta}")

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None, where: str = "sampling") -> "SamplingSettings":
        """Build from the ``sampling:`` mapping (with an optional ``quality:`` subsection)."""
        return build_section(cls, values, where)

    def replace(self, **changes) -> "SamplingSettings":
        """A copy with some fields changed (None values are ignored), e.g. from CLI flags."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
