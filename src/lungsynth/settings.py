"""Typed settings of the data layer, the report and the execution, and of the whole workflow.

One frozen dataclass per config section, built from the schema (``lungsynth/config.schema.yaml``)
by :func:`lungsynth.config.build`: ``DataSettings.from_config(config["data"])``. Keys, types,
allowed values and defaults are the schema's; the classes keep only checks across keys.
Sizes and spacings are in array order ``(z, y, x)``, as in nnU-Net's plans: the config says
``volume_size: [64, 96, 96]`` and arrays have that shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Section
from .ddpm.settings import DdpmSettings, QualitySettings, SamplingSettings
from .errors import InputError
from .nnunet.settings import NnunetSettings


@dataclass(frozen=True)
class DataSettings(Section):
    """Where the source volumes come from (``source``: phantom | lidc | nifti)."""

    PATH = "data"

    source: str
    lidc_root: str
    nifti_images: str
    nifti_masks: str
    max_cases: int
    seed: int


@dataclass(frozen=True)
class PhantomSettings(Section):
    """The built-in phantom: which LIDC scans get synthetic DICOM (not patient data)."""

    PATH = "phantom"

    n_scans: int
    max_slices: int
    min_nodule_mm: float
    seed: int
    layout: str
    quirks: tuple[str, ...]


@dataclass(frozen=True)
class PreprocessSettings(Section):
    """Consensus mask, lung crop and resampling to a fixed grid."""

    PATH = "preprocess"

    consensus_level: float
    min_nodule_mm: float
    min_readers: int
    lung_threshold_hu: float
    crop_margin_mm: float
    target_spacing: tuple[float, float, float]
    volume_size: tuple[int, int, int]


@dataclass(frozen=True)
class SplitSettings(Section):
    """Patient-level train/validation/test split in the paper's proportions."""

    PATH = "split"

    proportions: tuple[float, float, float]
    seed: int


@dataclass(frozen=True)
class TargetedSettings(Section):
    """The targeted synthetic set: volumes per worst validation mask, and which Real runs pick them."""

    PATH = "targeted"

    per_mask: int
    selection_runs: int


@dataclass(frozen=True)
class SamplerComparisonSettings(Section):
    """The sampler comparison (``results/samplers/``): how many masks, which samplers."""

    PATH = "sampler_comparison"

    cases: int
    samplers: tuple[str, ...]


@dataclass(frozen=True)
class StatsSettings(Section):
    """The bootstrap beside Table 1."""

    PATH = "stats"

    bootstrap_resamples: int
    seed: int


@dataclass(frozen=True)
class ReportSettings(Section):
    """How many cases each figure shows."""

    PATH = "report"

    montage_cases: int
    figure2_cases: int
    example_cases: int


@dataclass(frozen=True)
class ExecutionSettings(Section):
    """How jobs run, never what they compute: the workflow passes none of these as rule params,
    so changing one reruns nothing (scripts read them from the config)."""

    PATH = "execution"

    device: str
    ddpm_checkpoint_every: int
    nnunet_checkpoint_every: int
    nnunet_tile_batch: int
    sampling_batch: int
    sampling_window_batch: int
    ddpm_memory_format: str


@dataclass(frozen=True)
class WorkflowSettings(Section):
    """The whole config; built once by the workflow to check what spans sections."""

    PATH = ""

    data: DataSettings
    phantom: PhantomSettings
    preprocess: PreprocessSettings
    split: SplitSettings
    ddpm: DdpmSettings
    sampling: SamplingSettings
    targeted: TargetedSettings
    quality: QualitySettings
    sampler_comparison: SamplerComparisonSettings
    nnunet: NnunetSettings
    stats: StatsSettings
    report: ReportSettings
    execution: ExecutionSettings

    def __post_init__(self):
        runs = self.nnunet.runs
        for key, value in (("targeted.selection_runs", self.targeted.selection_runs),
                           ("quality.fidelity_runs", self.quality.fidelity_runs)):
            if value > runs:
                raise InputError(key, f"{value} Real runs asked for, but nnunet.runs is {runs}")
        levels = self.ddpm.network.levels
        factor = 2 ** (levels - 1)
        for key, size in (("preprocess.volume_size", self.preprocess.volume_size),
                          ("ddpm.training.patch_size", self.ddpm.training.patch_size)):
            if any(s % factor for s in size):
                raise InputError(key, f"{list(size)}: every side must divide by {factor} = 2^(levels-1) "
                                      f"for the DDPM network's {levels} levels (ddpm.network.channels)")
        if any(p > v for p, v in zip(self.ddpm.training.patch_size, self.preprocess.volume_size)):
            raise InputError("ddpm.training.patch_size", f"{list(self.ddpm.training.patch_size)} does not fit in "
                                                         f"preprocess.volume_size {list(self.preprocess.volume_size)}")
