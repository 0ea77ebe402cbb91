"""One run of one arm: train with a seed into the run's own folder, then predict cases in-process.

A run's ``model_dir`` is the ``nnUNet_results`` root of that run alone, so five runs of one
arm never share a folder (nnU-Net would write them all to the same ``fold_0``). Inside it
nnU-Net's usual layout holds: ``DatasetXXX_Name/<trainer>__<plans>__<configuration>/fold_0/
checkpoint_final.pth``, ``plans.json``, ``dataset.json``; nnU-Net's own ``nnUNetv2_predict``
can use it (with ``nnUNet_extTrainer`` set, see :mod:`lungsynth.nnunet.environment`).

Training runs in ``<model_dir>.partial`` and is renamed into place when it is done; if a run
is killed, the next call continues from nnU-Net's ``checkpoint_latest.pth`` there (written
every ``save_every`` epochs). A resumed run is not bit-identical to an uninterrupted one
(the random generators' states are not in nnU-Net's checkpoint).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import platform
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from ..errors import InputError
from ..io import atomic_path, read_json, read_nifti, write_json, write_nifti
from ..resources import augmentation_workers
from ..runtime import bf16_is_used, describe_device, resolve_device, set_threads
from .environment import nnunet_environment
from .lung_restriction import restrict_to_lung
from .settings import PlanSettings, PredictSettings, TrainSettings
from .trainer import TRAINER_NAME, cpu_bf16_forward, nnUNetTrainer_lungsynth

log = logging.getLogger(__name__)

FOLD = 0


def train_run(preprocessed_dataset_dir, model_dir, plan: PlanSettings, train: TrainSettings, seed: int,
              threads: int = 1, device: str | None = None, checkpoint_every: int = 50,
              record: Mapping | None = None) -> Path:
    """Train one run (fold 0 of the fixed split) with ``seed``; return its ``checkpoint_final.pth``.

    ``preprocessed_dataset_dir`` is ``<nnUNet_preprocessed>/DatasetXXX_Name`` from
    :func:`plan_and_preprocess`. ``threads`` sets torch's threads; augmentation runs in the
    main process (``nnUNet_n_proc_DA=0``) unless ``train.augmentation_workers`` > 0 (then
    runs are no longer bit-reproducible). ``checkpoint_every``: epochs between nnU-Net's
    ``checkpoint_latest.pth``. Also writes ``run.json`` (``record``, e.g. arm and run number,
    with the seed, settings and timing) and ``training_log.csv`` (loss per epoch) beside the
    nnU-Net folder.
    """
    preprocessed_dataset_dir = Path(preprocessed_dataset_dir).resolve()
    model_dir = Path(model_dir)
    plans_file = preprocessed_dataset_dir / f"{plan.plans_name}.json"
    for needed in (plans_file, *(preprocessed_dataset_dir / n for n in ("dataset.json", "splits_final.json"))):
        if not needed.exists():
            raise InputError(needed, "file not found (run plan_and_preprocess for this arm first)")
    set_threads(threads)
    device = resolve_device(device)
    workers = augmentation_workers(train.augmentation_workers, threads)
    if workers < train.augmentation_workers:
        log.warning("nnunet.train.augmentation_workers=%d do not fit the job's %d thread(s): using %d "
                    "(nnU-Net would size its pools from the node's cores)", train.augmentation_workers,
                    threads, workers)
    log.info("nnU-Net training on %s, %d augmentation worker(s)", describe_device(device, train.bf16), workers)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # as nnunetv2.run.run_training does (calling the trainer skips it)
    partial = model_dir.with_name(model_dir.name + ".partial")
    started = time.time()
    run = {**dict(record or {}), "seed": int(seed), "train": dataclasses.asdict(train),
           "plan": dataclasses.asdict(plan)}
    with nnunet_environment(preprocessed=preprocessed_dataset_dir.parent, results=partial,
                            augmentation_workers=workers, compile_default=device.type == "cuda"):
        latest = _fold_dir(partial, preprocessed_dataset_dir.name, plan) / "checkpoint_latest.pth"
        resume = latest.exists() and _same_run(partial, run)
        if not resume and partial.exists():
            shutil.rmtree(partial)
        trainer = new_trainer(preprocessed_dataset_dir, plan, train, seed, device, checkpoint_every, resume)
        _write_run_json(partial, run, threads, device, started=started, finished=None)
        if resume:
            log.info("continuing %s from %s", model_dir, latest)
            trainer.load_checkpoint(str(latest))
        trainer.run_training()
        with atomic_path(partial / "training_log.csv") as tmp:
            tmp.write_text(trainer.training_log_csv())
    _write_run_json(partial, run, threads, device, started=started, finished=time.time())
    if model_dir.exists():
        shutil.rmtree(model_dir)
    os.replace(partial, model_dir)
    return _fold_dir(model_dir, preprocessed_dataset_dir.name, plan) / "checkpoint_final.pth"


def new_trainer(preprocessed_dataset_dir: Path, plan: PlanSettings, train: TrainSettings, seed: int,
                device: torch.device, save_every: int = 50, resume: bool = False) -> nnUNetTrainer_lungsynth:
    """The project's trainer for fold 0 of a preprocessed dataset, configured; call it inside
    :func:`nnunet_environment` (nnU-Net reads its output folder from ``nnUNet_results``)."""
    plans = json.loads((preprocessed_dataset_dir / f"{plan.plans_name}.json").read_text())
    plans["continue_training"] = resume
    dataset_json = json.loads((preprocessed_dataset_dir / "dataset.json").read_text())
    trainer = nnUNetTrainer_lungsynth(plans=plans, configuration=plan.configuration, fold=FOLD,
                                      dataset_json=dataset_json, device=device)
    trainer.configure(train, seed, save_every)
    return trainer


def _fold_dir(root: Path, dataset_name: str, plan: PlanSettings) -> Path:
    return root / dataset_name / f"{TRAINER_NAME}__{plan.plans_name}__{plan.configuration}" / f"fold_{FOLD}"


def _same_run(partial: Path, run: dict) -> bool:
    """Whether the run left in ``partial`` is this run (same record, seed, schedule and plan)."""
    try:
        previous = read_json(partial / "run.json")
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return all(previous.get(key) == value for key, value in json.loads(json.dumps(run)).items())


def run_record(model_dir) -> dict:
    """What a finished run's ``run.json`` records (arm, run, seed, settings, timing)."""
    path = Path(model_dir) / "run.json"
    if not path.exists():
        raise InputError(path, "file not found (not a finished nnU-Net run?)")
    return read_json(path)


def _write_run_json(folder: Path, run: dict, threads, device, started, finished) -> None:
    write_json(folder / "run.json", {
        **run, "threads": int(threads), "device": str(device), "torch": torch.__version__, "host": platform.node(),
        "seconds": None if finished is None else round(finished - started, 1),
    })


# ----------------------------------------------------------------------------- prediction


def load_predictor(model_dir, predict: PredictSettings, threads: int = 1, device: str | None = None,
                   tile_batch: int = 4):
    """An ``nnUNetPredictor`` for the run in ``model_dir``, built from its checkpoint directly.

    Builds the network from the run's own ``plans.json`` with the project's trainer class
    (no lookup of the trainer by name), loads the weights, and hands them to nnU-Net's
    ``manual_initialization``, the path nnU-Net's own final validation takes.
    """
    set_threads(threads)
    device = resolve_device(device)
    model_folder = trained_model_folder(model_dir)
    checkpoint_file = model_folder / f"fold_{FOLD}" / predict.checkpoint
    if not checkpoint_file.exists():
        raise InputError(checkpoint_file, "file not found (training did not finish?)")
    try:
        checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a damaged file
        raise InputError(checkpoint_file, f"not a readable checkpoint ({type(err).__name__}: {err})") from None
    plans_manager = PlansManager(json.loads((model_folder / "plans.json").read_text()))
    dataset_json = json.loads((model_folder / "dataset.json").read_text())
    configuration_manager = plans_manager.get_configuration(checkpoint["init_args"]["configuration"])
    network = nnUNetTrainer_lungsynth.build_network_architecture(
        plans_manager, configuration_manager,
        determine_num_input_channels(plans_manager, configuration_manager, dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads,
        enable_deep_supervision=False)
    network.load_state_dict(checkpoint["network_weights"])
    if device.type == "cpu" and bf16_is_used(device, predict.bf16):
        cpu_bf16_forward(network)
    log.info("nnU-Net prediction on %s", describe_device(device, predict.bf16 and device.type == "cpu"))
    predictor = BatchedTilePredictor(tile_step_size=predict.tile_step_size, use_gaussian=True,
                                     use_mirroring=predict.mirroring, perform_everything_on_device=True,
                                     device=device, verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.tile_batch = int(tile_batch)
    predictor.manual_initialization(network, plans_manager, configuration_manager, [checkpoint["network_weights"]],
                                    dataset_json, checkpoint["trainer_name"],
                                    checkpoint.get("inference_allowed_mirroring_axes"))
    return predictor


def trained_model_folder(model_dir) -> Path:
    """The one ``DatasetXXX_Name/<trainer>__<plans>__<configuration>`` folder inside a run."""
    model_dir = Path(model_dir)
    found = sorted(p.parent for p in model_dir.glob(f"Dataset*/*/fold_{FOLD}"))
    if len(found) != 1:
        raise InputError(model_dir, f"expected one trained nnU-Net model folder inside, found {len(found)}")
    return found[0]


def predict_cases(model_dir, images: Mapping[str, object], out_dir, predict: PredictSettings, threads: int = 1,
                  device: str | None = None, tile_batch: int = 4,
                  lung_threshold_hu: float = -400.0) -> dict[str, Path]:
    """Predict every ``case -> image path`` into ``<out_dir>/<case>.nii.gz`` (uint8, image's affine).

    In-process: nnU-Net's preprocessing, sliding-window prediction and resampling back to the
    image's grid, with no worker processes; then, if ``predict.lung_margin_mm`` is set, the
    prediction is cut to the image's lung mask (at ``lung_threshold_hu``, the data layer's
    ``preprocess.lung_threshold_hu``) widened by that margin
    (:mod:`lungsynth.nnunet.lung_restriction`). Returns ``case -> prediction path``.
    """
    out_dir = Path(out_dir)
    written = {}

    def export(case, image, logits, properties, started) -> None:
        hu, geometry = read_nifti(image)
        segmentation = logits_to_labels(predictor, logits, properties)
        if predict.lung_margin_mm is not None:
            segmentation = restrict_to_lung(segmentation, hu, geometry.spacing[::-1], predict.lung_margin_mm,
                                            lung_threshold_hu, name=str(image))
        written[case] = out_dir / f"{case}.nii.gz"
        write_nifti(written[case], segmentation, geometry, dtype=np.uint8)
        log.info("predicted %s in %.1f s", case, time.time() - started)

    # as nnU-Net's predict_from_files: the next case is preprocessed and the last one exported
    # in threads while the network predicts (at most one of each waits, so memory stays bounded)
    cases = sorted(images.items())
    with nnunet_environment(), ThreadPoolExecutor(max_workers=2) as pool:
        predictor = load_predictor(model_dir, predict, threads=threads, device=device, tile_batch=tile_batch)
        upcoming = pool.submit(preprocess_image, predictor, cases[0][1]) if cases else None
        exporting = None
        for index, (case, image) in enumerate(cases):
            started = time.time()
            data, properties = upcoming.result()
            if index + 1 < len(cases):
                upcoming = pool.submit(preprocess_image, predictor, cases[index + 1][1])
            logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).cpu()
            if exporting is not None:
                exporting.result()
            exporting = pool.submit(export, case, image, logits, properties, started)
        if exporting is not None:
            exporting.result()
    return written


def preprocess_image(predictor, image):
    """nnU-Net's preprocessing of one CT image file: ``(data, properties)``."""
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case([str(image)], None, predictor.plans_manager,
                                                predictor.configuration_manager, predictor.dataset_json)
    return data, properties


def logits_to_labels(predictor, logits, properties) -> np.ndarray:
    """Label map ``(z, y, x)`` on the image's own grid from the network's logits."""
    return np.asarray(convert_predicted_logits_to_segmentation_with_correct_shape(
        logits, predictor.plans_manager, predictor.configuration_manager, predictor.label_manager, properties,
        return_probabilities=False))


def predict_image(predictor, image) -> np.ndarray:
    """Label map ``(z, y, x)`` of one CT image file, on the image's own grid."""
    data, properties = preprocess_image(predictor, image)
    logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).cpu()
    return logits_to_labels(predictor, logits, properties)


class BatchedTilePredictor(nnUNetPredictor):
    """nnU-Net's sliding-window predictor that sends ``tile_batch`` tiles through the net at once.

    On CPU a Conv3d batch of one falls back to a slow kernel: a 32^3 tile of the small plan
    took 0.23 s alone and 0.055 s per tile in a batch of two (design.md found the same). The
    tiles, Gaussian weights, test-time flips and half-precision accumulation are nnU-Net's
    (``_internal_predict_sliding_window_return_logits``); only the batching differs.
    ``tile_batch=1`` runs nnU-Net's own loop unchanged.
    """

    tile_batch = 4

    def _internal_predict_sliding_window_return_logits(self, data, slicers, do_on_device: bool = True):
        if self.tile_batch <= 1:
            return super()._internal_predict_sliding_window_return_logits(data, slicers, do_on_device)
        results_device = self.device if do_on_device else torch.device("cpu")
        with torch.inference_mode():
            data = data.to(results_device)
            predicted_logits = torch.zeros((self.label_manager.num_segmentation_heads, *data.shape[1:]),
                                           dtype=torch.half, device=results_device)
            n_predictions = torch.zeros(data.shape[1:], dtype=torch.half, device=results_device)
            gaussian = compute_gaussian(tuple(self.configuration_manager.patch_size), sigma_scale=1. / 8,
                                        value_scaling_factor=10, device=results_device) if self.use_gaussian else 1
            for start in range(0, len(slicers), self.tile_batch):
                chunk = slicers[start:start + self.tile_batch]
                tiles = torch.cat([data[sl][None] for sl in chunk]).to(self.device)
                predictions = self._mirror_and_predict_batch(tiles).to(results_device)
                for sl, prediction in zip(chunk, predictions):
                    if self.use_gaussian:
                        prediction *= gaussian
                    predicted_logits[sl] += prediction
                    n_predictions[sl[1:]] += gaussian
            torch.div(predicted_logits, n_predictions, out=predicted_logits)
            if torch.any(torch.isinf(predicted_logits)):
                raise RuntimeError("inf in predicted logits (nnU-Net's half-precision accumulation overflowed)")
            return predicted_logits

    def _mirror_and_predict_batch(self, x):
        """nnU-Net's test-time mirroring for a batch ``(B, C, *patch)``; a batch of one runs as two."""
        single = x.shape[0] == 1
        if single:
            x = torch.cat([x, x])  # the fast kernel; the copy's output is dropped
        prediction = self.network(x).float()
        mirror_axes = self.allowed_mirroring_axes if self.use_mirroring else None
        if mirror_axes is not None:
            axes = [m + 2 for m in mirror_axes]
            combinations = [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]
            for flip in combinations:
                prediction += torch.flip(self.network(torch.flip(x, flip)).float(), flip)
            prediction /= (len(combinations) + 1)
        return prediction[:1] if single else prediction
