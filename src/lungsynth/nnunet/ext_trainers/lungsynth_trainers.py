"""Re-export of the project's trainer for nnU-Net's lookup by name (``nnUNet_extTrainer``).

nnU-Net 2.8 imports every module of an ``nnUNet_extTrainer`` folder as a top-level module and
takes the class of the requested name. This module only re-exports, so the class nnU-Net
finds is the very class the project trains with.
"""

from lungsynth.nnunet.trainer import nnUNetTrainer_lungsynth  # noqa: F401
