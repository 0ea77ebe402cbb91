"""The lung restriction's variants scored on the models a workflow run trained: margins, and a lung
mask closed over the pleura (for juxtapleural nodules, which dent the air mask).

    .venv/bin/python bench/lung_closing.py --run runs/benchmark --config config/benchmark.yaml \
        --arms Real --variants none 3 6 10 3:10 3:15 3:20 --csv docs/benchmark/lung_closing.csv
    .venv/bin/python bench/lung_closing.py --run runs/benchmark --config config/benchmark.yaml \
        --study bench/results/nnunet_schedule/bench1200-lr0.005-bf16 --variants none 3    # a study's seeds

Predicts the validation and test crops with the models an arm's runs trained in a workflow run
(``results/nnunet/<arm>/run<k>/model``), or the seeds of a setting of ``bench/nnunet_schedule.py``
(``--study``, predicted with ``--config``'s predict settings), without any restriction, once (cached in ``--cache``),
then scores every restriction variant ``margin_mm:closing_mm`` (``none`` = no restriction) the
way ``nnunet.predict.lung_margin_mm`` would (the closing is not a workflow setting: measured, not adopted; docs/benchmark.md)
(:mod:`lungsynth.nnunet.lung_restriction`). One row per arm and variant: the runs' test Dice
(mean, sd, per run), the validation Dice, and the worst validation cases by mean Dice over the
runs with their Dice, i.e. what the targeted set would be conditioned on.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, config_with, print_and_write  # noqa: E402


def parse_variant(text: str) -> tuple[float | None, float]:
    """``none`` -> (None, 0); ``3:15`` -> margin 3 mm after a closing of 15 mm."""
    if text == "none":
        return None, 0.0
    margin, _, closing = text.partition(":")
    return float(margin), float(closing or 0)


def arm_models(run: Path, arm: str) -> list[tuple[str, Path]]:
    """``(run<k>, model folder)`` of every run of ``arm`` in a workflow run, in run order."""
    models = sorted((run / "results" / "nnunet" / arm).glob("run*/model"), key=lambda p: int(p.parent.name[3:]))
    if not models:
        raise SystemExit(f"{run / 'results' / 'nnunet' / arm}: no trained runs (run*/model)")
    return [(m.parent.name, m) for m in models]


def study_models(setting: Path) -> list[tuple[str, Path]]:
    """``(seed<k>, model folder)`` of every seed of one setting of ``bench/nnunet_schedule.py``."""
    models = sorted(setting.glob("seed*/model"), key=lambda p: int(p.parent.name[4:]))
    if not models:
        raise SystemExit(f"{setting}: no trained seeds (seed*/model)")
    return [(m.parent.name, m) for m in models]


def unrestricted_predictions(run: Path, source: str, models: list[tuple[str, Path]], config: dict, cache: Path,
                             threads: int) -> list[Path]:
    """One folder per model with its unrestricted predictions of every validation and test crop."""
    from lungsynth.nnunet.run import predict_cases
    from lungsynth.nnunet.settings import PredictSettings

    data = run / "results" / "data"
    splits = json.loads((data / "splits.json").read_text())
    cases = splits["validation"] + splits["test"]
    settings = dict(config["nnunet"]["predict"], lung_margin_mm=None)
    folders = []
    for name, model in models:
        folder = cache / source / name
        todo = {c: data / "images" / f"{c}.nii.gz" for c in cases if not (folder / f"{c}.nii.gz").exists()}
        if todo:
            print(f"{source} {name}: predicting {len(todo)} crops", flush=True)
            predict_cases(model, todo, folder, PredictSettings.from_config(settings), threads=threads,
                          tile_batch=config["execution"]["nnunet_tile_batch"])
        folders.append(folder)
    return folders


def score(run: Path, arm: str, folders: list[Path], variants: list[str], threshold_hu: float,
          empty_dice: float, worst: int) -> list[dict]:
    from lungsynth.ddpm.quality import spacing_zyx
    from lungsynth.io import read_nifti
    from lungsynth.nnunet.evaluate import dice
    from lungsynth.nnunet.lung_restriction import distance_to_lung_mm

    data = run / "results" / "data"
    splits = json.loads((data / "splits.json").read_text())

    @functools.cache
    def to_lung(case: str, closing_mm: float) -> np.ndarray:
        hu, geometry = read_nifti(data / "images" / f"{case}.nii.gz")
        distance = distance_to_lung_mm(hu, spacing_zyx(geometry), threshold_hu, closing_mm)
        return np.zeros(hu.shape) if distance is None else distance   # no lung: kept whole, as the workflow does

    @functools.cache
    def truth(case: str) -> np.ndarray:
        return read_nifti(data / "masks" / f"{case}.nii.gz")[0] > 0

    parsed = {text: parse_variant(text) for text in variants}
    per_case = {text: {} for text in variants}   # variant -> (split, case) -> Dice per run
    for folder in folders:
        for split in ("validation", "test"):
            for case in splits[split]:
                predicted = read_nifti(folder / f"{case}.nii.gz")[0] > 0
                for text, (margin, closing) in parsed.items():
                    kept = predicted if margin is None else predicted & (to_lung(case, closing) <= margin)
                    per_case[text].setdefault((split, case), []).append(dice(truth(case), kept, empty_dice))
    rows = []
    for text, (margin, closing) in parsed.items():
        test = np.array([per_case[text][("test", c)] for c in splits["test"]]).mean(axis=0)   # per run
        validation = {c: float(np.mean(per_case[text][("validation", c)])) for c in splits["validation"]}
        worst_cases = sorted(validation, key=lambda c: (validation[c], c))[:worst]
        rows.append({"arm": arm, "variant": text, "lung_margin_mm": margin, "lung_closing_mm": closing,
                     "runs": len(test), "mean_test_dice": test.mean(),
                     "sd_test_dice": test.std(ddof=1) if len(test) > 1 else np.nan,
                     "run_test_dice": " ".join(f"{x:.3f}" for x in test),
                     "mean_validation_dice": float(np.mean(list(validation.values()))),
                     "worst_validation": " ".join(f"{c}={validation[c]:.3f}" for c in worst_cases)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="workflow run folder (results/data, results/nnunet)")
    p.add_argument("--config", type=Path, nargs="*", default=[], help="the run's config overlays")
    p.add_argument("--arms", nargs="+", default=["Real"])
    p.add_argument("--study", type=Path, nargs="+", default=[],
                   help="instead of the run's arms: settings folders of bench/nnunet_schedule.py "
                        "(bench/results/nnunet_schedule/<setting>, seed*/model), predicted with --config's settings")
    p.add_argument("--variants", nargs="+", default=["none", "3:0", "3:10", "3:15", "3:20"],
                   help="margin_mm:closing_mm, or none")
    p.add_argument("--worst", type=int, default=3, help="worst validation cases listed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "lung_closing")
    p.add_argument("--csv", type=Path)
    args = p.parse_args(argv)
    config = config_with(args.config, [])
    cache = args.cache / args.run.resolve().name
    rows = []
    sources = ([(setting.name, study_models(setting)) for setting in args.study] if args.study
               else [(arm, arm_models(args.run, arm)) for arm in args.arms])
    for source, models in sources:
        folders = unrestricted_predictions(args.run, source, models, config, cache, args.threads)
        rows += score(args.run, source, folders, args.variants, config["preprocess"]["lung_threshold_hu"],
                      config["nnunet"]["predict"]["empty_dice"], args.worst)
    table = pd.DataFrame(rows)
    print_and_write(table, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
