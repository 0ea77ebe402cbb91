"""The DDPM's mask fidelity: does a model trained on real crops find the nodule where the mask put it?

Real runs of the utility experiment predict synthetic volumes; their Dice against each volume's
conditioning mask, next to the same runs' Dice on the real test cases, says how findable the
generated nodules are (1 = as findable as real ones).
"""

from __future__ import annotations

import logging
import tempfile

import pandas as pd

from ..io import write_csv
from .nnunet import case_pairs

log = logging.getLogger(__name__)

COLUMNS = ["case", "run", "dice", "real_test_dice", "ratio", "tp", "fp", "fn", "truth_voxels", "predicted_voxels"]


def fidelity_dice(model_dirs, pairs: dict, predict_settings: dict, threads: int, tile_batch: int = 4,
                  lung_threshold_hu: float = -400.0, device: str = "auto") -> pd.DataFrame:
    """Dice of each run's prediction of each synthetic volume against its conditioning mask.

    ``pairs``: ``case -> (synthetic image, conditioning mask)``; ``model_dirs``: nnU-Net runs
    (``results/nnunet/<arm>/run<k>/model``). One row per case and run (column ``run``: the run's
    number from its record).
    """
    from ..nnunet.evaluate import dice_table
    from ..nnunet.run import predict_cases, run_record
    from ..nnunet.settings import PredictSettings

    settings = PredictSettings.from_config(predict_settings)
    tables = []
    for model_dir in model_dirs:
        with tempfile.TemporaryDirectory(prefix="fidelity-") as scratch:
            predicted = predict_cases(model_dir, {c: image for c, (image, _) in pairs.items()}, scratch,
                                      settings, threads=threads, tile_batch=tile_batch,
                                      lung_threshold_hu=lung_threshold_hu, device=device)
            table = dice_table({c: (mask, predicted[c]) for c, (_, mask) in pairs.items()}, settings.empty_dice)
        tables.append(table.assign(run=int(run_record(model_dir)["run"])))
    return pd.concat(tables, ignore_index=True)


def mask_fidelity(model_dirs, synthetic_paths, mask_paths, real_test_dice_csvs, out_csv, predict_settings: dict,
                  threads: int, tile_batch: int = 4, lung_threshold_hu: float = -400.0, device: str = "auto") -> None:
    """results/synthetic/<set>/fidelity.csv.

    Each Real run in ``model_dirs`` predicts every synthetic volume; the Dice is taken against the
    volume's conditioning mask (:func:`fidelity_dice`). The ``summary`` row holds the mean over
    volumes and runs, the same runs' mean Dice on the real test cases (``real_test_dice_csvs``),
    and their ratio.
    """
    from ..stats import read_dice_records

    per_volume = fidelity_dice(model_dirs, case_pairs(synthetic_paths, mask_paths), predict_settings, threads,
                               tile_batch, lung_threshold_hu, device)
    real = read_dice_records(real_test_dice_csvs).groupby("run")["dice"].mean()
    per_volume["real_test_dice"] = per_volume["run"].map(real)
    synthetic, real_mean = per_volume["dice"].mean(), float(real.loc[per_volume["run"].unique()].mean())
    summary = {"case": "summary", "run": "all", "dice": synthetic, "real_test_dice": real_mean,
               "ratio": synthetic / real_mean if real_mean > 0 else float("nan")}
    out = pd.concat([per_volume, pd.DataFrame([summary])], ignore_index=True).reindex(columns=COLUMNS)
    log.info("mask fidelity: Dice %.4f on synthetic volumes, %.4f on real test cases (ratio %.3f)",
             synthetic, real_mean, summary["ratio"])
    write_csv(out_csv, out)
