"""Training and prediction speed on this machine, by kernel choice: the DDPM or nnU-Net.

    .venv/bin/python bench/throughput.py ddpm --csv docs/benchmark/ddpm_throughput.csv
    .venv/bin/python bench/throughput.py nnunet --run runs/benchmark --config config/benchmark.yaml \
        --csv docs/benchmark/nnunet_throughput.csv
    .venv/bin/python bench/throughput.py ddpm --quick                   # tiny sizes, seconds

``ddpm``: one training step (forward, backward, AdamW, EMA) of the benchmark's net per kernel variant
(fp32, bf16 autocast, each contiguous or channels_last_3d) and thread count, its FLOPs read against a
plain matmul (the practical peak). ``nnunet``: the Real arm's training iteration (nnU-Net's loader and
augmentation, then ``train_step``) and the project's sliding-window prediction of test cases, fp32 and
bf16, per thread count and augmentation workers; a rerun replaces its own rows, keeps other machines'
or oneDNN caps' (``ONEDNN_MAX_CPU_ISA``). Rows carry the CPU model and flags: only one CPU's compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchlib import ROOT, Data, config_with, first_line, real_arm_plan, replace_rows, timed
from lungsynth.ddpm.settings import DdpmSettings
from lungsynth.ddpm.train import Trainer
from lungsynth.io import write_csv
from lungsynth.runtime import bf16_is_used, cpu_description, set_threads

DDPM_COLUMNS = ["net", "patch", "batch", "variant", "threads", "seconds_per_step", "steps_per_cpu_minute",
                "gflop_per_step", "gflop_per_s", "status", "note", "cpu", "torch"]
DDPM_VARIANTS = {"fp32": (False, "contiguous"), "fp32 channels_last_3d": (False, "channels_last"),
                 "bf16": (True, "contiguous"), "bf16 channels_last_3d": (True, "channels_last")}  # bf16, layout
NNUNET_VARIANTS = {"fp32": False, "bf16": True}  # name -> bf16 autocast
NNUNET_KEY = ["stage", "variant", "plan", "threads", "augmentation_workers", "cpu"]


# ----------------------------------------------------------------------------- the DDPM

def ddpm_case(case: dict) -> dict:
    """Seconds and FLOPs per step (or per matmul) of one case."""
    torch.set_num_threads(case["threads"])
    bf16, layout = DDPM_VARIANTS[case["variant"]]
    if case["what"] == "matmul":
        n, dtype = case["size"], torch.bfloat16 if bf16 else torch.float32
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        return {"seconds_per_step": timed(None, lambda i: a @ b, case["repeats"]), "gflop_per_step": 2 * n**3 / 1e9}
    settings = DdpmSettings.from_config({
        "network": {"channels": case["channels"], "norm_num_groups": 8},
        "schedule": {"prediction_type": "v_prediction"},
        "training": {"patch_size": [case["patch"]] * 3, "batch_size": case["batch"], "bf16": bf16,
                     "steps": 10_000, "warmup_steps": 0}})
    side = max(64, case["patch"])
    hu = (torch.randn((2, side, side, side), generator=torch.Generator().manual_seed(0)) * 300 - 700).to(torch.int16)
    nodules = torch.zeros_like(hu, dtype=torch.uint8)
    nodules[(slice(None), *[slice(side // 2 - 3, side // 2 + 3)] * 3)] = 1
    trainer = Trainer(settings, hu, nodules, torch.device("cpu"), layout)
    used = bf16_is_used(torch.device("cpu"), bf16)
    with FlopCounterMode(display=False) as counter:
        trainer.step(1)
    warm_up = timed(None, lambda i: trainer.step(2))
    cpu = time.process_time()
    seconds = timed(None, lambda i: trainer.step(3 + i), case["repeats"])
    return {"seconds_per_step": seconds, "gflop_per_step": counter.get_total_flops() / 1e9,
            "note": f"warm-up {warm_up:.1f} s; {(time.process_time() - cpu) / case['repeats']:.2f} CPU s/step"
                    + ("; bf16 asked for, fp32 run (no fast bf16 kernels)" if bf16 and not used else "")}


def ddpm_cases(args) -> list[dict]:
    """Every kernel variant and thread count of the step; then the matmul."""
    if args.quick:
        args.channels, args.patch, args.threads, args.repeats = [8, 16, 16], 16, [1], 2
    out = [{"what": "step", "channels": args.channels, "patch": args.patch, "batch": args.batch, "variant": variant,
            "threads": t, "repeats": args.repeats} for variant in DDPM_VARIANTS for t in args.threads]
    return out + [{"what": "matmul", "size": 1024 if args.quick else 2048, "variant": variant, "threads": t,
                   "repeats": 10} for variant in ("fp32", "bf16") for t in args.threads]


def ddpm(args) -> int:
    rows, todo, threads = [], ddpm_cases(args), torch.get_num_threads()
    for i, case in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {case}", file=sys.stderr, flush=True)
        row = {"net": "matmul" if case["what"] == "matmul" else "-".join(map(str, case["channels"])),
               "patch": case.get("patch", case.get("size")), "batch": case.get("batch", ""),
               "variant": case["variant"], "threads": case["threads"], "cpu": cpu_description(),
               "torch": torch.__version__}
        try:
            row.update(ddpm_case(case), status="ok")
            row["steps_per_cpu_minute"] = 60.0 / (row["seconds_per_step"] * row["threads"])
            row["gflop_per_s"] = row["gflop_per_step"] / row["seconds_per_step"]
        except Exception as err:   # noqa: BLE001 - a case that fails is a row
            row.update(status="error", note=first_line(err, 160))
        finally:
            torch.set_num_threads(threads)
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=DDPM_COLUMNS)
    write_csv(args.csv, table, float_format="%.4g")
    print(table.drop(columns=["cpu", "torch"]).to_string(index=False))
    print(f"\n{cpu_description()}; torch {torch.__version__}; written to {args.csv}")
    return 0


# ----------------------------------------------------------------------------- nnU-Net

def time_training(preprocessed_dataset: Path, plan, train, bf16: bool, threads: int, workers: int,
                  iterations: int, warmup: int, out: Path) -> dict:
    """Seconds per training iteration (data loading + ``train_step``) after ``warmup`` iterations;
    leaves ``checkpoint_final.pth`` under ``out`` for the prediction timing."""
    from lungsynth.nnunet.environment import nnunet_environment
    from lungsynth.nnunet.run import new_trainer

    set_threads(threads)
    device = torch.device("cpu")
    train = dataclasses.replace(train, bf16=bf16, augmentation_workers=workers)
    with nnunet_environment(preprocessed=preprocessed_dataset.parent, results=out, augmentation_workers=workers):
        trainer = new_trainer(preprocessed_dataset, plan, train, seed=1, device=device, save_every=10**6)
        trainer.on_train_start()
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


def time_prediction(model_dir: Path, images: list[Path], predict, bf16: bool, threads: int, tile_batch: int) -> dict:
    """Seconds per case of the project's in-process prediction, after one warm-up case."""
    from lungsynth.nnunet.environment import nnunet_environment
    from lungsynth.nnunet.run import load_predictor, predict_image

    predict = dataclasses.replace(predict, bf16=bf16)
    with nnunet_environment():
        predictor = load_predictor(model_dir, predict, threads=threads, device="cpu", tile_batch=tile_batch)
        predict_image(predictor, images[0])   # warm-up
        seconds = [timed(None, lambda i: predict_image(predictor, image)) for image in images]
    return {"bf16_used": bf16_is_used(torch.device("cpu"), bf16), "seconds": float(np.mean(seconds)),
            "n": len(images)}


def nnunet_table(run: Path, config: dict, args):
    from lungsynth.nnunet.settings import PlanSettings, PredictSettings, TrainSettings
    from lungsynth.pipeline.nnunet import only_dataset

    n = config["nnunet"]
    plan, train, predict = (PlanSettings.from_config(n["plan"]), TrainSettings.from_config(n["train"]),
                            PredictSettings.from_config(n["predict"]))
    dataset = only_dataset(real_arm_plan(run, config, args.out, max(args.threads)))
    data = Data(run)
    images = data.paths("images", data.split["test"][:args.cases])
    cpu, rows = cpu_description(), []
    with tempfile.TemporaryDirectory(dir=args.out) as scratch:
        model = Path(scratch) / "model"
        for t in args.threads:
            for w in args.workers:
                for name in args.variants:
                    r = time_training(dataset, plan, train, NNUNET_VARIANTS[name], t, w, args.iterations,
                                      args.warmup, model)
                    rows.append({"stage": "train", "variant": name, "threads": t, "augmentation_workers": w, **r,
                                 "unit": "s / iteration", "cpu": cpu})
                    print(f"train   {name:24s} threads {t} workers {w}: {r['seconds']:.3f} s / iteration", flush=True)
            for name in args.variants:
                r = time_prediction(model, images, predict, NNUNET_VARIANTS[name], t,
                                    config["execution"]["nnunet_tile_batch"])
                rows.append({"stage": "predict", "variant": name, "threads": t, "augmentation_workers": "", **r,
                             "unit": "s / case", "cpu": cpu})
                print(f"predict {name:24s} threads {t}: {r['seconds']:.2f} s / case", flush=True)
    table = pd.DataFrame(rows)
    key = ["stage", "threads", "augmentation_workers"]
    base = table[table["variant"] == "fp32"].set_index(key)["seconds"]
    table["speedup"] = [base.get(tuple(r[k] for k in key), np.nan) / r["seconds"] for _, r in table.iterrows()]
    table.insert(2, "plan", f"features {list(plan.features or [])}, patch {list(plan.patch_size or [])}, "
                            f"batch {plan.batch_size}")
    return table


def nnunet(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    if args.quick:
        args.threads, args.iterations, args.warmup, args.cases = [1], 2, 1, 1
    args.out.mkdir(parents=True, exist_ok=True)
    table = nnunet_table(args.run, config_with(args.config, args.set), args)
    print(table.drop(columns=["cpu"]).to_string(index=False))
    print("cpu:", table["cpu"].iloc[0])
    if args.csv:   # a rerun replaces its own rows, keeps other machines'
        replace_rows(args.csv, NNUNET_KEY, table, keep_default_na=False)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="model", required=True)
    d = sub.add_parser("ddpm", help="DDPM training steps of the benchmark's net")
    d.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "ddpm_throughput.csv")
    d.add_argument("--quick", action="store_true", help="a tiny net and patch, 1 thread")
    d.add_argument("--channels", type=int, nargs="+", default=[16, 32, 32], help="the net (the benchmark's)")
    d.add_argument("--patch", type=int, default=32, help="cube side of a training patch")
    d.add_argument("--batch", type=int, default=2, help="patches per step")
    d.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    d.add_argument("--repeats", type=int, default=5)
    n = sub.add_parser("nnunet", help="nnU-Net training iterations and prediction of the Real arm")
    n.add_argument("--run", type=Path, required=True, help="workflow run folder holding results/data")
    n.add_argument("--config", type=Path, action="append", default=[], help="config overlay(s)")
    n.add_argument("--set", action="append", default=[], help="key=value, e.g. nnunet.plan.batch_size=4")
    n.add_argument("--quick", action="store_true", help="1 thread, 2 iterations, 1 case")
    n.add_argument("--variants", nargs="+", choices=list(NNUNET_VARIANTS), default=list(NNUNET_VARIANTS))
    n.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    n.add_argument("--workers", type=int, nargs="+", default=[0], help="nnUNet_n_proc_DA values")
    n.add_argument("--iterations", type=int, default=30, help="timed training iterations per case")
    n.add_argument("--warmup", type=int, default=5)
    n.add_argument("--cases", type=int, default=3, help="test cases predicted per case (after one warm-up)")
    n.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nnunet_throughput")
    n.add_argument("--csv", type=Path, default=None)
    args = p.parse_args(argv)
    return ddpm(args) if args.model == "ddpm" else nnunet(args)


if __name__ == "__main__":
    sys.exit(main())
