"""nnU-Net on a CPU: training iterations per second and prediction seconds per case, by kernel choice.

    .venv/bin/python bench/nnunet_throughput.py --run runs/benchmark --config config/benchmark.yaml \
        --csv docs/benchmark/nnunet_throughput.csv

nnU-Net autocasts on CUDA only; the project's trainer and predictor can run the network under
bf16 autocast on a CPU (``nnunet.train.bf16``, ``nnunet.predict.bf16``), which pays only where
oneDNN has bf16 kernels (AVX512-BF16 / AMX). This measures, in one process on one machine, the
Real arm's training iteration (a batch from nnU-Net's own data loader with its augmentation, then
nnU-Net's ``train_step``) and the sliding-window prediction of real test cases, for fp32 and bf16,
each with contiguous and channels_last_3d weights, at each ``--threads``; augmentation in the main
process (``nnUNet_n_proc_DA=0``) and, with ``--workers 0 1``, in one worker process beside it.
One row per case to ``--csv`` (rows of other machines, or of another oneDNN cap such as
``ONEDNN_MAX_CPU_ISA=AVX2``, are kept), with the CPU model and flags; the speed-up is against fp32,
contiguous, the same threads and workers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, config_with  # noqa: E402
from nnunet_schedule import prepared  # noqa: E402

VARIANTS = {  # name -> (bf16 autocast, channels_last_3d)
    "fp32": (False, False),
    "fp32+channels_last_3d": (False, True),
    "bf16": (True, False),
    "bf16+channels_last_3d": (True, True),
}


def _channels_last(network) -> None:
    import torch

    network.to(memory_format=torch.channels_last_3d)


def time_training(preprocessed_dataset: Path, plan, train, bf16: bool, channels_last: bool, threads: int,
                  workers: int, iterations: int, warmup: int, out: Path) -> dict:
    """Seconds per training iteration (data loading + ``train_step``) after ``warmup`` iterations;
    leaves ``checkpoint_final.pth`` under ``out`` for the prediction timing."""
    import torch

    from lungsynth.nnunet.environment import nnunet_environment
    from lungsynth.nnunet.run import new_trainer
    from lungsynth.runtime import bf16_is_used, set_threads

    set_threads(threads)
    device = torch.device("cpu")
    train = dataclasses.replace(train, bf16=bf16, augmentation_workers=workers)
    with nnunet_environment(preprocessed=preprocessed_dataset.parent, results=out, augmentation_workers=workers):
        trainer = new_trainer(preprocessed_dataset, plan, train, seed=1, device=device, save_every=10**6)
        trainer.on_train_start()
        if channels_last:
            _channels_last(trainer.network)
        data_s, step_s = [], []
        try:
            trainer.on_train_epoch_start()
            for i in range(warmup + iterations):
                started = time.perf_counter()
                batch = next(trainer.dataloader_train)
                loaded = time.perf_counter()
                trainer.train_step(batch)
                if i >= warmup:
                    data_s.append(loaded - started)
                    step_s.append(time.perf_counter() - loaded)
        finally:
            trainer.on_train_end()
    return {"bf16_used": bf16_is_used(device, bf16), "data_seconds": float(np.mean(data_s)),
            "step_seconds": float(np.mean(step_s)), "seconds": float(np.mean(data_s) + np.mean(step_s)),
            "n": iterations}


def time_prediction(model_dir: Path, images: list[Path], predict, bf16: bool, channels_last: bool, threads: int,
                    tile_batch: int) -> dict:
    """Seconds per case of the project's in-process prediction (preprocessing, sliding window,
    resampling back), after one warm-up case."""
    import torch

    from lungsynth.nnunet.environment import nnunet_environment
    from lungsynth.nnunet.run import load_predictor, predict_image
    from lungsynth.runtime import bf16_is_used

    predict = dataclasses.replace(predict, bf16=bf16)
    seconds = []
    with nnunet_environment():
        predictor = load_predictor(model_dir, predict, threads=threads, device="cpu", tile_batch=tile_batch)
        if channels_last:
            _channels_last(predictor.network)
        for i, image in enumerate([images[0], *images]):
            started = time.perf_counter()
            predict_image(predictor, image)
            if i:
                seconds.append(time.perf_counter() - started)
    return {"bf16_used": bf16_is_used(torch.device("cpu"), bf16), "seconds": float(np.mean(seconds)),
            "n": len(images)}


def measure(run: Path, config: dict, variants: list[str], threads: list[int], workers: list[int], iterations: int,
            warmup: int, cases: int, out: Path) -> pd.DataFrame:
    from lungsynth.nnunet.settings import PlanSettings, PredictSettings, TrainSettings
    from lungsynth.pipeline.nnunet import only_dataset
    from lungsynth.runtime import cpu_description

    n = config["nnunet"]
    plan, train, predict = (PlanSettings.from_config(n["plan"]), TrainSettings.from_config(n["train"]),
                            PredictSettings.from_config(n["predict"]))
    dataset = only_dataset(prepared(run, config, out, max(threads)))
    data = run / "results" / "data"
    test = json.loads((data / "splits.json").read_text())["test"][:cases]
    images = [data / "images" / f"{c}.nii.gz" for c in test]
    cpu = cpu_description()
    rows = []
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        model = Path(scratch) / "model"
        for t in threads:
            for w in workers:
                for name in variants:
                    bf16, cl = VARIANTS[name]
                    r = time_training(dataset, plan, train, bf16, cl, t, w, iterations, warmup, model)
                    rows.append({"stage": "train", "variant": name, "threads": t, "augmentation_workers": w, **r,
                                 "unit": "s / iteration", "cpu": cpu})
                    print(f"train   {name:24s} threads {t} workers {w}: {r['seconds']:.3f} s / iteration "
                          f"(data {r['data_seconds']:.3f}, step {r['step_seconds']:.3f})", flush=True)
            for name in variants:
                bf16, cl = VARIANTS[name]
                r = time_prediction(model, images, predict, bf16, cl, t, config["execution"]["nnunet_tile_batch"])
                rows.append({"stage": "predict", "variant": name, "threads": t, "augmentation_workers": "", **r,
                             "unit": "s / case", "cpu": cpu})
                print(f"predict {name:24s} threads {t}: {r['seconds']:.2f} s / case", flush=True)
    table = pd.DataFrame(rows)
    key = ["stage", "threads", "augmentation_workers"]
    base = table[table["variant"] == "fp32"].set_index(key)["seconds"]
    table["speedup"] = [base.get(tuple(r[k] for k in key), np.nan) / r["seconds"] for _, r in table.iterrows()]
    plan_text = f"features {list(plan.features or [])}, patch {list(plan.patch_size or [])}, batch {plan.batch_size}"
    table.insert(2, "plan", plan_text)
    return table


KEY = ["stage", "variant", "plan", "threads", "augmentation_workers", "cpu"]


def merged(csv: Path, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` over the rows already in ``csv``: a rerun replaces its own rows (same stage, variant,
    plan, threads, workers and CPU) and keeps those of other machines or oneDNN caps."""
    if not csv.exists():
        return table
    old = pd.read_csv(csv, keep_default_na=False)
    mine = set(table[KEY].astype(str).itertuples(index=False, name=None))
    keep = [tuple(r) not in mine for r in old[KEY].astype(str).itertuples(index=False, name=None)]
    return pd.concat([old[keep], table], ignore_index=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="workflow run folder holding results/data")
    p.add_argument("--config", type=Path, action="append", default=[], help="config overlay(s)")
    p.add_argument("--set", action="append", default=[], help="key=value, e.g. nnunet.plan.batch_size=4")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--workers", type=int, nargs="+", default=[0], help="nnUNet_n_proc_DA values")
    p.add_argument("--iterations", type=int, default=30, help="timed training iterations per case")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--cases", type=int, default=3, help="test cases predicted per case (after one warm-up)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nnunet_throughput")
    p.add_argument("--csv", type=Path, default=None)
    args = p.parse_args(argv)
    import logging

    from lungsynth.io import write_csv

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    table = measure(args.run, config_with(args.config, args.set), args.variants, args.threads, args.workers,
                    args.iterations, args.warmup, args.cases, args.out)
    print(table.drop(columns=["cpu"]).to_string(index=False))
    print("cpu:", table["cpu"].iloc[0])
    if args.csv:
        write_csv(args.csv, merged(args.csv, table), float_format="%.4g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
