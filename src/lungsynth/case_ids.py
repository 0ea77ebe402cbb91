"""Case ids: of a file, of a synthetic volume, of a case inside an nnU-Net dataset.

A synthetic volume is named after the real case whose mask conditioned it: the general set's
volume of case ``X`` is ``X``; the targeted set holds ``per_mask`` variants ``X_v1, X_v2, ...``
of each worst validation case ``X``. Inside an arm's nnU-Net dataset the synthetic cases get a
prefix per set, because a targeted mask is a validation mask whose real image sits in the same
dataset.
"""

from __future__ import annotations

import re
from pathlib import Path

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
SYNTHETIC_SETS = ("general", "targeted")
#: case-id prefix inside an nnU-Net dataset, per training set of an arm (lungsynth.arms)
DATASET_PREFIX = {"real": "", "general": "syn-", "targeted": "tgt-"}

_VARIANT = re.compile(r"^(?P<source>.+)_v(?P<k>[1-9][0-9]*)$")


def case_id_of(path) -> str:
    """A case id from a file name: ``masks/LIDC-IDRI-0078.nii.gz`` -> ``LIDC-IDRI-0078``."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def variant_id(case: str, k: int) -> str:
    """Variant ``k`` (1-based) of the targeted set's volumes for ``case``: ``<case>_v<k>``."""
    return f"{case}_v{int(k)}"


def synthetic_ids(name: str, cases, per_mask: int = 1) -> list[str]:
    """The synthetic case ids of set ``name``: ``general`` = the cases themselves,
    ``targeted`` = ``per_mask`` variants of each case."""
    if name == "general":
        return list(cases)
    return [variant_id(case, k) for case in cases for k in range(1, int(per_mask) + 1)]


def source_case(name: str, synthetic_case: str) -> str:
    """The real case whose mask conditions a synthetic case of set ``name``: ``X`` for the general
    set's ``X``, ``X`` for the targeted set's ``X_v2``."""
    if name == "general":
        return synthetic_case
    match = _VARIANT.match(synthetic_case)
    if not match:
        raise ValueError(f"{synthetic_case!r} is not a targeted variant id <case>_v<k>")
    return match["source"]
