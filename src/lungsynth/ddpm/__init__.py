"""The patch-wise conditional 3D DDPM (seed paper section 2.3, after PatchDDM).

One module per concern: ``settings`` (typed config), ``intensity`` (HU <-> [-1, 1]),
``coordinates`` (whole-volume grid and random patches), ``network`` (MONAI DiffusionModelUNet),
``schedule`` (MONAI DDPM/DDIM schedulers), ``train`` (training loop), ``checkpoint`` (atomic
save/load and resume), ``sample`` (whole-volume and windowed sampling), ``quality`` (per-volume
metrics), ``figures`` (loss curve, Figure-2-like montage).
"""
