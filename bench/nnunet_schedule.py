"""How stable is the Real arm? One nnU-Net setting, several seeds, the spread of their test Dice.

    .venv/bin/python bench/nnunet_schedule.py --run runs/benchmark --config config/benchmark.yaml \
        --name it1200 --set nnunet.train.epochs=48 --seeds 1 2 3 4 5 --threads 1

Trains the Real arm (the real training crops of a workflow run folder; the real validation
cases validate) once per seed with the config's ``nnunet`` settings changed by ``--set``, predicts
the real test cases, and writes one row per setting to ``--csv``: iterations, the runs' mean test
Dice, their standard deviation (what Welch's test on Table 1 must see through), minutes per run
(training and prediction, wall and CPU), the CPU model. Every run is cached under
``--out/<name>/seed<k>``, so a killed study resumes; settings may run side by side (one thread each).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, config_with, locked, recorded_nnunet, replace_row  # noqa: E402
from lungsynth.arms import REFERENCE  # noqa: E402
from lungsynth.runtime import cpu_description  # noqa: E402


def prepared(run: Path, config: dict, out: Path, threads: int) -> Path:
    """The Real arm's raw dataset and its plan (cached per plan), shared by every setting."""
    from lungsynth.pipeline import nnunet

    n = config["nnunet"]
    data = run / "results" / "data"
    split = json.loads((data / "splits.json").read_text())
    key = hashlib.sha256(json.dumps(n["plan"], sort_keys=True).encode()).hexdigest()[:10]
    root = out / f"plan-{key}"
    with locked(out / ".plan.lock"):
        if not (root / "preprocessed").exists():
            paths = lambda cases, kind: [data / kind / f"{c}.nii.gz" for c in cases]  # noqa: E731
            name = REFERENCE.dataset_name(n["datasets"][REFERENCE.token])
            nnunet.raw_dataset(REFERENCE.token, {"real": (paths(split["train"], "images"), paths(split["train"], "masks"))},
                               (paths(split["validation"], "images"), paths(split["validation"], "masks")),
                               root / "raw", name, "copy")
            nnunet.plan(root / "raw", root / "preprocessed", n["plan"], threads)
    return root / "preprocessed"


def one_run(run: Path, config: dict, preprocessed: Path, folder: Path, seed: int, threads: int,
            trained: Path | None = None) -> dict:
    """Train with ``seed`` (or take the run already trained in ``trained``) and predict the test
    cases; cached in ``folder/result.json``."""
    from lungsynth.nnunet.evaluate import dice_table
    from lungsynth.nnunet.run import predict_cases
    from lungsynth.nnunet.settings import PredictSettings
    from lungsynth.pipeline import nnunet

    done = folder / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    n, execution = config["nnunet"], config["execution"]
    data = run / "results" / "data"
    test = json.loads((data / "splits.json").read_text())["test"]
    wall, cpu = time.perf_counter(), time.process_time()
    model = folder / "model"
    if trained is None:
        nnunet.train(REFERENCE.token, 1, preprocessed, model, n["plan"], n["train"], seed, threads,
                     checkpoint_every=execution["nnunet_checkpoint_every"])
        train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    else:
        model = trained / "model"
        earlier = json.loads((trained / "result.json").read_text())
        train_wall, train_cpu = earlier["train_seconds"], earlier["train_cpu_seconds"]
    wall, cpu = time.perf_counter(), time.process_time()
    predict = PredictSettings.from_config(n["predict"])
    predicted = predict_cases(model, {c: data / "images" / f"{c}.nii.gz" for c in test},
                              folder / "predictions", predict, threads=threads, tile_batch=execution["nnunet_tile_batch"],
                              lung_threshold_hu=config["preprocess"]["lung_threshold_hu"])
    table = dice_table({c: (data / "masks" / f"{c}.nii.gz", predicted[c]) for c in test}, predict.empty_dice)
    result = {"seed": seed, "test_dice": float(table["dice"].mean()), "cases": len(table),
              "train_seconds": train_wall, "train_cpu_seconds": train_cpu,
              "predict_seconds": time.perf_counter() - wall, "predict_cpu_seconds": time.process_time() - cpu,
              "per_case": dict(zip(table["case"], table["dice"]))}
    done.write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="workflow run folder holding results/data")
    p.add_argument("--config", type=Path, action="append", default=[], help="config overlay(s)")
    p.add_argument("--name", required=True, help="setting name (output folder, CSV row)")
    p.add_argument("--set", action="append", default=[], help="key=value, e.g. nnunet.train.epochs=48")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model-from", help="a setting with the same nnunet plan and train settings whose trained "
                   "runs to reuse (only the prediction differs, e.g. nnunet.predict.checkpoint)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nnunet_schedule")
    p.add_argument("--csv", type=Path, default=ROOT / "docs" / "benchmark" / "nnunet_schedule.csv")
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = config_with(args.config, args.set)
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    recorded = folder / "nnunet.yaml"
    if recorded.exists() and recorded_nnunet(recorded) != config["nnunet"]:
        raise SystemExit(f"{folder}: its cached runs used other nnunet settings ({recorded}); "
                         "choose another --name or delete the folder")
    recorded.write_text(yaml.safe_dump(config["nnunet"]))
    preprocessed = prepared(args.run, config, args.out, args.threads)
    source = None
    if args.model_from:
        source = args.out / args.model_from
        theirs = recorded_nnunet(source / "nnunet.yaml")
        for part in ("plan", "train"):
            if theirs[part] != config["nnunet"][part]:
                raise SystemExit(f"--model-from {args.model_from}: its nnunet.{part} settings differ from this setting's")
    results = [one_run(args.run, config, preprocessed, folder / f"seed{s}", s, args.threads,
                       None if source is None else source / f"seed{s}") for s in args.seeds]
    dice = np.array([r["test_dice"] for r in results])
    train = config["nnunet"]["train"]
    split = json.loads((args.run / "results" / "data" / "splits.json").read_text())
    row = {"setting": args.name, "crops": f"{args.run.name}: {len(split['train'])} train / {len(split['test'])} test",
           "changes": " ".join(args.set) + (f" (the runs of {args.model_from})" if args.model_from else "")
           or "(the benchmark's)",
           "iterations": train["epochs"] * train["iterations_per_epoch"], "runs": len(results),
           "mean_test_dice": dice.mean(), "sd_test_dice": dice.std(ddof=1) if len(dice) > 1 else float("nan"),
           "min_test_dice": dice.min(), "max_test_dice": dice.max(),
           "run_dice": " ".join(f"{d:.3f}" for d in dice),
           "train_minutes": np.mean([r["train_seconds"] for r in results]) / 60,
           "predict_minutes": np.mean([r["predict_seconds"] for r in results]) / 60,
           "cpu_minutes_per_run": np.mean([r["train_cpu_seconds"] + r["predict_cpu_seconds"] for r in results]) / 60,
           "threads": args.threads, "cpu": cpu_description()}
    replace_row(args.csv, "setting", row)
    print(pd.Series(row).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
