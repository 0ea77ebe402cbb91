"""The three arms of the utility experiment: one definition of their names and training data.

An arm travels through the workflow as its ``token`` (folder-safe: ``RealSynthetic``), is
labelled as in the paper's Table 1 (``Real+Synthetic``) and trains on the case sets named in
``training_sets`` (``real`` = the real training crops, ``general`` / ``targeted`` = the two
synthetic sets). Every arm validates on the real validation cases and is tested on the real
test cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Arm:
    token: str
    label: str
    training_sets: tuple[str, ...]

    def dataset_name(self, dataset_id: int) -> str:
        """nnU-Net's ``DatasetXXX_Name`` of this arm's dataset, e.g. ``Dataset503_RealSynthetic``."""
        return f"Dataset{int(dataset_id):03d}_{re.sub(r'[^A-Za-z0-9]', '', self.token)}"


#: in the order of the paper's Table 1
ARMS = (
    Arm("Real", "Real", ("real",)),
    Arm("Synthetic", "Synthetic", ("general",)),
    Arm("RealSynthetic", "Real+Synthetic", ("real", "targeted")),
)
REFERENCE = ARMS[0]
TOKENS = tuple(a.token for a in ARMS)
LABELS = tuple(a.label for a in ARMS)


def arm(name: str) -> Arm:
    """The arm named by its token or its label."""
    for candidate in ARMS:
        if name in (candidate.token, candidate.label):
            return candidate
    raise InputError("arm", f"unknown arm {name!r}; known: {list(TOKENS)}")
