"""Plan and preprocess an arm's dataset with nnU-Net's own API, then write the smaller plan.

nnU-Net's default 3d_fullres plan costs about 4 s per iteration on 2 CPU cores (design.md).
The project keeps nnU-Net's fingerprint, spacing, normalization and resampling, and replaces
only the network width, depth, patch and batch size through nnU-Net's plans-file mechanism:
a new plans file (identifier ``plans_name``) whose configuration nnU-Net's trainer, predictor
and CLI read like any other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

from ..errors import InputError
from ..io import read_json, write_json
from .environment import nnunet_environment
from .settings import PlanSettings

log = logging.getLogger(__name__)


def plan_and_preprocess(raw_dataset_dir, preprocessed_root, plan: PlanSettings, threads: int = 1) -> Path:
    """Fingerprint (with nnU-Net's dataset integrity check), plan, write the small plan, preprocess.

    ``raw_dataset_dir`` is ``<nnUNet_raw>/DatasetXXX_Name`` (see :func:`write_raw_dataset`);
    the result is ``<preprocessed_root>/DatasetXXX_Name`` holding ``<plans_name>.json``, the
    preprocessed cases of ``plan.configuration``, ``gt_segmentations`` and the fixed
    ``splits_final.json``. Built in a temporary root and renamed into place, so it appears
    whole. Returns the path of the plans file.
    """
    raw_dataset_dir = Path(raw_dataset_dir).resolve()
    preprocessed_root = Path(preprocessed_root)
    name = raw_dataset_dir.name
    dataset_id = _dataset_id(raw_dataset_dir)
    splits_file = raw_dataset_dir / "splits_final.json"
    if not splits_file.exists():
        raise InputError(splits_file, "file not found (write the raw dataset with write_raw_dataset)")
    threads = max(1, int(threads))

    tmp_root = preprocessed_root / f".tmp-{uuid.uuid4().hex[:8]}"
    try:
        # nnUNet_n_proc_DA=0 would crash the planner (torch.set_num_threads(0) in its VRAM estimate)
        with nnunet_environment(raw=raw_dataset_dir.parent, preprocessed=tmp_root, augmentation_workers=threads), \
                local_pools(threads):
            from nnunetv2.experiment_planning.plan_and_preprocess_api import (
                extract_fingerprint_dataset, plan_experiment_dataset, preprocess_dataset)

            try:
                extract_fingerprint_dataset(dataset_id, num_processes=threads, check_dataset_integrity=True,
                                            clean=True, verbose=False, show_progress_bar=False)
            except (AssertionError, RuntimeError, FileNotFoundError) as err:
                raise InputError(raw_dataset_dir, f"nnU-Net's dataset integrity check failed: {err}") from None
            plan_experiment_dataset(dataset_id)
            default = read_json(tmp_root / name / "nnUNetPlans.json")
            small = small_plans(default, plan)
            write_json(tmp_root / name / f"{plan.plans_name}.json", small)
            preprocess_dataset(dataset_id, plan.plans_name, configurations=[plan.configuration],
                               num_processes=[threads], verbose=False, show_progress_bar=False)
        # the split is ours, not nnU-Net's 5-fold default (the planner copies it; make sure)
        shutil.copyfile(splits_file, tmp_root / name / "splits_final.json")
        final = preprocessed_root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp_root / name, final)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return final / f"{plan.plans_name}.json"


#: nnU-Net modules whose per-case work runs in a ``spawn`` pool during planning/preprocessing
_POOLED_MODULES = (
    "nnunetv2.experiment_planning.verify_dataset_integrity",
    "nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor",
    "nnunetv2.preprocessing.preprocessors.default_preprocessor",
)


@contextlib.contextmanager
def local_pools(threads: int):
    """Run nnU-Net's planning/preprocessing pools without ``spawn``.

    nnU-Net starts ``spawn`` pools: every worker re-imports torch and nnunetv2 (about 8 s
    each, three pools per dataset), and re-runs the caller's main module, which a Snakemake
    script (no ``__main__`` guard) cannot survive. Inside this context the three nnU-Net
    modules above get, for ``threads == 1``, pools that call the same per-case functions
    in-process, one after another; for more threads, ``fork`` pools. nnU-Net's own per-case
    code (and result) is unchanged.
    """
    import importlib
    import multiprocessing

    modules = [importlib.import_module(name) for name in _POOLED_MODULES]
    saved = [m.multiprocessing for m in modules]
    context = SimpleNamespace(Pool=_SerialPool) if threads == 1 else multiprocessing.get_context("fork")
    shim = SimpleNamespace(get_context=lambda method=None: context)
    try:
        for m in modules:
            m.multiprocessing = shim
        yield
    finally:
        for m, original in zip(modules, saved):
            m.multiprocessing = original


class _SerialPool:
    """The part of ``multiprocessing.Pool`` nnU-Net's planning uses, run in-process."""

    def __init__(self, processes=None):
        self._pool = []  # nnU-Net checks that its workers are alive: all([]) is True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def starmap(self, func, iterable):
        return [func(*args) for args in iterable]

    def starmap_async(self, func, iterable):
        return _Done(self.starmap(func, iterable))


class _Done:
    def __init__(self, value):
        self._value = value

    def ready(self):
        return True

    def get(self, timeout=None):
        return self._value


def small_plans(plans: dict, plan: PlanSettings) -> dict:
    """nnU-Net plans with one configuration resized: stages, widths, patch and batch size.

    ``plan.patch_size`` is ``(z, y, x)``; nnU-Net stores patches in its transposed axis order
    (``transpose_forward``), and a 2d configuration uses the last two. Pooling and kernel sizes
    come from nnU-Net's own topology rule (``get_pool_and_conv_props``), capped at
    ``len(plan.features) - 1`` poolings per axis. A ``None`` setting keeps nnU-Net's value;
    a new patch without features gets nnU-Net's own depth and widths for that patch.
    """
    from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props

    plans = deepcopy(plans)
    configuration, plans_name = plan.configuration, plan.plans_name
    if configuration not in plans["configurations"]:
        raise InputError("nnunet.plan.configuration",
                         f"nnU-Net planned no {configuration!r} for this dataset "
                         f"(planned: {sorted(plans['configurations'])})")
    config = _resolved_configuration(plans, configuration)
    arch = config["architecture"]["arch_kwargs"]
    if plan.patch_size is not None:
        patch = [int(plan.patch_size[i]) for i in plans["transpose_forward"]]
        if configuration == "2d":
            patch = patch[1:]
    else:
        patch = [int(p) for p in config["patch_size"]]
    if plan.features is not None or plan.patch_size is not None:
        max_pool = len(plan.features) - 1 if plan.features is not None else 999999  # nnU-Net's "no cap"
        _, strides, kernels, padded, _ = get_pool_and_conv_props(config["spacing"], patch, 4, max_pool)
        n_stages = len(strides)
        if plan.features is not None and n_stages != len(plan.features):
            raise InputError("nnunet.plan.patch_size",
                             f"patch {patch} allows {n_stages} U-Net stages at spacing "
                             f"{config['spacing']}, but features asks for {len(plan.features)}")
        if [int(p) for p in padded] != patch:
            raise InputError("nnunet.plan.patch_size",
                             f"patch sides must divide by 2^{n_stages - 1} along pooled axes; "
                             f"nnU-Net would use {[int(p) for p in padded]}")
        if plan.features is not None:
            features = [int(f) for f in plan.features]
        else:  # nnU-Net's widths: 32 doubling per stage, capped (ExperimentPlanner)
            cap = 512 if len(patch) == 2 else 320
            features = [min(cap, 32 * 2**i) for i in range(n_stages)]
        arch.update({
            "n_stages": n_stages,
            "features_per_stage": features,
            "kernel_sizes": [list(k) for k in kernels],
            "strides": [list(s) for s in strides],
            "n_conv_per_stage": [2] * n_stages,
            "n_conv_per_stage_decoder": [2] * (n_stages - 1),
        })
    config["patch_size"] = patch
    if plan.batch_size is not None:
        config["batch_size"] = int(plan.batch_size)
    config["data_identifier"] = f"{plans_name}_{configuration}"
    config.pop("next_stage", None)
    config.pop("previous_stage", None)
    plans["plans_name"] = plans_name
    plans["configurations"] = {configuration: config}
    return plans


def _resolved_configuration(plans: dict, configuration: str) -> dict:
    """The configuration with nnU-Net's ``inherits_from`` chain flattened."""
    config = deepcopy(plans["configurations"][configuration])
    parent = config.pop("inherits_from", None)
    if parent is not None:
        base = _resolved_configuration(plans, parent)
        base.update(config)
        config = base
    return config


def _dataset_id(raw_dataset_dir: Path) -> int:
    name = raw_dataset_dir.name
    if not (name.startswith("Dataset") and name[7:10].isdigit() and name[10:11] == "_"):
        raise InputError(raw_dataset_dir, "folder name must be DatasetXXX_Name (nnU-Net's rule)")
    if not (raw_dataset_dir / "dataset.json").exists():
        raise InputError(raw_dataset_dir / "dataset.json", "file not found")
    return int(name[7:10])
