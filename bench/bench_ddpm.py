"""Benchmark of the patch-wise DDPM on this machine: time and peak memory, patch-wise vs whole-volume.

Measures, each configuration in a fresh subprocess (so its peak RSS is its own):

- one training step: patch-wise (patch 32^3 and 64^3) against whole-volume training with the
  same net, for several volume sizes;
- one sampling step (one net evaluation over the volume plus the scheduler step): whole-volume
  against windowed (windows of the training patch size), for volume sizes up to what fits;
- time per volume for DDIM-50 and DDPM-1000, extrapolated from the per-step time (steps cost
  the same whatever the sampler; the scheduler's arithmetic is negligible);
- the net's achieved FLOP/s (FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``)
  against a plain matmul on the same machine.

Each child gets an address-space limit (``--mem-limit-gb``), so a configuration that does not
fit fails with "out of memory" instead of pushing the machine into swap or the OOM killer.

    python bench/bench_ddpm.py --quick                       # small sizes, small net, a few minutes
    python bench/bench_ddpm.py --csv bench/results/ddpm.csv  # the full run: a quiet machine, about an hour
    python bench/bench_ddpm.py --channels 16 32 32 --groups 8  # the full sizes with the demo's net

Not a test: figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

COLUMNS = ["kind", "volume", "patch_or_window", "mode", "precision", "threads", "seconds", "per",
           "peak_rss_mb", "setup_rss_mb", "gflop", "gflop_per_s", "load_before", "status", "note"]


# --------------------------------------------------------------------------- child side

def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _settings(case: dict, patch):
    from lungsynth.ddpm.settings import DdpmSettings

    return DdpmSettings.from_config({
        "network": {"channels": case["channels"], "norm_num_groups": case["groups"],
                    "num_res_blocks": case["res_blocks"]},
        "training": {"patch_size": [patch] * 3, "batch_size": case["batch"], "bf16": case["bf16"],
                     "steps": 10_000, "nodule_patch_fraction": 0.5},
    })


def _toy(volume: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    hu = (torch.randn((1, volume, volume, volume), generator=generator) * 300 - 700).to(torch.int16)
    nodules = torch.zeros((1, volume, volume, volume), dtype=torch.uint8)
    c = volume // 2
    nodules[0, c - 3:c + 3, c - 3:c + 3, c - 3:c + 3] = 1
    return hu, nodules


def child_train(case: dict) -> dict:
    import torch

    from lungsynth.ddpm.train import Trainer

    patch = case["patch"] or case["volume"]
    hu, nodules = _toy(case["volume"])
    trainer = Trainer(_settings(case, patch), hu, nodules, torch.device("cpu"))
    setup = _rss_mb()
    trainer.step(1)  # warm-up: first-call allocations
    started = time.perf_counter()
    for i in range(case["repeats"]):
        trainer.step(i + 2)
    seconds = (time.perf_counter() - started) / case["repeats"]
    return {"seconds": seconds, "setup_rss_mb": setup}


def child_sample(case: dict) -> dict:
    import torch

    from lungsynth.ddpm.coordinates import whole_condition
    from lungsynth.ddpm.network import build_network, network_config
    from lungsynth.ddpm.sample import Denoiser
    from lungsynth.ddpm.schedule import sampling_scheduler

    settings = _settings(case, case["window"])
    model = build_network(network_config(settings.network)).eval().requires_grad_(False)
    _, nodules = _toy(case["volume"])
    condition = whole_condition(nodules[0])
    denoise = Denoiser(model, condition, mode=case["mode"], window=(case["window"],) * 3,
                       overlap=case["overlap"], blend="gaussian", bf16=case["bf16"])
    scheduler = sampling_scheduler(settings.schedule, "ddim", 50)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((1, 1, *condition.shape[2:]), generator=generator)
    setup = _rss_mb()
    timesteps = [int(t) for t in scheduler.timesteps]
    x, _ = scheduler.step(denoise(x, timesteps[0]), timesteps[0], x)  # warm-up
    started = time.perf_counter()
    for t in timesteps[1:1 + case["repeats"]]:
        x, _ = scheduler.step(denoise(x, t), t, x)
    seconds = (time.perf_counter() - started) / case["repeats"]
    return {"seconds": seconds, "setup_rss_mb": setup}


def child_flops(case: dict) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lungsynth.ddpm.network import build_network, network_config
    from lungsynth.runtime import autocast

    if case["what"] == "matmul":
        n = case["size"]
        dtype = torch.bfloat16 if case["bf16"] else torch.float32
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        started = time.perf_counter()
        for _ in range(case["repeats"]):
            a @ b
        seconds = (time.perf_counter() - started) / case["repeats"]
        flops = 2 * n**3
    else:
        settings = _settings(case, case["size"])
        model = build_network(network_config(settings.network)).eval().requires_grad_(False)
        x = torch.randn(1, 5, *(case["size"],) * 3)
        t = torch.tensor([500])
        with torch.no_grad():
            with FlopCounterMode(display=False) as counter:
                model(x, t)
            flops = counter.get_total_flops()
            cpu = torch.device("cpu")
            with autocast(cpu, case["bf16"]):
                model(x, t)
                started = time.perf_counter()
                for _ in range(case["repeats"]):
                    model(x, t)
            seconds = (time.perf_counter() - started) / case["repeats"]
    return {"seconds": seconds, "gflop": flops / 1e9, "gflop_per_s": flops / 1e9 / seconds,
            "setup_rss_mb": _rss_mb()}


def run_child(case: dict) -> None:
    """Measure one case in this process and print one JSON line (the last line of stdout)."""
    limit = int(case["mem_limit_gb"] * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    torch.set_num_threads(case["threads"])
    try:
        result = {"train": child_train, "sample": child_sample, "flops": child_flops}[case["kind"]](case)
        result["status"] = "ok"
    except (RuntimeError, MemoryError) as err:
        text = str(err)
        result = {"status": "out of memory" if "allocate" in text or isinstance(err, MemoryError) else "error",
                  "note": text.strip().splitlines()[0][:120] if text.strip() else type(err).__name__}
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent side

def plan(args) -> list[dict]:
    """The list of configurations to measure (each a dict passed to one child)."""
    net = {"channels": args.channels, "groups": args.groups, "res_blocks": args.res_blocks,
           "threads": args.threads, "mem_limit_gb": args.mem_limit_gb, "batch": 1}
    if args.quick:
        volumes, patches, sample_volumes, repeats, flop_sizes = [32, 64], [16, 32], [32, 64], 2, [32]
    else:
        volumes, patches, sample_volumes, repeats, flop_sizes = ([64, 128, 192, 256], [32, 64],
                                                                 [64, 96, 128, 192, 256], 3, [32, 64])
    cases = []
    precisions = [True, False] if args.both_precisions else [args.bf16]
    for bf16 in precisions:
        for volume in volumes:
            for patch in patches:
                if patch < volume:
                    cases.append({**net, "kind": "train", "volume": volume, "patch": patch, "bf16": bf16,
                                  "repeats": repeats})
            cases.append({**net, "kind": "train", "volume": volume, "patch": None, "bf16": bf16,
                          "repeats": repeats})
        window = args.window
        for volume in sample_volumes:
            cases.append({**net, "kind": "sample", "volume": volume, "mode": "whole", "window": window,
                          "overlap": args.overlap, "bf16": bf16, "repeats": repeats})
            if volume > window:
                cases.append({**net, "kind": "sample", "volume": volume, "mode": "windowed", "window": window,
                              "overlap": args.overlap, "bf16": bf16, "repeats": repeats})
    for size in flop_sizes:
        for bf16 in (False, True):
            cases.append({**net, "kind": "flops", "what": "net", "size": size, "bf16": bf16,
                          "repeats": repeats})
    for bf16 in (False, True):
        cases.append({**net, "kind": "flops", "what": "matmul", "size": 1024 if args.quick else 2048,
                      "bf16": bf16, "repeats": 5 if args.quick else 10})
    return cases


def row_of(case: dict, result: dict) -> dict:
    precision = "bf16" if case.get("bf16") else "fp32"
    row = {"kind": case["kind"], "threads": case["threads"], "precision": precision,
           "volume": "", "patch_or_window": "", "mode": "", "per": "", "gflop": "", "gflop_per_s": "", "note": ""}
    if case["kind"] == "train":
        row.update(volume=case["volume"], patch_or_window=case["patch"] or case["volume"],
                   mode="patch-wise" if case["patch"] else "whole volume", per=f"step (batch {case['batch']})")
    elif case["kind"] == "sample":
        row.update(volume=case["volume"], patch_or_window=case["window"] if case["mode"] == "windowed" else "",
                   mode=case["mode"], per="sampling step")
    else:
        row.update(volume=case["size"], mode=case["what"], per="forward" if case["what"] == "net" else "matmul")
    row.update({k: v for k, v in result.items() if k in COLUMNS})
    return row


def per_volume_rows(rows: list[dict]) -> list[dict]:
    """DDIM-50 and DDPM-1000 time per volume, extrapolated from the measured sampling steps."""
    extra = []
    for row in rows:
        if row["kind"] == "sample" and row["status"] == "ok":
            for sampler, steps in (("DDIM", 50), ("DDPM", 1000)):
                extra.append({**row, "kind": f"{sampler}-{steps} volume", "seconds": row["seconds"] * steps,
                              "per": "volume", "note": f"extrapolated: {steps} x measured step"})
    return extra


def print_table(rows: list[dict]) -> None:
    def fmt(value, column):
        if isinstance(value, float):
            if column == "load_before":
                return f"{value:.1f}"
            if column in ("peak_rss_mb", "setup_rss_mb", "gflop_per_s"):
                return f"{value:.0f}"
            return f"{value:.3g}"
        return str(value)

    shown = ["kind", "volume", "patch_or_window", "mode", "precision", "seconds", "per", "peak_rss_mb",
             "gflop_per_s", "load_before", "status"]
    table = [[fmt(r.get(c, ""), c) for c in shown] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(shown)]
    print("  ".join(c.ljust(w) for c, w in zip(shown, widths)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a minute or two)")
    parser.add_argument("--csv", type=Path, default=Path("bench/results/ddpm.csv"), help="where to write the table")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels", type=int, nargs="+", default=None,
                        help="net width per level (default: 32 64 64; with --quick 16 32 32)")
    parser.add_argument("--groups", type=int, default=None, help="GroupNorm groups (default: 16; --quick 8)")
    parser.add_argument("--window", type=int, default=32, help="window side for windowed sampling (= training patch)")
    parser.add_argument("--res-blocks", type=int, default=1)
    parser.add_argument("--overlap", type=float, default=0.25, help="window overlap for windowed sampling")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="bf16 autocast for training and sampling cases")
    parser.add_argument("--both-precisions", action="store_true", help="measure training/sampling in bf16 and fp32")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0, help="address-space limit per measurement")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per measurement (default 300 quick, 1800)")
    parser.add_argument("--only", choices=["train", "sample", "flops"], nargs="+", default=None,
                        help="measure only these kinds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.channels is None:
        args.channels = [16, 32, 32] if args.quick else [32, 64, 64]
    if args.groups is None:
        args.groups = 8 if args.quick else 16
    if args.child:
        run_child(json.loads(args.child))
        return 0

    import pandas as pd

    timeout = args.timeout or (300 if args.quick else 1800)
    cases = [c for c in plan(args) if not args.only or c["kind"] in args.only]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    rows = []
    started = time.perf_counter()
    for i, case in enumerate(cases, 1):
        label = {k: case[k] for k in ("kind", "volume", "patch", "mode", "what", "size", "bf16") if k in case}
        print(f"[{i}/{len(cases)}] {label}", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]  # other work on the machine shows here: timings are only fair near 0
        try:
            done = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], capture_output=True,
                                  text=True, timeout=timeout, env=env)
            lines = done.stdout.strip().splitlines()
            if done.returncode == 0 and lines:
                result = json.loads(lines[-1])
            else:
                killed = done.returncode < 0
                result = {"status": "killed" if killed else "error",
                          "note": (done.stderr.strip().splitlines() or ["?"])[-1][:120]}
        except subprocess.TimeoutExpired:
            result = {"status": f"timeout > {timeout:.0f} s"}
        rows.append({**row_of(case, result), "load_before": round(load, 2)})
    rows += per_volume_rows(rows)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.csv.with_name(f".tmp-{args.csv.name}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, args.csv)
    print_table(rows)
    print(f"\n{len(cases)} measurements in {time.perf_counter() - started:.0f} s; net {args.channels}, "
          f"{args.threads} threads; peak RSS includes about 0.4 GB of imports; load_before = 1-minute load "
          f"average before each measurement (above ~0.5 the machine was busy); table written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
