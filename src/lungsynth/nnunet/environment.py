"""Point nnU-Net at this job's folders and threads, for the duration of one call.

nnU-Net v2 reads ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` from the
environment. In 2.8 ``nnunetv2.paths`` wraps them in lazy objects that read ``os.environ`` at
every use, so setting the variables around a call is enough, even after nnunetv2 was
imported; every run can have its own results folder (nnU-Net itself has no seed option and
would write two runs of one trainer and fold into the same folder). ``nnUNet_n_proc_DA`` is
also read at use; ``nnUNet_def_n_proc`` only at import, so functions here pass process counts
explicitly instead.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_n_proc_DA", "nnUNet_compile",
         "nnUNet_extTrainer")


@contextlib.contextmanager
def nnunet_environment(raw=None, preprocessed=None, results=None, augmentation_workers: int = 0,
                       ext_trainer: bool = True, stdout_to_stderr: bool = True,
                       compile_default: bool = False) -> Iterator[None]:
    """Set nnU-Net's variables (None unsets one) and restore the previous values after.

    ``augmentation_workers=0`` runs augmentation in the main process: fastest on a 2-core
    machine and the only setting in which seeded runs are bit-identical (design.md).
    ``ext_trainer`` adds this package's trainer folder to ``nnUNet_extTrainer`` so that nnU-Net's
    own lookup by name (``nnUNetv2_predict -tr ...``) finds the project's trainer.
    ``stdout_to_stderr``: nnU-Net prints its progress; send it to stderr, which the workflow's
    scripts send to the rule's log, so parallel jobs do not interleave on the console.
    ``compile_default``: nnU-Net's ``torch.compile`` unless the user set ``nnUNet_compile``: on
    for CUDA (nnU-Net's own default), off on a CPU (compiling costs more than it saves there).
    """
    saved = {k: os.environ.get(k) for k in _VARS}
    with contextlib.ExitStack() as stack:
        if stdout_to_stderr:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        try:
            for key, value in (("nnUNet_raw", raw), ("nnUNet_preprocessed", preprocessed),
                               ("nnUNet_results", results)):
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = str(Path(value).resolve())
            os.environ["nnUNet_n_proc_DA"] = str(int(augmentation_workers))
            os.environ.setdefault("nnUNet_compile", "true" if compile_default else "false")
            if ext_trainer:
                os.environ["nnUNet_extTrainer"] = os.pathsep.join(
                    p for p in (trainer_search_path(), saved["nnUNet_extTrainer"]) if p)
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def trainer_search_path() -> str:
    """The folder to put in ``nnUNet_extTrainer`` so nnU-Net finds ``nnUNetTrainer_lungsynth``.

    It holds one tiny module that re-exports the trainer, so nnU-Net's folder scan (which
    imports every module of the folder as a top-level module) imports nothing else.
    """
    return str(Path(__file__).resolve().parent / "ext_trainers")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (nnU-Net draws from all three)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
