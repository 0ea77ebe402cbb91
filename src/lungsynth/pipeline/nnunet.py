"""The utility experiment's nnU-Net steps: a dataset per arm, its plan, seeded runs, predictions
with their Dice, and the worst validation cases that condition the targeted set.

Arms are :mod:`lungsynth.arms` (folder token ``RealSynthetic``, paper label ``Real+Synthetic``).
Every Dice table a run writes is a record: its rows carry the arm's label, the run and the
subset, so nothing downstream parses paths.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from ..arms import arm as find_arm
from ..case_ids import case_id_of
from ..errors import InputError
from ..io import write_csv

log = logging.getLogger(__name__)

SUBSETS = ("validation", "test")


def case_pairs(images, masks) -> dict:
    """``case -> (image, mask)`` from two parallel path lists (case = the image's file name)."""
    pairs = {case_id_of(i): (str(i), str(m)) for i, m in zip(images, masks)}
    for case, (image, mask) in pairs.items():
        if case_id_of(mask) != case:
            raise InputError(mask, f"mask does not belong to image {image}")
    return pairs


def raw_dataset(arm: str, training: Mapping[str, tuple], validation: tuple, out_root, dataset_name: str,
                link: str) -> None:
    """results/nnunet/<arm>/raw/DatasetXXX_<arm>: the arm's training cases + the real validation cases.

    ``training`` maps each of the arm's training sets (``real``, ``general``, ``targeted``) to
    ``(images, masks)``; ``validation`` is ``(images, masks)``.
    """
    from ..nnunet.dataset import arm_training_cases, write_raw_dataset

    cases = arm_training_cases(find_arm(arm), {name: case_pairs(*pair) for name, pair in training.items()})
    split = write_raw_dataset(Path(out_root) / dataset_name, cases, case_pairs(*validation), link=link)
    log.info("%s: %d training and %d validation cases", dataset_name, len(split["train"]), len(split["val"]))


def only_dataset(root) -> Path:
    """The one ``DatasetXXX_Name`` folder in an arm's raw or preprocessed root."""
    found = sorted(Path(root).glob("Dataset[0-9][0-9][0-9]_*"))
    if len(found) != 1:
        raise InputError(root, f"expected one nnU-Net dataset folder inside, found {len(found)}")
    return found[0]


def plan(raw_root, out_root, plan_settings: dict, threads: int) -> None:
    """results/nnunet/<arm>/preprocessed: nnU-Net's fingerprint (integrity-checked), plans, preprocessing."""
    from ..nnunet.plans import plan_and_preprocess
    from ..nnunet.settings import PlanSettings

    Path(out_root).mkdir(parents=True, exist_ok=True)
    plans_file = plan_and_preprocess(only_dataset(raw_root), out_root, PlanSettings.from_config(plan_settings),
                                     threads)
    log.info("plans: %s", plans_file)


def train(arm: str, run: int, preprocessed_root, out_model, plan_settings: dict, train_settings: dict, seed: int,
          threads: int, checkpoint_every: int, device: str = "auto") -> None:
    """results/nnunet/<arm>/run<k>/model: one seeded training run in its own nnU-Net results root."""
    from ..nnunet.run import train_run
    from ..nnunet.settings import PlanSettings, TrainSettings

    label = find_arm(arm).label
    checkpoint = train_run(only_dataset(preprocessed_root), out_model, PlanSettings.from_config(plan_settings),
                           TrainSettings.from_config(train_settings), seed=seed, threads=threads,
                           checkpoint_every=checkpoint_every, record={"arm": label, "run": int(run)},
                           device=device)
    log.info("%s run %d (seed %d): %s", label, run, seed, checkpoint)


def predict(model_dir, images: dict, masks: dict, out_dir, out_dice: dict, predict_settings: dict, threads: int,
            tile_batch: int, lung_threshold_hu: float = -400.0, device: str = "auto") -> None:
    """results/nnunet/<arm>/run<k>/{predictions,<subset>_dice.csv}: every validation and test case.

    ``images``/``masks``/``out_dice`` are keyed by subset (validation, test). Each Dice table
    carries the run's record (arm, run; from the run's ``run.json``) and the subset.
    """
    from ..nnunet.evaluate import dice_table
    from ..nnunet.run import predict_cases, run_record
    from ..nnunet.settings import PredictSettings
    from ..stats import with_record

    settings = PredictSettings.from_config(predict_settings)
    record = run_record(model_dir)
    for subset in SUBSETS:
        cases = case_pairs(images[subset], masks[subset])
        predicted = predict_cases(model_dir, {c: image for c, (image, _) in cases.items()}, Path(out_dir) / subset,
                                  settings, threads=threads, tile_batch=tile_batch,
                                  lung_threshold_hu=lung_threshold_hu, device=device)
        table = dice_table({c: (mask, predicted[c]) for c, (_, mask) in cases.items()}, settings.empty_dice)
        log.info("%s run %s, %s: mean Dice %.4f over %d cases", record["arm"], record["run"], subset,
                 table["dice"].mean(), len(table))
        write_csv(out_dice[subset], with_record(table, record["arm"], record["run"], subset))


def worst_validation(real_dice_csvs, masks, images, out_csv) -> None:
    """results/targeted/worst_validation.csv: validation cases below the mean Dice of the Real runs, and why."""
    from ..nnunet.evaluate import describe_cases
    from ..stats import read_dice_records, worst_validation_cases

    worst = worst_validation_cases(read_dice_records(real_dice_csvs))
    reasons = describe_cases(list(worst["case"]), {case_id_of(p): p for p in masks},
                             images={case_id_of(p): p for p in images})
    table = worst.merge(reasons, on="case", how="left")
    log.info("%d worst validation case(s) below the mean Dice %.4f", len(table),
             table["threshold"].iloc[0] if len(table) else float("nan"))
    write_csv(out_csv, table)

