"""The utility statistics: Table 1 with Welch's test, per-case tests, bootstrap intervals, Figure 3
and the prediction examples, all from the runs' Dice records (:mod:`lungsynth.stats`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..arms import REFERENCE, arm as find_arm
from ..case_ids import case_id_of
from ..io import save_figure

log = logging.getLogger(__name__)


def statistics(dice_csvs, out_table1, out_folder) -> None:
    """results/table1.csv and results/stats/*.csv: Table 1 with Welch p-values, per-case means, paired tests."""
    from ..stats import read_dice_records, table1, write_stats, write_table1

    long = read_dice_records(dice_csvs)
    table = table1(long)
    log.info("Table 1:\n%s", table.to_string(index=False))
    write_stats(out_folder, long)
    write_table1(out_table1, table)


def bootstrap(per_case_csv, out_csv, settings: dict) -> None:
    """results/stats/bootstrap.csv: 95 % bootstrap intervals over cases of each arm's Dice and of its
    difference to Real (``stats.bootstrap_resamples`` resamples, seeded)."""
    from ..settings import StatsSettings
    from ..stats import write_bootstrap

    s = StatsSettings.from_config(settings)
    write_bootstrap(out_csv, pd.read_csv(per_case_csv, dtype={"case": str}), s.bootstrap_resamples, s.seed)


def figure3(per_case_csv, worst_csv, out_png) -> None:
    """results/figures/figure3.png: Dice change Real -> Real+Synthetic per case, in three subgroups."""
    from ..figures_experiment import dice_change_figure
    from ..stats import dice_change

    from ..stats import run_means

    long = pd.read_csv(per_case_csv, dtype={"case": str})
    worst = pd.read_csv(worst_csv, dtype={"case": str})["case"]
    save_figure(out_png, dice_change_figure(dice_change(long, worst), run_means=run_means(long, "test")))


def prediction_examples(per_case_csv, worst_csv, images, masks, predictions: dict, out_png, n_cases: int) -> None:
    """results/figures/predictions.png: test cases with the largest Dice change, both models' run-1 predictions.

    ``predictions``: arm token -> the run-1 ``predictions`` folder (its ``test/<case>.nii.gz``).
    """
    from ..figures_experiment import load_examples, pick_example_cases, prediction_examples_figure
    from ..stats import dice_change

    long = pd.read_csv(per_case_csv, dtype={"case": str})
    change = dice_change(long, pd.read_csv(worst_csv, dtype={"case": str})["case"])
    cases = pick_example_cases(change, n_cases)
    run1 = long[(long["run"] == 1) & (long["subset"] == "test")]
    dice = {arm: dict(zip(rows["case"], rows["dice"])) for arm, rows in run1.groupby("arm")}
    by_case = lambda paths: {case_id_of(p): p for p in paths}  # noqa: E731
    predicted = {find_arm(token).label: {c: Path(folder) / "test" / f"{c}.nii.gz" for c in cases}
                 for token, folder in predictions.items()}
    examples = load_examples(cases, by_case(images), by_case(masks), predicted, dice)
    save_figure(out_png, prediction_examples_figure(
        examples, title=f"run 1 of each arm; test cases of the largest gain, largest loss and median change "
                        f"of Dice averaged over all runs (against {REFERENCE.label})"))
