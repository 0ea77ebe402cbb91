"""DDPM steps: train on the real training crops, sample one volume per mask, measure and show them."""

from __future__ import annotations

import logging
import shutil

import numpy as np

from ..cases import case_id_of
from ..errors import InputError
from ..io import atomic_path, read_nifti, save_figure, write_csv

log = logging.getLogger(__name__)


def read_training_set(image_paths, mask_paths):
    """Images (HU) and masks of the training cases, all on one grid; ``(images, masks, spacing_zyx)``."""
    images, masks, reference = [], [], None
    for image_path, mask_path in zip(image_paths, mask_paths):
        image, geometry = read_nifti(image_path)
        mask, mask_geometry = read_nifti(mask_path)
        if mask.shape != image.shape or not mask_geometry.matches(geometry):
            raise InputError(mask_path, f"mask grid differs from its image {image_path}")
        if reference is None:
            reference = (image.shape, geometry.spacing, image_path)
        elif image.shape != reference[0] or not np.allclose(geometry.spacing, reference[1]):
            raise InputError(image_path, f"grid {image.shape} at {geometry.spacing} mm differs from "
                                         f"{reference[2]} ({reference[0]} at {reference[1]} mm)")
        images.append(image)
        masks.append(mask)
    if not images:
        raise InputError("split", "no training case to train the DDPM on")
    return images, masks, tuple(float(s) for s in reference[1][::-1])


def train(image_paths, mask_paths, settings: dict, model_path, loss_csv, loss_png, threads: int,
          checkpoint_every: int, layout: str = "auto") -> None:
    """results/ddpm/model.pt (+ loss table and curve); resumes from results/ddpm/model.pt.state."""
    from ..ddpm.settings import DdpmSettings
    from ..ddpm.train import train_ddpm

    images, masks, spacing = read_training_set(image_paths, mask_paths)
    train_ddpm(images, masks, DdpmSettings.from_config(settings), model_path, loss_csv=loss_csv, loss_png=loss_png,
               spacing=spacing, names=[case_id_of(p) for p in image_paths], threads=threads,
               checkpoint_every=checkpoint_every, layout=layout)


def sample(model_path, mask_path, out_image, out_mask, case: str, settings: dict, threads: int,
           window_batch: int = 1) -> None:
    """results/synthetic/<set>/<case>.nii.gz and its conditioning mask beside it (a ready training pair)."""
    from ..ddpm.sample import sample_nifti
    from ..ddpm.settings import SamplingSettings

    sample_nifti(model_path, mask_path, out_image, case_id=case, settings=SamplingSettings.from_config(settings),
                 threads=threads, window_batch=window_batch)
    with atomic_path(out_mask) as tmp:
        shutil.copyfile(mask_path, tmp)


def quality(synthetic_paths, mask_paths, real_paths, out_csv, settings: dict) -> None:
    """results/synthetic/<set>/quality.csv: nodule contrast and lung HU distance to the real crops."""
    from ..ddpm.quality import lung_hu_sample, quality_table, spacing_zyx, volume_quality
    from ..ddpm.settings import QualitySettings

    q = QualitySettings.from_config(settings)
    real_lung = lung_hu_sample((read_nifti(p)[0] for p in real_paths), q)
    rows = []
    for image_path, mask_path in zip(synthetic_paths, mask_paths):
        hu, geometry = read_nifti(image_path)
        mask, _ = read_nifti(mask_path)
        rows.append(volume_quality(case_id_of(image_path), hu, mask, spacing_zyx(geometry), real_lung, q))
    table = quality_table(rows)
    log.info("quality summary: %s", table.iloc[-1].to_dict())
    write_csv(out_csv, table)


def figure2(synthetic_paths, mask_paths, real_paths, out_png, title: str, n_cases: int) -> None:
    """results/synthetic/<set>/figure2.png: masks over generated axial slices, beside the real image
    (the first ``n_cases`` volumes given)."""
    from ..ddpm.figures import figure2 as draw

    shown = list(zip(synthetic_paths, mask_paths, real_paths))[:n_cases]
    cases = [{"case": case_id_of(s), "synthetic": read_nifti(s)[0], "mask": read_nifti(m)[0],
              "real": read_nifti(r)[0]} for s, m, r in shown]
    save_figure(out_png, draw(cases, title=title))
