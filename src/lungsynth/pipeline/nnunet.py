"""Utility experiment steps: nnU-Net datasets per arm, seeded runs, Dice, worst cases, Table 1, figures.

Arms travel through the workflow as folder-safe tokens (``Real``, ``Synthetic``,
``RealSynthetic``) and are labelled as in the paper's Table 1 (``Real+Synthetic``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..io import save_figure, write_csv
from ..nifti_source import case_id_of

log = logging.getLogger(__name__)

ARM_LABELS = {"Real": "Real", "Synthetic": "Synthetic", "RealSynthetic": "Real+Synthetic"}
SUBSETS = ("validation", "test")


def _settings(settings: dict):
    from ..nnunet.settings import NnunetSettings

    return NnunetSettings.from_config(settings)


def _pairs(images, masks) -> dict:
    """``case -> (image, mask)`` from two parallel path lists (case = the image's file name)."""
    pairs = {case_id_of(Path(i)): (str(i), str(m)) for i, m in zip(images, masks)}
    for case, (image, mask) in pairs.items():
        if case_id_of(Path(mask)) != case:
            raise InputError(mask, f"mask does not belong to image {image}")
    return pairs


def raw_dataset(arm: str, real_train, general, targeted, validation, out_root, settings: dict) -> None:
    """results/nnunet/<arm>/raw/DatasetXXX_<arm>: the arm's training cases + the real validation cases.

    Each of ``real_train``, ``general``, ``targeted``, ``validation`` is ``(images, masks)``.
    """
    from ..nnunet.dataset import arm_training_cases, write_raw_dataset

    s = _settings(settings)
    label = ARM_LABELS[arm]
    train = arm_training_cases(label, _pairs(*real_train), _pairs(*general) if general else None,
                               _pairs(*targeted) if targeted else None)
    split = write_raw_dataset(Path(out_root) / s.dataset_name(label), train, _pairs(*validation), link=s.link)
    log.info("%s: %d training and %d validation cases", s.dataset_name(label), len(split["train"]), len(split["val"]))


def plan(arm: str, raw_root, out_root, settings: dict, threads: int) -> None:
    """results/nnunet/<arm>/preprocessed: nnU-Net's fingerprint (integrity-checked), plans, preprocessing."""
    from ..nnunet.plans import plan_and_preprocess

    s = _settings(settings)
    Path(out_root).mkdir(parents=True, exist_ok=True)
    plans_file = plan_and_preprocess(Path(raw_root) / s.dataset_name(ARM_LABELS[arm]), out_root, s, threads)
    log.info("plans: %s", plans_file)


def train(arm: str, run: int, preprocessed_root, out_model, settings: dict, threads: int) -> None:
    """results/nnunet/<arm>/run<k>/model: one seeded training run in its own nnU-Net results root."""
    from ..nnunet.run import train_run

    s = _settings(settings)
    name = s.dataset_name(ARM_LABELS[arm])
    checkpoint = train_run(Path(preprocessed_root) / name, out_model, s, seed=s.run_seed(run), threads=threads)
    log.info("%s run %d (seed %d): %s", ARM_LABELS[arm], run, s.run_seed(run), checkpoint)


def predict(model_dir, images: dict, masks: dict, out_dir, out_dice: dict, settings: dict, threads: int) -> None:
    """results/nnunet/<arm>/run<k>/{predictions,<subset>_dice.csv}: every validation and test case.

    ``images``/``masks``/``out_dice`` are keyed by subset (validation, test).
    """
    from ..nnunet.evaluate import dice_table
    from ..nnunet.run import predict_cases

    s = _settings(settings)
    for subset in SUBSETS:
        cases = _pairs(images[subset], masks[subset])
        predicted = predict_cases(model_dir, {c: image for c, (image, _) in cases.items()}, Path(out_dir) / subset,
                                  s.predict, threads=threads)
        table = dice_table({c: (mask, predicted[c]) for c, (_, mask) in cases.items()}, s.empty_dice)
        log.info("%s: mean Dice %.4f over %d cases", subset, table["dice"].mean(), len(table))
        write_csv(out_dice[subset], table)


def _long_table(dice_csvs):
    """The long Dice table from paths ``results/nnunet/<arm>/run<k>/<subset>_dice.csv``."""
    from ..stats import long_dice_table

    def entry(path):
        path = Path(path)
        arm, run = path.parts[-3], int(path.parts[-2].removeprefix("run"))
        return ARM_LABELS[arm], run, path.name.removesuffix("_dice.csv"), pd.read_csv(path, dtype={"case": str})

    return long_dice_table(entry(p) for p in dice_csvs)


def worst_validation(real_dice_csvs, masks, images, out_csv) -> None:
    """results/targeted/worst_validation.csv: validation cases below the mean Dice of the Real runs, and why."""
    from ..nnunet.evaluate import describe_cases
    from ..stats import worst_validation_cases

    worst = worst_validation_cases(_long_table(real_dice_csvs))
    by_case = {case_id_of(Path(p)): p for p in masks}
    image_by_case = {case_id_of(Path(p)): p for p in images}
    reasons = describe_cases(list(worst["case"]), by_case, images=image_by_case)
    table = worst.merge(reasons, on="case", how="left")
    log.info("%d worst validation case(s) below the mean Dice %.4f", len(table),
             table["threshold"].iloc[0] if len(table) else float("nan"))
    write_csv(out_csv, table)


def statistics(dice_csvs, out_table1, out_folder, seed: int) -> None:
    """results/table1.csv and results/stats/*.csv: Table 1 with Welch p-values, paired tests, bootstrap."""
    from ..stats import table1, write_stats, write_table1

    long = _long_table(dice_csvs)
    table = table1(long)
    log.info("Table 1:\n%s", table.to_string(index=False))
    write_stats(out_folder, long, seed=seed)
    write_table1(out_table1, table)


def figure3(per_case_csv, worst_csv, out_png) -> None:
    """results/figures/figure3.png: Dice change Real -> Real+Synthetic per case, in three subgroups."""
    from ..figures_utility import dice_change_figure
    from ..stats import dice_change

    long = pd.read_csv(per_case_csv, dtype={"case": str})
    worst = pd.read_csv(worst_csv, dtype={"case": str})["case"]
    save_figure(out_png, dice_change_figure(dice_change(long, worst)))


def prediction_examples(per_case_csv, worst_csv, images, masks, predictions: dict, out_png, n_cases: int) -> None:
    """results/figures/predictions.png: test cases with the largest Dice change, both models' run-1 predictions.

    ``predictions``: arm label -> the run-1 ``predictions`` folder (its ``test/<case>.nii.gz``).
    """
    from ..figures_utility import load_examples, pick_example_cases, prediction_examples_figure
    from ..stats import dice_change

    long = pd.read_csv(per_case_csv, dtype={"case": str})
    change = dice_change(long, pd.read_csv(worst_csv, dtype={"case": str})["case"])
    cases = pick_example_cases(change, n_cases)
    run1 = long[(long["run"] == 1) & (long["subset"] == "test")]
    dice = {arm: dict(zip(rows["case"], rows["dice"])) for arm, rows in run1.groupby("arm")}
    by_case = lambda paths: {case_id_of(Path(p)): p for p in paths}  # noqa: E731
    predicted = {arm: {c: Path(folder) / "test" / f"{c}.nii.gz" for c in cases} for arm, folder in predictions.items()}
    examples = load_examples(cases, by_case(images), by_case(masks), predicted, dice)
    save_figure(out_png, prediction_examples_figure(
        examples, title="run 1 of each arm; test cases of the largest gain, largest loss and median change "
                        "of Dice averaged over all runs"))



def fidelity_dice(model_dirs, pairs: dict, settings: dict, threads: int) -> pd.DataFrame:
    """Dice of each run's prediction of each synthetic volume against its conditioning mask.

    ``pairs``: ``case -> (synthetic image, conditioning mask)``; ``model_dirs``: nnU-Net runs
    (``results/nnunet/<arm>/run<k>/model``). One row per case and run (column ``run``: the run's
    folder name, ``run<k>``).
    """
    from ..nnunet.evaluate import dice_table
    from ..nnunet.run import predict_cases

    s = _settings(settings)
    tables = []
    for model_dir in model_dirs:
        run = Path(model_dir).parent.name
        with tempfile.TemporaryDirectory(prefix="fidelity-") as scratch:
            predicted = predict_cases(model_dir, {c: image for c, (image, _) in pairs.items()}, scratch,
                                      s.predict, threads=threads)
            table = dice_table({c: (mask, predicted[c]) for c, (_, mask) in pairs.items()}, s.empty_dice)
        tables.append(table.assign(run=run))
    return pd.concat(tables, ignore_index=True)


def mask_fidelity(model_dirs, synthetic_paths, mask_paths, real_test_dice_csvs, out_csv, settings: dict,
                  threads: int) -> None:
    """results/synthetic/<set>/fidelity.csv: does a model trained on real data find the nodule where
    the mask put it?

    Each Real run in ``model_dirs`` predicts every synthetic volume; the Dice is taken against the
    volume's conditioning mask (:func:`fidelity_dice`). The ``summary`` row holds the mean over
    volumes and runs, the same runs' mean Dice on the real test cases (``real_test_dice_csvs``, in
    the order of ``model_dirs``), and their ratio (1 = as findable as the real nodules).
    """
    per_volume = fidelity_dice(model_dirs, _pairs(synthetic_paths, mask_paths), settings, threads)
    real = {Path(csv).parent.name: pd.read_csv(csv)["dice"].mean() for csv in real_test_dice_csvs}
    per_volume["real_test_dice"] = per_volume["run"].map(real)
    synthetic, real_mean = per_volume["dice"].mean(), float(pd.Series(real).mean())
    summary = {"case": "summary", "run": "all", "dice": synthetic, "real_test_dice": real_mean,
               "ratio": synthetic / real_mean if real_mean > 0 else float("nan")}
    columns = ["case", "run", "dice", "real_test_dice", "ratio", "tp", "fp", "fn", "truth_voxels", "predicted_voxels"]
    out = pd.concat([per_volume, pd.DataFrame([summary])], ignore_index=True).reindex(columns=columns)
    log.info("mask fidelity: Dice %.4f on synthetic volumes, %.4f on real test cases (ratio %.3f)",
             synthetic, real_mean, summary["ratio"])
    write_csv(out_csv, out)
