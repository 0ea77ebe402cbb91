"""lungsynth: patch-wise 3D DDPM for lung CT and its nnU-Net utility test."""
__version__ = "0.1.0"
