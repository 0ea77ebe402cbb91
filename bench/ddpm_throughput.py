"""Steps per CPU-second of a DDPM training step, by kernel choice, and the FLOP/s it achieves.

    .venv/bin/python bench/ddpm_throughput.py --csv docs/benchmark/ddpm_throughput.csv
    .venv/bin/python bench/ddpm_throughput.py --quick          # tiny net, a minute

In one run on this machine, each case in a fresh process (its own thread count): one training step
(forward + backward + AdamW + EMA, through :class:`lungsynth.ddpm.train.Trainer`) of each net at
each patch shape, in fp32, fp32 + channels_last_3d, bf16 autocast, bf16 + channels_last_3d and
torch.compile (fp32 and bf16), with 1 and 2 threads; then a plain matmul in fp32 and bf16. The
FLOPs of a step are counted by ``torch.utils.flop_counter.FlopCounterMode`` over forward and
backward, so ``gflop_per_s`` of a step can be read against the matmul's (the machine's practical
peak). Every row carries the CPU model and its kernel flags: bf16 is 2x faster than fp32 on one
machine and 90x slower on another, so only rows of one run compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

COLUMNS = ["net", "patch", "batch", "variant", "threads", "seconds_per_step", "steps_per_cpu_minute",
           "gflop_per_step", "gflop_per_s", "status", "note", "cpu", "torch"]
VARIANTS = {  # name -> (bf16 autocast, memory layout, torch.compile)
    "fp32": (False, "contiguous", False),
    "fp32 channels_last_3d": (False, "channels_last", False),
    "bf16": (True, "contiguous", False),
    "bf16 channels_last_3d": (True, "channels_last", False),
    "fp32 compile": (False, "contiguous", True),
    "bf16 compile": (True, "contiguous", True),
}


def child(case: dict) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lungsynth.ddpm.settings import DdpmSettings
    from lungsynth.ddpm.train import Trainer
    from lungsynth.runtime import bf16_is_used

    torch.set_num_threads(case["threads"])
    bf16, layout, compiled = VARIANTS[case["variant"]]
    if case["what"] == "matmul":
        n, dtype = case["size"], torch.bfloat16 if bf16 else torch.float32
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        started = time.perf_counter()
        for _ in range(case["repeats"]):
            a @ b
        seconds = (time.perf_counter() - started) / case["repeats"]
        return {"seconds_per_step": seconds, "gflop_per_step": 2 * n**3 / 1e9}
    settings = DdpmSettings.from_config({
        "network": {"channels": case["channels"], "norm_num_groups": 8},
        "schedule": {"prediction_type": "v_prediction"},
        "training": {"patch_size": [case["patch"]] * 3, "batch_size": case["batch"], "bf16": bf16,
                     "steps": 10_000, "warmup_steps": 0}})
    g = torch.Generator().manual_seed(0)
    side = max(64, case["patch"])
    hu = (torch.randn((2, side, side, side), generator=g) * 300 - 700).to(torch.int16)
    nodules = torch.zeros_like(hu, dtype=torch.uint8)
    nodules[:, side // 2 - 3:side // 2 + 3, side // 2 - 3:side // 2 + 3, side // 2 - 3:side // 2 + 3] = 1
    trainer = Trainer(settings, hu, nodules, torch.device("cpu"), layout)
    used = bf16_is_used(torch.device("cpu"), bf16)
    with FlopCounterMode(display=False) as counter:
        trainer.step(1)
    flops = counter.get_total_flops()
    if compiled:
        trainer.model = torch.compile(trainer.model)
    started = time.perf_counter()
    trainer.step(2)   # warm-up (and compilation)
    warm_up = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    for step in range(3, 3 + case["repeats"]):
        trainer.step(step)
    seconds = (time.perf_counter() - started) / case["repeats"]
    return {"seconds_per_step": seconds, "gflop_per_step": flops / 1e9,
            "note": f"warm-up {warm_up:.1f} s; {(time.process_time() - cpu) / case['repeats']:.2f} CPU s/step"
                    + ("; bf16 asked for, fp32 run (no fast bf16 kernels)" if bf16 and not used else "")}


def cases(args) -> list[dict]:
    """Every kernel variant and thread count for the benchmark's net at its patch; fp32 and bf16 on
    one thread for the wider nets and other patch shapes."""
    out = []
    for n, channels in enumerate(args.nets):
        for p, (patch, batch) in enumerate(args.patches):
            full = n == 0 and p == 0
            for variant in VARIANTS if full else ("fp32", "bf16"):
                if "compile" in variant and args.no_compile:
                    continue
                for threads in args.threads if full else args.threads[:1]:
                    out.append({"what": "step", "channels": channels, "patch": patch, "batch": batch,
                                "variant": variant, "threads": threads, "repeats": args.repeats})
    for variant in ("fp32", "bf16"):
        for threads in args.threads:
            out.append({"what": "matmul", "size": 1024 if args.quick else 2048, "variant": variant,
                        "threads": threads, "repeats": 10})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "ddpm_throughput.csv")
    p.add_argument("--quick", action="store_true", help="the tiny net, one patch, 1 thread, no compile")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    if args.quick:
        args.nets, args.patches, args.threads, args.no_compile, args.repeats = [[8, 16, 16]], [(16, 2)], [1], True, 2
    else:
        args.nets = [[16, 32, 32], [16, 32, 64, 128]]
        args.patches, args.threads = [(32, 2), (24, 4)], [1, 2]

    import pandas as pd
    import torch

    from lungsynth.io import write_csv
    from lungsynth.runtime import cpu_description

    rows, todo = [], cases(args)
    for i, case in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {case}", file=sys.stderr, flush=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(case["threads"]))
        row = {"net": "matmul" if case["what"] == "matmul" else "-".join(map(str, case["channels"])),
               "patch": case.get("patch", case.get("size")), "batch": case.get("batch", ""),
               "variant": case["variant"], "threads": case["threads"], "cpu": cpu_description(),
               "torch": torch.__version__}
        try:
            done = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], capture_output=True,
                                  text=True, timeout=args.timeout, env=env)
            lines = done.stdout.strip().splitlines()
            if done.returncode == 0 and lines:
                row.update(json.loads(lines[-1]), status="ok")
            else:
                row.update(status="error", note=(done.stderr.strip().splitlines() or ["?"])[-1][:160])
        except subprocess.TimeoutExpired:
            row.update(status=f"timeout > {args.timeout:.0f} s")
        if row.get("seconds_per_step"):
            row["steps_per_cpu_minute"] = 60.0 / (row["seconds_per_step"] * row["threads"])
            row["gflop_per_s"] = row["gflop_per_step"] / row["seconds_per_step"]
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    write_csv(args.csv, table, float_format="%.4g")
    print(table.drop(columns=["cpu", "torch"]).to_string(index=False))
    print(f"\n{cpu_description()}; torch {torch.__version__}; written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
