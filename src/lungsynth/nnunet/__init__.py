"""The utility experiment's nnU-Net side: datasets per arm, a smaller plan, seeded runs, prediction, Dice.

Modules (import what you need; ``trainer`` and ``run`` import nnunetv2, which takes seconds):

- :mod:`.settings`: the ``nnunet`` config section as frozen dataclasses.
- :mod:`.environment`: nnU-Net's environment variables, threads, seeds, device, per call.
- :mod:`.dataset`: an arm's raw dataset (imagesTr/labelsTr, dataset.json, splits_final.json).
- :mod:`.plans`: nnU-Net's fingerprint/plan/preprocess, then the smaller plan.
- :mod:`.trainer`: ``nnUNetTrainer_lungsynth`` (schedule from the config, seeded).
- :mod:`.run`: one seeded training run into its own folder; in-process prediction.
- :mod:`.evaluate`: per-case Dice by the paper's formula (4); nodule properties of a case.
"""
