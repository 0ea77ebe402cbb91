"""The sampler comparison: DDPM (all T steps) against DDIM at a few step counts, on the same masks.

Every sampler generates the same validation masks from the same seeds; each volume is scored by
the quality metrics of ``quality.csv`` and by the mask fidelity of ``fidelity.csv`` (the Real
runs' Dice against the conditioning mask). The summary gives each sampler's means and their
relative difference to the DDPM reference.
"""

from __future__ import annotations

import logging
import re

import pandas as pd

from ..errors import InputError
from ..io import read_nifti, save_figure, write_csv
from ..case_ids import case_id_of

log = logging.getLogger(__name__)

SAMPLER_NAME = re.compile(r"^(?:ddpm|(?P<kind>ddim|euler)(?P<steps>[1-9][0-9]*))$")
COMPARED = ["mean_hu_nodule", "contrast_hu", "mean_hu_lung", "wasserstein_lung_hu", "fidelity_dice"]
REFERENCE_SAMPLER = "ddpm"


def sampler_settings(name: str, sampling: dict) -> dict:
    """The ``sampling:`` section with the sampler and step count that ``name`` spells:
    ``ddpm`` (all T steps), ``ddim<steps>``, e.g. ``ddim25``, or ``euler<steps>`` (rectified flow)."""
    match = SAMPLER_NAME.match(name)
    if not match:
        raise InputError("sampler_comparison.samplers",
                         f"{name!r}: expected ddpm, ddim<steps> or euler<steps>, e.g. ddim25")
    if match["steps"]:
        return {**sampling, "sampler": match["kind"], "steps": int(match["steps"])}
    return {**sampling, "sampler": "ddpm"}


def compare(volumes: dict, masks, real_images, reference_images, model_dirs, out_csv, out_png, quality: dict,
            predict: dict, threads: int, tile_batch: int = 4, lung_threshold_hu: float = -400.0,
            device: str = "auto") -> pd.DataFrame:
    """results/samplers/comparison.{csv,png}.

    ``volumes``: sampler name -> generated volumes; ``masks``: their conditioning masks and
    ``real_images`` the real crops of the same cases (file names = case ids);
    ``reference_images``: the real training crops (the lung HU reference of ``quality.csv``);
    ``model_dirs``: the Real runs that score mask fidelity; ``quality`` and ``predict``: the
    config's ``quality`` and ``nnunet.predict`` sections.
    """
    from ..ddpm.figures import samples_grid
    from ..ddpm.quality import lung_hu_sample, spacing_zyx, volume_quality
    from ..ddpm.settings import QualitySettings
    from .fidelity import fidelity_dice

    q = QualitySettings.from_config(quality)
    real_lung = lung_hu_sample((read_nifti(p)[0] for p in reference_images), q)
    mask_by_case = {case_id_of(m): m for m in masks}
    rows, shown = [], {}
    for name, paths in volumes.items():
        pairs = {case_id_of(p): (str(p), str(mask_by_case[case_id_of(p)])) for p in paths}
        fidelity = fidelity_dice(model_dirs, pairs, predict, threads, tile_batch, lung_threshold_hu, device).groupby("case")["dice"].mean()
        for case, (image, mask_path) in pairs.items():
            hu, geometry = read_nifti(image)
            mask, _ = read_nifti(mask_path)
            rows.append({"sampler": name, **volume_quality(case, hu, mask, spacing_zyx(geometry), real_lung, q),
                         "fidelity_dice": float(fidelity[case])})
            shown.setdefault(name, []).append((case, hu, mask))
        log.info("%s: %d volumes scored", name, len(pairs))
    per_volume = pd.DataFrame(rows)
    table = pd.concat([per_volume, summary_rows(per_volume)], ignore_index=True)
    write_csv(out_csv, table)
    shown["real"] = [(case_id_of(r), read_nifti(r)[0], read_nifti(m)[0]) for r, m in zip(real_images, masks)]
    save_figure(out_png, samples_grid(shown, title="the same masks and seeds by each sampler; real crops last "
                                                   "(PHANTOM DATA, NOT PATIENT DATA)"))
    return table


def summary_rows(per_volume: pd.DataFrame) -> pd.DataFrame:
    """Per sampler: ``case = mean`` (means over the volumes) and ``case = relative_to_ddpm``
    ((mean - DDPM mean) / |DDPM mean|; empty without a DDPM row)."""
    means = per_volume.groupby("sampler", sort=False)[COMPARED].mean()
    rows = [{"sampler": name, "case": "mean", **means.loc[name].to_dict()} for name in means.index]
    if REFERENCE_SAMPLER in means.index:
        reference = means.loc[REFERENCE_SAMPLER]
        for name in means.index:
            relative = (means.loc[name] - reference) / reference.abs()
            rows.append({"sampler": name, "case": f"relative_to_{REFERENCE_SAMPLER}", **relative.to_dict()})
    return pd.DataFrame(rows)
