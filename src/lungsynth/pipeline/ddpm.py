"""DDPM steps: train on the real training crops, sample one volume per mask (in batches), measure and show them."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..case_ids import case_id_of
from ..errors import InputError
from ..io import atomic_path, read_json, read_nifti, save_figure, write_csv, write_json

log = logging.getLogger(__name__)


def read_training_set(image_paths, mask_paths):
    """Images (HU) and masks of the training cases, all on one grid: ``(hu, nodules, spacing_zyx)``
    with ``hu`` int16 and ``nodules`` uint8, both ``(N, D, H, W)``.

    Each case is read and written into arrays allocated once, so the peak is the data itself plus
    one case (at config/lidc.yaml's 553 crops of 128 x 256 x 256: 14 GB, not the ~50 GB of float
    copies; docs/benchmark/paper_scale.csv).
    """
    from ..ddpm.train import as_training_hu, as_training_mask

    image_paths, mask_paths = list(image_paths), list(mask_paths)
    if not image_paths:
        raise InputError("split", "no training case to train the DDPM on")
    if len(image_paths) != len(mask_paths):
        raise InputError("split", f"{len(image_paths)} training images but {len(mask_paths)} masks")
    hu = nodules = reference = None
    for index, (image_path, mask_path) in enumerate(zip(image_paths, mask_paths)):
        image, geometry = read_nifti(image_path)
        mask, mask_geometry = read_nifti(mask_path)
        if mask.shape != image.shape or not mask_geometry.matches(geometry):
            raise InputError(mask_path, f"mask grid differs from its image {image_path}")
        if reference is None:
            reference = (image.shape, geometry.spacing, image_path)
            hu = np.empty((len(image_paths), *image.shape), np.int16)
            nodules = np.empty((len(image_paths), *image.shape), np.uint8)
        elif image.shape != reference[0] or not np.allclose(geometry.spacing, reference[1]):
            raise InputError(image_path, f"grid {image.shape} at {geometry.spacing} mm differs from "
                                         f"{reference[2]} ({reference[0]} at {reference[1]} mm)")
        hu[index] = as_training_hu(image)
        nodules[index] = as_training_mask(mask)
        del image, mask
    return hu, nodules, tuple(float(s) for s in reference[1][::-1])


def train(image_paths, mask_paths, settings: dict, model_path, loss_csv, loss_png, threads: int,
          checkpoint_every: int, layout: str = "auto", device: str = "auto") -> None:
    """results/ddpm/model.pt (+ loss table and curve); resumes from results/ddpm/model.pt.state."""
    from ..ddpm.settings import DdpmSettings
    from ..ddpm.train import train_ddpm

    hu, nodules, spacing = read_training_set(image_paths, mask_paths)
    train_ddpm(hu, nodules, DdpmSettings.from_config(settings), model_path, loss_csv=loss_csv, loss_png=loss_png,
               spacing=spacing, names=[case_id_of(p) for p in image_paths], threads=threads,
               checkpoint_every=checkpoint_every, layout=layout, device=device)


def sample(model_path, mask_path, out_image, out_mask, case: str, settings: dict, threads: int,
           window_batch: int = 1, device: str = "auto") -> None:
    """results/samplers/<sampler>/<case>.nii.gz and its conditioning mask beside it (a ready training pair)."""
    sample_batch(model_path, {case: mask_path}, {case: (out_image, out_mask)}, settings, threads,
                 window_batch=window_batch, device=device)


def sample_batch(model_path, masks: dict, outputs: dict, settings: dict, threads: int, window_batch: int = 1,
                 device: str = "auto", keep_written: bool = False) -> None:
    """One synthetic volume per ``case -> mask path``, written to ``outputs[case] = (image, mask copy)``,
    with one model load for the whole batch (a GPU job pays torch, CUDA and the checkpoint once).

    A volume depends only on the model, the settings and its case id (its seed), never on the batch
    it is sampled in. ``keep_written``: outputs that exist already are kept, not sampled again (a
    killed job's scratch folder, written with the same model and settings: :func:`sample_into_folder`).
    """
    from ..ddpm.checkpoint import load_model
    from ..ddpm.sample import sample_nifti
    from ..ddpm.settings import SamplingSettings
    from ..runtime import describe_device, resolve_device, set_threads

    set_threads(threads)
    sampling = SamplingSettings.from_config(settings)
    torch_device = resolve_device(device)
    loaded = load_model(model_path, torch_device)
    log.info("sampling %d volume(s) on %s; %s %s steps, %s mode", len(masks), describe_device(torch_device, sampling.bf16),
             sampling.sampler, "all" if sampling.sampler == "ddpm" else sampling.steps, sampling.mode)
    for number, (case, mask_path) in enumerate(sorted(masks.items()), start=1):
        out_image, out_mask = outputs[case]
        if keep_written and Path(out_image).exists() and Path(out_mask).exists():
            log.info("%s: kept from an earlier try of this batch", case)
            continue
        started = time.perf_counter()
        sample_nifti(loaded, mask_path, out_image, case_id=case, settings=sampling, device=torch_device,
                     threads=threads, window_batch=window_batch)
        with atomic_path(out_mask) as tmp:
            shutil.copyfile(mask_path, tmp)
        log.info("%s: sampled in %.1f s (%d of %d)", case, time.perf_counter() - started, number, len(masks))


def sample_into_folder(model_path, mask_paths, cases, out_dir, settings: dict, threads: int,
                       window_batch: int = 1, device: str = "auto") -> None:
    """results/synthetic/<set>/batches/<k>: ``<case>.nii.gz`` and ``masks/<case>.nii.gz`` per case.

    Written in ``<out_dir>.partial`` (kept across a killed job, with the settings it was sampled
    with) and renamed into place when every volume is there.
    """
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    stamp = {"model": _file_stamp(model_path), "settings": settings}
    stamp_file = partial / "sampled_with.json"
    if partial.exists() and (not stamp_file.exists() or read_json(stamp_file) != json.loads(json.dumps(stamp))):
        shutil.rmtree(partial)
    (partial / "masks").mkdir(parents=True, exist_ok=True)
    write_json(stamp_file, stamp)
    masks = dict(zip(cases, mask_paths, strict=True))
    outputs = {case: (partial / f"{case}.nii.gz", partial / "masks" / f"{case}.nii.gz") for case in cases}
    sample_batch(model_path, masks, outputs, settings, threads, window_batch=window_batch, device=device,
                 keep_written=True)
    stamp_file.unlink()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)


def _file_stamp(path) -> dict:
    stat = Path(path).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def link_sampled(batch_dir, case: str, out_image, out_mask) -> None:
    """results/synthetic/<set>/<case>.nii.gz and masks/<case>.nii.gz from the case's batch folder:
    hard links where the file system allows (no second copy of the volume), else copies."""
    batch_dir = Path(batch_dir)
    log.info("%s: from %s (its log: the batch's)", case, batch_dir)
    for source, target in ((batch_dir / f"{case}.nii.gz", out_image), (batch_dir / "masks" / f"{case}.nii.gz", out_mask)):
        if not source.exists():
            raise InputError(source, f"the batch {batch_dir} holds no volume of {case}")
        with atomic_path(target) as tmp:
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)


def quality(synthetic_paths, mask_paths, real_paths, out_csv, settings: dict) -> None:
    """results/synthetic/<set>/quality.csv: nodule contrast and lung HU distance to the real crops."""
    from ..ddpm.quality import lung_hu_sample, quality_table, spacing_zyx, volume_quality
    from ..ddpm.settings import QualitySettings

    q = QualitySettings.from_config(settings)
    real_paths = list(real_paths)
    real_lung = lung_hu_sample((read_nifti(p)[0] for p in real_paths), q, count=len(real_paths))
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
