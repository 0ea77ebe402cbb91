"""An arm's nnU-Net v2 raw dataset: images, labels, dataset.json and the one fixed split.

Layout (nnU-Net's own)::

    DatasetXXX_Name/
        imagesTr/<case>_0000.nii.gz     # CT in HU, channel "CT" (nnU-Net's CT normalization)
        labelsTr/<case>.nii.gz          # 0 background, 1 nodule
        dataset.json
        splits_final.json               # ONE fold: train = the arm's cases, val = real validation

The real validation cases sit in every arm's ``imagesTr`` because nnU-Net validates on cases of
its own dataset; the split keeps them out of training. The planner copies
``splits_final.json`` into the preprocessed folder, where the trainer reads it.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Mapping

import SimpleITK as sitk

from ..arms import Arm
from ..case_ids import DATASET_PREFIX
from ..errors import InputError
from ..io import write_json

FILE_ENDING = ".nii.gz"
CHANNELS = {"0": "CT"}
LABELS = {"background": 0, "nodule": 1}

Pairs = Mapping[str, tuple]  # case id -> (image path, mask path)


def write_raw_dataset(dataset_dir, train: Pairs, validation: Pairs, link: str = "symlink") -> dict:
    """Write the raw dataset of one arm into ``dataset_dir`` (named ``DatasetXXX_Name``).

    ``train`` and ``validation`` map case ids to ``(image, mask)`` NIfTI paths; images and masks
    must share their grid. ``link``: ``symlink`` (relative links, nothing copied) or ``copy``.
    The folder appears whole or not at all (built beside it, then renamed). Returns the
    split written, ``{"train": [...], "val": [...]}``.
    """
    dataset_dir = Path(dataset_dir)
    if not re.fullmatch(r"Dataset\d{3}_[A-Za-z0-9_]+", dataset_dir.name):
        raise InputError(dataset_dir, "folder name must be DatasetXXX_Name (nnU-Net's rule)")
    if link not in ("symlink", "copy"):
        raise InputError("nnunet.link", f"must be symlink or copy, got {link!r}")
    overlap = sorted(set(train) & set(validation))
    if overlap:
        raise InputError(dataset_dir, f"case(s) both in training and validation: {overlap[:5]}")
    if not train:
        raise InputError(dataset_dir, "no training cases")
    if not validation:
        # nnU-Net's trainer draws validation batches every epoch
        raise InputError(dataset_dir, "no validation cases")
    cases = {**dict(train), **dict(validation)}
    for case, (image, mask) in cases.items():
        _check_case(case, Path(image), Path(mask))

    tmp = dataset_dir.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{dataset_dir.name}")
    try:
        (tmp / "imagesTr").mkdir(parents=True)
        (tmp / "labelsTr").mkdir()
        for case, (image, mask) in sorted(cases.items()):
            _place(Path(image), tmp / "imagesTr" / f"{case}_0000{FILE_ENDING}", dataset_dir, link)
            _place(Path(mask), tmp / "labelsTr" / f"{case}{FILE_ENDING}", dataset_dir, link)
        write_json(tmp / "dataset.json", dataset_json(len(cases), dataset_dir.name))
        split = {"train": sorted(train), "val": sorted(validation)}
        write_json(tmp / "splits_final.json", [split])
        if dataset_dir.exists():
            shutil.rmtree(dataset_dir)
        os.replace(tmp, dataset_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return split


def arm_training_cases(arm: Arm, sets: Mapping[str, Pairs]) -> dict:
    """The training cases of an arm, as in the paper: ``case id -> (image, mask)``.

    ``sets`` maps each of the arm's ``training_sets`` (``real``, ``general``, ``targeted``; see
    :mod:`lungsynth.arms`) to its pairs. Synthetic ids get their set's prefix
    (:data:`lungsynth.case_ids.DATASET_PREFIX`).
    """
    missing = [name for name in arm.training_sets if name not in sets]
    if missing:
        raise InputError(f"arm {arm.label}", f"needs the {' and '.join(missing)} case set(s)")
    extra = sorted(set(sets) - set(arm.training_sets))
    if extra:
        raise InputError(f"arm {arm.label}", f"does not train on the {' and '.join(extra)} case set(s)")
    cases = {DATASET_PREFIX[name] + case: pair for name in arm.training_sets for case, pair in sets[name].items()}
    if not cases:
        raise InputError(f"arm {arm.label}", "no training cases")
    return cases


def dataset_json(num_training: int, name: str = "") -> dict:
    """nnU-Net v2's dataset.json for one CT channel and a binary nodule label."""
    return {
        "name": name,
        "description": "lungsynth utility experiment (lung nodule segmentation)",
        "channel_names": CHANNELS,
        "labels": LABELS,
        "numTraining": int(num_training),
        "file_ending": FILE_ENDING,
    }


def _check_case(case: str, image: Path, mask: Path) -> None:
    """Fail early, naming the file, on what nnU-Net's integrity check would reject later."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", case) or case.endswith(FILE_ENDING):
        raise InputError(image, f"case id {case!r} is not a plain file stem")
    headers = []
    for path in (image, mask):
        if not path.name.endswith(FILE_ENDING):
            raise InputError(path, f"expected a {FILE_ENDING} file")
        if not path.exists():
            raise InputError(path, "file not found")
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise InputError(path, "not a readable NIfTI image") from None
        headers.append((reader.GetSize(), reader.GetSpacing()))
    (size_i, spacing_i), (size_m, spacing_m) = headers
    if size_i != size_m:
        raise InputError(mask, f"mask size {size_m} differs from image size {size_i} (x, y, z) of {image}")
    if any(abs(a - b) > 1e-3 for a, b in zip(spacing_i, spacing_m)):
        raise InputError(mask, f"mask spacing {spacing_m} differs from image spacing {spacing_i} of {image}")


def _place(source: Path, target: Path, final_dir: Path, link: str) -> None:
    if link == "copy":
        shutil.copyfile(source, target)
        return
    # relative to where the link will finally live, so the tree can move as a whole
    os.symlink(os.path.relpath(source.resolve(), _resolve_missing(final_dir / target.parent.name)), target)


def _resolve_missing(path: Path) -> Path:
    """``Path.resolve`` for a folder that may not exist yet (resolve its existing parent)."""
    parent, tail = path, []
    while not parent.exists():
        tail.append(parent.name)
        parent = parent.parent
    return parent.resolve().joinpath(*reversed(tail))
