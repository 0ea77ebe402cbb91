"""Typed settings of the data layer, built once from the workflow config.

Sizes and spacings are in array order ``(z, y, x)``, as in nnU-Net's plans: the config says
``volume_size: [64, 96, 96]`` and arrays have that shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from .errors import InputError

T = TypeVar("T")


def section(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Build dataclass ``cls`` from a config section, naming unknown or missing keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(where, f"unknown key(s) {unknown}; known: {sorted(names)}")
    missing = sorted(n for n in names if n not in values and _required(cls, n))
    if missing:
        raise InputError(where, f"missing key(s) {missing}")
    converted = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            value = values[f.name]
            converted[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**converted)


def _required(cls, name: str) -> bool:
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


@dataclass(frozen=True)
class DataSettings:
    """Where the source volumes come from (``source``: phantom | lidc | nifti)."""

    source: str
    lidc_root: str
    nifti_images: str
    nifti_masks: str
    max_cases: int
    seed: int


@dataclass(frozen=True)
class PhantomSettings:
    """The built-in phantom: which LIDC scans get synthetic DICOM (not patient data)."""

    n_scans: int
    max_slices: int
    min_nodule_mm: float
    seed: int


@dataclass(frozen=True)
class PreprocessSettings:
    """Consensus mask, lung crop and resampling to a fixed grid."""

    consensus_level: float
    min_nodule_mm: float
    min_readers: int
    lung_threshold_hu: float
    crop_margin_mm: float
    target_spacing: tuple[float, float, float]
    volume_size: tuple[int, int, int]


@dataclass(frozen=True)
class SplitSettings:
    """Patient-level train/validation/test split in the paper's proportions."""

    proportions: tuple[int, int, int]
    seed: int
