"""The memory claim at the paper's sizes: patch-wise against whole-volume training, windowed against
whole-volume sampling, measured and computed.

    .venv/bin/python bench/ddpm_memory.py                    # both nets, every size (an hour or two)
    .venv/bin/python bench/ddpm_memory.py --device cuda      # the same on a GPU (its allocator's peak too)
    .venv/bin/python bench/ddpm_memory.py --quick            # tiny sizes, one case per mode (a minute)

Each case (a training step patch-wise or whole-volume, a network call of whole or windowed sampling;
the paper's net and the benchmark's) runs in a fresh process, so its peak is its own; on a CPU
under an address-space limit, so a case that does not fit is an "out of memory" row. A rerun
measures only the cases the CSV lacks. :func:`analytic` counts the live tensors of a step at two
small sides: the memory per voxel, which predicts every size (checked against the measured ones).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

NETS = {
    "paper": {"channels": [32, 64, 128, 128], "num_res_blocks": 2, "norm_num_groups": 32, "patch": [64, 128, 128]},
    "benchmark": {"channels": [16, 32, 32], "num_res_blocks": 1, "norm_num_groups": 8, "patch": [32, 32, 32]},
}
COLUMNS = ["net", "mode", "size", "voxels", "patch_or_window", "overlap", "peak_mb", "cuda_peak_mb", "seconds",
           "per", "estimate_mb", "status", "note", "cpu", "device", "threads"]
GB_LINES = (24, 40, 80)


# --------------------------------------------------------------------------- child side

def _peak_rss_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` (``ru_maxrss`` carries the forked parent's over ``execve``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024                        # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KiB (Linux), without /proc


def _network(net: str, device):
    import torch

    from lungsynth.ddpm.network import build_network, network_config
    from lungsynth.ddpm.settings import NetworkSettings

    spec = {k: v for k, v in NETS[net].items() if k != "patch"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_network(network_config(NetworkSettings.from_config(spec))).to(device)


def child_train(case: dict, device) -> dict:
    """One training step of the real Trainer: patch-wise from a volume, or on the whole volume."""
    import torch

    from lungsynth.ddpm.settings import DdpmSettings
    from lungsynth.ddpm.train import Trainer

    volume = case["size"]
    patch = case["patch"] or volume
    spec = {k: v for k, v in NETS[case["net"]].items() if k != "patch"}
    settings = DdpmSettings.from_config({"network": spec, "training": {
        "patch_size": patch, "batch_size": 1, "bf16": False, "steps": 1000, "nodule_patch_fraction": 0.0}})
    hu = torch.full((1, *volume), -700, dtype=torch.int16)
    trainer = Trainer(settings, hu, torch.zeros_like(hu, dtype=torch.uint8), device, layout="contiguous")
    started = time.perf_counter()
    trainer.step(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - started}


def child_sample(case: dict, device) -> dict:
    """One network call over the volume: whole, or windowed (timed on a few windows)."""
    import torch
    from monai.inferers import sliding_window_inference

    model = _network(case["net"], device).eval().requires_grad_(False)
    size = case["size"]
    x = torch.zeros((1, 5, *size), device=device)
    t = torch.tensor([500], device=device)
    with torch.no_grad():
        if case["mode"] == "sample whole":
            started = time.perf_counter()
            model(x, t)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return {"seconds": time.perf_counter() - started}
        window, overlap, limit = case["patch"], case["overlap"], case["windows"]
        calls = {"n": 0, "seconds": 0.0}

        def predictor(patch):
            calls["n"] += 1
            if calls["n"] > limit:            # memory has peaked: skip the remaining windows' arithmetic
                return torch.zeros((patch.shape[0], 1, *patch.shape[2:]), device=patch.device)
            started = time.perf_counter()
            out = model(patch, t.expand(patch.shape[0]))
            if device.type == "cuda":
                torch.cuda.synchronize()
            calls["seconds"] += time.perf_counter() - started
            return out

        sliding_window_inference(x, roi_size=window, sw_batch_size=1, predictor=predictor, overlap=overlap,
                                 mode="gaussian")
        timed = min(limit, calls["n"])
        return {"seconds": calls["seconds"] / timed * calls["n"],
                "note": f"{calls['n']} windows; seconds = mean of {timed} timed windows x {calls['n']}"}


def run_child(case: dict) -> None:
    if case["device"] == "cpu":   # CUDA reserves far more address space than it uses: no limit there
        limit = int(case["mem_limit_gb"] * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    torch.set_num_threads(case["threads"])
    device = torch.device(case["device"])
    kind = child_train if case["mode"].startswith("train") else child_sample
    try:
        result = kind(case, device)
        result["status"] = "ok"
    except (RuntimeError, MemoryError) as err:
        text = str(err)
        oom = isinstance(err, MemoryError) or "alloc" in text.lower() or "out of memory" in text.lower()
        result = {"status": "out of memory" if oom else "error",
                  "note": text.strip().splitlines()[0][:160] if text.strip() else type(err).__name__}
    result["peak_mb"] = _peak_rss_mb()
    if device.type == "cuda":
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- analytic side

def _peak_live_bytes(step) -> int:
    """The largest total of live tensors during ``step()``: torch's profiler records every tensor
    allocation and release (``profile_memory``); their running sum, in time order, peaks here."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    running = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += event.self_cpu_memory_usage
        peak = max(peak, running)
    return peak


def analytic(net: str, probes=(24, 32)) -> dict:
    """Bytes per voxel that a training step and a sampling call allocate, from the tensors
    themselves: the peak of live tensors (:func:`_peak_live_bytes`) at two small cube sides; the
    allocation pattern scales with the voxels, so the slope between them is the per-voxel
    activation memory and the intercept the fixed part (gradients, AdamW and EMA state)."""
    import torch

    from lungsynth.ddpm.settings import DdpmSettings
    from lungsynth.ddpm.train import Trainer

    spec = {k: v for k, v in NETS[net].items() if k != "patch"}
    model = _network(net, torch.device("cpu")).eval().requires_grad_(False)
    t = torch.tensor([500])
    sample, train = [], []
    for side in probes:
        x = torch.zeros((1, 5, side, side, side))
        with torch.no_grad():
            sample.append(_peak_live_bytes(lambda: model(x, t)))
        settings = DdpmSettings.from_config({"network": spec, "training": {
            "patch_size": [side] * 3, "batch_size": 1, "bf16": False, "steps": 100, "nodule_patch_fraction": 0.0}})
        hu = torch.full((1, side, side, side), -700, dtype=torch.int16)
        trainer = Trainer(settings, hu, torch.zeros_like(hu, dtype=torch.uint8), torch.device("cpu"), "contiguous")
        trainer.step(1)   # the optimizer's state exists from the first step on
        train.append(_peak_live_bytes(lambda: trainer.step(2)))
    voxels = [side**3 for side in probes]
    slope = lambda peaks: (peaks[1] - peaks[0]) / (voxels[1] - voxels[0])  # noqa: E731
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"train_bytes_per_voxel": slope(train), "sample_bytes_per_voxel": slope(sample),
            "fixed_train_bytes": train[0] - slope(train) * voxels[0],
            "fixed_sample_bytes": sample[0] - slope(sample) * voxels[0], "parameter_bytes": params}


def estimate_mb(case: dict, coefficients: dict, baseline_mb: float) -> float:
    """The analytic peak of a case: the baseline of its kind (the net, its optimizer state), the
    activations per voxel, and the volume-sized float32 buffers: for training the data volume; for
    whole sampling the 5-channel input; for windowed sampling the input, the output, its weights'
    sum and the Gaussian map of ``sliding_window_inference``."""
    import numpy as np

    volume, patch = int(np.prod(case["size"])), int(np.prod(case["patch"] or case["size"]))
    if case["mode"].startswith("train"):
        return baseline_mb + (coefficients["train_bytes_per_voxel"] * patch + 2 * 4 * volume) / 2**20
    if case["mode"] == "sample whole":
        return baseline_mb + (coefficients["sample_bytes_per_voxel"] * volume + 5 * 4 * volume) / 2**20
    return baseline_mb + (coefficients["sample_bytes_per_voxel"] * patch + (5 + 1 + 1) * 4 * volume + 4 * patch) / 2**20


# --------------------------------------------------------------------------- parent side

def _row_fields(case: dict) -> dict:
    """The CSV columns that name a case (the voxels of patch-wise training: those of its patch)."""
    import numpy as np

    size = case["size"]
    return {"net": case["net"], "mode": case["mode"], "size": "x".join(map(str, size)),
            "voxels": int(np.prod(case["patch"] or size)) if case["mode"] == "train patch-wise"
            else int(np.prod(size)),
            "patch_or_window": "x".join(map(str, case["patch"])) if case["patch"] else "",
            "overlap": case.get("overlap")}


def _case_key(row: dict) -> str:
    """A case's name, the same for a planned case's fields and its row read back from the CSV."""
    patch, overlap = row.get("patch_or_window"), row.get("overlap")
    overlap = "" if overlap is None or overlap != overlap else f"{float(overlap):g}"
    return f"{row['net']}|{row['mode']}|{row['size']}|{patch if isinstance(patch, str) else ''}|{overlap}"


def in_order(rows: list[dict], todo: list[dict]):
    """The rows as a table in the order of the planned cases, whatever order a resumed run took."""
    import pandas as pd

    rank = {_case_key(_row_fields(c)): i for i, c in enumerate(todo)}
    return (pd.DataFrame(rows).reindex(columns=COLUMNS)
            .assign(_rank=[rank.get(_case_key(r), len(rank)) for r in rows])
            .sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True))


def cases(args) -> list[dict]:
    common = {"threads": args.threads, "mem_limit_gb": args.mem_limit_gb, "device": args.device}
    out = []
    for net in args.nets:
        patch = NETS[net]["patch"] if not args.quick else [16, 16, 16]
        if args.quick:
            trains, patches, samples, windowed = [[32] * 3], [[16] * 3], [[32] * 3], [[32, 32, 48]]
        else:
            trains = [[64] * 3, [128] * 3, [128, 256, 256], [256] * 3]
            patches = [[32] * 3, [64] * 3, [64, 128, 128]]
            samples = [[64] * 3, [128] * 3, [128, 256, 256], [256] * 3, [256, 512, 512]]
            windowed = [[128, 256, 256], [256, 512, 512]]
        big = max(trains, key=lambda s: s[0] * s[1] * s[2])
        for p in patches:
            out.append({**common, "net": net, "mode": "train patch-wise", "size": big, "patch": p})
        for size in trains:
            out.append({**common, "net": net, "mode": "train whole volume", "size": size, "patch": None})
        for size in samples:
            out.append({**common, "net": net, "mode": "sample whole", "size": size, "patch": None})
        for size in windowed:
            for overlap in ([0.5] if args.quick else [0.5, 0.25]):
                out.append({**common, "net": net, "mode": "sample windowed", "size": size, "patch": patch,
                            "overlap": overlap, "windows": 2 if args.quick else 3})
    return out


def measure(case: dict, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(case["threads"]))
    try:
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], capture_output=True,
                              text=True, timeout=timeout, env=env)
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            return json.loads(lines[-1])
        return {"status": "killed" if done.returncode < 0 else "error",
                "note": (done.stderr.strip().splitlines() or ["?"])[-1][:160]}
    except subprocess.TimeoutExpired:
        return {"status": f"timeout > {timeout:.0f} s"}


def baseline_mb(args, net: str, mode: str) -> float:
    """Peak RSS of the same kind of case at 16^3 (imports, kernel caches, the net): the part of a
    case's memory that does not grow with the voxels, the estimate's intercept."""
    result = measure({"threads": args.threads, "mem_limit_gb": args.mem_limit_gb, "device": args.device,
                      "net": net, "mode": mode, "size": [16, 16, 16], "patch": None}, 600)
    return float(result.get("peak_mb", 0.0))


def plot(table, out_png: Path) -> None:
    """Peak memory against voxels per net and mode: measured (solid), analytic (dotted), x = did not fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = list(dict.fromkeys(table["net"]))
    fig, axes = plt.subplots(1, len(nets), figsize=(6.5 * len(nets), 4.6), squeeze=False)
    for ax, net in zip(axes[0], nets):
        for (mode, overlap), group in table[table["net"] == net].groupby(["mode", "overlap"], dropna=False, sort=False):
            group = group.sort_values("voxels")
            ok, failed = group[group["status"] == "ok"], group[group["status"] != "ok"]
            line, = ax.plot(ok["voxels"], ok["peak_mb"] / 1024, "-o",
                            label=mode + (f", overlap {overlap:g}" if mode == "sample windowed" else ""))
            ax.plot(group["voxels"], group["estimate_mb"] / 1024, ":", color=line.get_color(), linewidth=1)
            ax.plot(failed["voxels"], failed["estimate_mb"] / 1024, "x", color=line.get_color(), markersize=9)
        for gb in GB_LINES:
            ax.axhline(gb, color="gray", linewidth=0.8, linestyle="-.")
        ax.set(xscale="log", yscale="log", xlabel="voxels (patch-wise training: of the patch)",
               ylabel="peak memory (GiB)", title=f"{net} net (dash-dot: {', '.join(map(str, GB_LINES))} GB)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one case per mode")
    p.add_argument("--nets", nargs="+", choices=sorted(NETS), default=["paper", "benchmark"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--mem-limit-gb", type=float, default=20.0, help="address-space limit of each CPU case")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "memory.csv")
    p.add_argument("--png", type=Path, default=None, help="the plot (default: beside the CSV)")
    p.add_argument("--fresh", action="store_true", help="measure every case again (default: resume the CSV)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(json.loads(args.child))
        return 0
    if args.quick:
        args.nets = ["benchmark"]

    import pandas as pd

    from lungsynth.io import write_csv
    from lungsynth.runtime import cpu_description

    base = {(net, kind): baseline_mb(args, net, mode) for net in args.nets
            for kind, mode in (("train", "train whole volume"), ("sample", "sample whole"))}
    coefficients = {net: analytic(net) for net in args.nets}
    todo = cases(args)
    done = pd.read_csv(args.csv, dtype={"patch_or_window": str}) if args.csv.exists() and not args.fresh else None
    rows = [] if done is None else done.to_dict("records")
    measured = {_case_key(r) for r in rows}
    for i, case in enumerate(todo, 1):
        if _case_key(_row_fields(case)) in measured:
            continue
        print(f"[{i}/{len(todo)}] {case['net']} {case['mode']} {case['size']} {case.get('patch')} "
              f"{case.get('overlap', '')}", file=sys.stderr, flush=True)
        result = measure(case, args.timeout)
        rows.append({**_row_fields(case), "peak_mb": result.get("peak_mb"),
                     "cuda_peak_mb": result.get("cuda_peak_mb"), "seconds": result.get("seconds"),
                     "per": "training step" if case["mode"].startswith("train") else "network call",
                     "estimate_mb": estimate_mb(case, coefficients[case["net"]],
                                                base[case["net"], "train" if case["mode"].startswith("train")
                                                     else "sample"]),
                     "status": result.get("status"), "note": result.get("note", ""), "cpu": cpu_description(),
                     "device": args.device, "threads": args.threads})
        print(f"    {rows[-1]['status']}: peak {rows[-1]['peak_mb']} MB (estimate {rows[-1]['estimate_mb']:.0f}), "
              f"{rows[-1]['seconds']} s", file=sys.stderr, flush=True)
        write_csv(args.csv, in_order(rows, todo), float_format="%.4g")
    table = in_order(rows, todo)
    plot(table, args.png or args.csv.with_suffix(".png"))
    coefficient_table = pd.DataFrame([{"net": n, **c, "baseline_train_mb": base[n, "train"],
                                       "baseline_sample_mb": base[n, "sample"]} for n, c in coefficients.items()])
    print(table.drop(columns=["cpu", "device"]).to_string(index=False))
    write_csv(args.csv.with_name(args.csv.stem + "_analytic.csv"), coefficient_table, float_format="%.5g")
    print(f"\nanalytic coefficients:\n{coefficient_table.to_string(index=False)}")
    print(f"{cpu_description()}; written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
