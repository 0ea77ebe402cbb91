"""Peak memory at the paper's sizes, each case in a fresh process so its peak is its own.

    .venv/bin/python bench/memory.py net                    # both nets, every size (an hour or two)
    .venv/bin/python bench/memory.py net --device cuda      # the same on a GPU (its allocator's peak too)
    .venv/bin/python bench/memory.py net --quick            # tiny sizes, one case per mode (a minute)
    .venv/bin/python bench/memory.py rules --csv docs/benchmark/paper_scale.csv   # 553 crops (~30 min)
    .venv/bin/python bench/memory.py rules --quick          # 12 crops of 32 x 64 x 64 (a minute)

``net``: patch-wise against whole-volume training, windowed against whole sampling, paper and benchmark
nets (memory.csv); on a CPU under an address-space limit (what does not fit: "out of memory"); a rerun
measures only what the CSV lacks; :func:`analytic`: memory per voxel, every size (memory_analytic.csv).

``rules``: train_ddpm (its data path, one 32^3 step: at the paper's patch the activations live on the
GPU), synthetic_quality, nnunet_plan and synthetic_fidelity (a one-iteration nnU-Net predicting) at
config/lidc.yaml's size against what each asks (lungsynth.resources; paper_scale.csv), on
one stand-in chest crop (body, lungs, a nodule, noise) linked under every case name.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchlib import ROOT, first_line, timed

NETS = {  # network settings, training patch
    "paper": ({"channels": [32, 64, 128, 128], "num_res_blocks": 2, "norm_num_groups": 32}, [64, 128, 128]),
    "benchmark": ({"channels": [16, 32, 32], "num_res_blocks": 1, "norm_num_groups": 8}, [32, 32, 32]),
}
COLUMNS = ["net", "mode", "size", "voxels", "patch_or_window", "overlap", "peak_mb", "cuda_peak_mb", "seconds",
           "per", "estimate_mb", "status", "note", "cpu", "device", "threads"]
RULE_COLUMNS = ["rule", "cases", "volume", "measured_peak_mb", "mem_mb_asked", "seconds", "note", "cpu"]


# --------------------------------------------------------------------------- child side

def _peak_rss_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` (``ru_maxrss`` carries the forked parent's over ``execve``)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024                        # kB


def _ddpm_settings(net: str, patch, steps: int):
    """DdpmSettings of a net of NETS, one fp32 patch a step."""
    from lungsynth.ddpm.settings import DdpmSettings

    return DdpmSettings.from_config({"network": NETS[net][0], "training": {
        "patch_size": list(patch), "batch_size": 1, "bf16": False, "steps": steps, "nodule_patch_fraction": 0.0}})


def _trainer(settings, volume, device, hu=None, nodules=None):
    """The real Trainer on ``hu`` (default: one flat -700 HU volume of size ``volume``)."""
    import torch

    from lungsynth.ddpm.train import Trainer

    hu = torch.full((1, *volume), -700, dtype=torch.int16) if hu is None else hu
    nodules = torch.zeros_like(hu, dtype=torch.uint8) if nodules is None else nodules
    return Trainer(settings, hu, nodules, device, "contiguous")


def _network(net: str, device):
    import torch

    from lungsynth.ddpm.network import build_network, network_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_network(network_config(_ddpm_settings(net, [16] * 3, 1).network)).to(device)


def child_train(case: dict, device) -> dict:
    """One training step of the real Trainer: patch-wise from a volume, or on the whole volume."""
    trainer = _trainer(_ddpm_settings(case["net"], case["patch"] or case["size"], 1000), case["size"], device)
    return {"seconds": timed(device, lambda i: trainer.step(1))}


def child_sample(case: dict, device) -> dict:
    """One network call over the volume: whole, or windowed (timed on a few windows)."""
    import torch
    from monai.inferers import sliding_window_inference

    model = _network(case["net"], device).eval().requires_grad_(False)
    x = torch.zeros((1, 5, *case["size"]), device=device)
    t = torch.tensor([500], device=device)
    with torch.no_grad():
        if case["mode"] == "sample whole":
            return {"seconds": timed(device, lambda i: model(x, t))}
        limit, calls = case["windows"], {"n": 0, "seconds": 0.0}

        def predictor(patch):
            calls["n"] += 1
            if calls["n"] > limit:            # memory has peaked: skip the remaining windows' arithmetic
                return torch.zeros((patch.shape[0], 1, *patch.shape[2:]), device=patch.device)
            out = {}
            calls["seconds"] += timed(device, lambda i: out.update(y=model(patch, t.expand(patch.shape[0]))))
            return out["y"]

        sliding_window_inference(x, roi_size=case["patch"], sw_batch_size=1, predictor=predictor,
                                 overlap=case["overlap"], mode="gaussian")
        n_timed = min(limit, calls["n"])
        return {"seconds": calls["seconds"] / n_timed * calls["n"],
                "note": f"{calls['n']} windows; seconds = mean of {n_timed} timed windows x {calls['n']}"}


def child_net(case: dict) -> dict:
    if case["device"] == "cpu":   # CUDA reserves far more address space than it uses: no limit there
        resource.setrlimit(resource.RLIMIT_AS, (int(case["mem_limit_gb"] * 2**30),) * 2)   # soft, hard
    import torch

    torch.set_num_threads(case["threads"])
    device = torch.device(case["device"])
    try:
        result = {**(child_train if case["mode"].startswith("train") else child_sample)(case, device), "status": "ok"}
    except (RuntimeError, MemoryError) as err:
        text = str(err).lower()
        oom = isinstance(err, MemoryError) or "alloc" in text or "out of memory" in text
        result = {"status": "out of memory" if oom else "error", "note": first_line(err, 160)}
    if device.type == "cuda":
        result["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def rule_train_ddpm(spec: dict) -> str:
    import torch

    from lungsynth.ddpm.settings import DdpmSettings
    from lungsynth.pipeline.ddpm import read_training_set

    hu, nodules, _ = read_training_set(spec["images"], spec["masks"])
    settings = DdpmSettings.from_config({"network": {"channels": [8, 16, 16], "norm_num_groups": 8},
                                         "intensity": {"mean_image": True},
                                         "training": {"patch_size": [32, 32, 32], "batch_size": 1, "steps": 10,
                                                      "nodule_patch_fraction": 0.2}})
    _trainer(settings, None, torch.device("cpu"), torch.from_numpy(hu), torch.from_numpy(nodules)).step(1)
    return "read_training_set + Trainer (mean image, patch sampler) + one 32^3 step (host side)"


def rule_synthetic_quality(spec: dict) -> str:
    from lungsynth.pipeline.ddpm import quality

    n = spec["synthetic"]
    quality(spec["images"][:n], spec["masks"][:n], spec["images"], Path(spec["scratch"]) / "quality.csv",
            spec["config"]["quality"])
    return f"{len(spec['images'])} real crops as reference, {n} synthetic volumes scored"


def rule_nnunet_plan(spec: dict) -> str:
    from lungsynth.pipeline.nnunet import plan, raw_dataset

    n, scratch = spec["plan_cases"], Path(spec["scratch"])
    train, validation = (spec["images"][:n], spec["masks"][:n]), (spec["images"][n:n + 2], spec["masks"][n:n + 2])
    raw_dataset("Real", {"real": train}, validation, scratch / "raw", "Dataset901_Real", "symlink")
    plan(scratch / "raw", scratch / "preprocessed", spec["config"]["nnunet"]["plan"], spec["threads"])
    return f"nnU-Net's own plan, {n + 2} cases in {spec['threads']} processes"


def nnunet_model(spec: dict) -> str:
    """Not a row: a Real run of lidc.yaml's plan (nnU-Net's own) trained for one iteration, for the
    fidelity rule to predict with (its memory does not depend on how well it was trained)."""
    from lungsynth.pipeline.nnunet import plan, raw_dataset, train

    n, scratch, nnunet = spec["plan_cases"], Path(spec["scratch"]), spec["config"]["nnunet"]
    train_set, validation = (spec["images"][:n], spec["masks"][:n]), (spec["images"][n:n + 2], spec["masks"][n:n + 2])
    raw_dataset("Real", {"real": train_set}, validation, scratch / "raw", "Dataset901_Real", "symlink")
    plan(scratch / "raw", scratch / "preprocessed", nnunet["plan"], spec["threads"])
    short = {**nnunet["train"], "epochs": 1, "iterations_per_epoch": 1, "val_iterations_per_epoch": 1,
             "augmentation_workers": 0}
    train("Real", 1, scratch / "preprocessed", spec["model"], nnunet["plan"], short, 1, spec["threads"], 1, "cpu")
    return "one iteration"


def rule_synthetic_fidelity(spec: dict) -> str:
    from lungsynth.pipeline.fidelity import fidelity_dice

    n, config = spec["synthetic"], spec["config"]
    pairs = {f"synthetic-{i}": (spec["images"][i], spec["masks"][i]) for i in range(n)}
    fidelity_dice([spec["model"]], pairs, {**config["nnunet"]["predict"], "mirroring": False}, spec["threads"],
                  config["execution"]["nnunet_tile_batch"], config["preprocess"]["lung_threshold_hu"], "cpu")
    return (f"one Real run (nnU-Net's own plan) predicts {n} volumes, one at a time, without mirroring "
            "(the same buffers, 8x the time on a CPU); network activations in host memory here, on the GPU there")


ROW_RULES = ["train_ddpm", "synthetic_quality", "nnunet_plan", "synthetic_fidelity"]
ASKED_AS = {"nnunet_model": "nnunet_train"}   # what a setup step's threads follow
RULES = {"train_ddpm": rule_train_ddpm, "synthetic_quality": rule_synthetic_quality, "nnunet_plan": rule_nnunet_plan,
         "nnunet_model": nnunet_model, "synthetic_fidelity": rule_synthetic_fidelity}


def run_child(case: dict) -> None:
    result = {"note": RULES[case["rule"]](case), "status": "ok"} if "rule" in case else child_net(case)
    print(json.dumps({**result, "peak_mb": _peak_rss_mb()}), flush=True)


# --------------------------------------------------------------------------- parent side

def measure(case: dict, timeout: float | None) -> dict:
    """A case (a net's, or a rule's code if it names one) in a child process: its result and peak; for a
    rule the larger of that and its process tree's summed PSS (shared pages once, as a cgroup counts;
    sampled every 0.2 s), and its wall time."""
    import psutil

    started, tree_peak = time.perf_counter(), 0.0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(case)], stdout=out, stderr=err,
                                 env={**os.environ, "OMP_NUM_THREADS": str(case["threads"])})
        while child.poll() is None:
            if timeout and time.perf_counter() - started > timeout:
                child.kill()
                child.wait()
                return {"status": f"timeout > {timeout:.0f} s"}
            if "rule" in case:
                try:
                    members = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
                    tree_peak = max(tree_peak, sum(p.memory_full_info().pss for p in members) / 2**20)
                except psutil.Error:
                    pass
            time.sleep(0.2 if "rule" in case else 0.05)
        out.seek(0), err.seek(0)
        lines, stderr = out.read().strip().splitlines(), err.read().strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"status": "killed" if child.returncode < 0 else "error", "note": (stderr or ["?"])[-1][:160]}
    result = json.loads(lines[-1])
    if "rule" in case:
        result.update(peak_mb=max(result["peak_mb"], tree_peak), seconds=time.perf_counter() - started)
    return result


def analytic(net: str, probes=(24, 32)) -> dict:
    """Bytes per voxel a training step and a sampling call allocate: the peak of live tensors (the
    running sum of torch's profiler's allocations and releases) at two small cube sides; the slope is
    the per-voxel activation memory, the intercept the fixed part (gradients, AdamW and EMA state)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    def peak_live_bytes(step) -> int:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        running = peak = 0
        for event in sorted(prof.events(), key=lambda e: e.time_range.start):
            running += event.self_cpu_memory_usage
            peak = max(peak, running)
        return peak

    model = _network(net, torch.device("cpu")).eval().requires_grad_(False)
    t = torch.tensor([500])
    sample, train = [], []
    for side in probes:
        x = torch.zeros((1, 5, side, side, side))
        with torch.no_grad():
            sample.append(peak_live_bytes(lambda: model(x, t)))
        trainer = _trainer(_ddpm_settings(net, [side] * 3, 100), [side] * 3, torch.device("cpu"))
        trainer.step(1)   # the optimizer's state exists from the first step on
        train.append(peak_live_bytes(lambda: trainer.step(2)))
    voxels = [side**3 for side in probes]
    slope = lambda peaks: (peaks[1] - peaks[0]) / (voxels[1] - voxels[0])  # noqa: E731
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"train_bytes_per_voxel": slope(train), "sample_bytes_per_voxel": slope(sample),
            "fixed_train_bytes": train[0] - slope(train) * voxels[0],
            "fixed_sample_bytes": sample[0] - slope(sample) * voxels[0], "parameter_bytes": params}


def estimate_mb(case: dict, coefficients: dict, baseline_mb: float) -> float:
    """A case's analytic peak: its kind's baseline (the net, its optimizer state), the activations per voxel,
    the volume-sized float32 buffers (training: the data volume; whole sampling: the 5-channel input;
    windowed: the input, the output, its weights' sum and ``sliding_window_inference``'s Gaussian map)."""
    volume, patch = int(np.prod(case["size"])), int(np.prod(case["patch"] or case["size"]))
    if case["mode"].startswith("train"):
        return baseline_mb + (coefficients["train_bytes_per_voxel"] * patch + 2 * 4 * volume) / 2**20
    if case["mode"] == "sample whole":
        return baseline_mb + (coefficients["sample_bytes_per_voxel"] * volume + 5 * 4 * volume) / 2**20
    return baseline_mb + (coefficients["sample_bytes_per_voxel"] * patch + (5 + 1 + 1) * 4 * volume + 4 * patch) / 2**20


def _row_fields(case: dict) -> dict:
    """The CSV columns that name a case (the voxels of patch-wise training: those of its patch)."""
    size, patch = case["size"], case["patch"]
    return {"net": case["net"], "mode": case["mode"], "size": "x".join(map(str, size)),
            "voxels": int(np.prod(patch if case["mode"] == "train patch-wise" else size)),
            "patch_or_window": "x".join(map(str, patch)) if patch else "", "overlap": case.get("overlap")}


def _case_key(row: dict) -> tuple:
    """A case's name, the same for a planned case's fields and its row read back from the CSV."""
    return tuple("" if v is None or v != v else f"{v:g}" if isinstance(v, float) else str(v)
                 for v in (row[k] for k in ("net", "mode", "size", "patch_or_window", "overlap")))


def in_order(rows: list[dict], todo: list[dict]):
    """The rows as a table in the order of the planned cases, whatever order a resumed run took."""
    import pandas as pd

    rank = {_case_key(_row_fields(c)): i for i, c in enumerate(todo)}
    return pd.DataFrame(sorted(rows, key=lambda r: rank.get(_case_key(r), len(rank))), columns=COLUMNS)


def cases(args) -> list[dict]:
    common = {"threads": args.threads, "mem_limit_gb": args.mem_limit_gb, "device": args.device}
    if args.quick:
        trains, patches, samples, windowed = [[32] * 3], [[16] * 3], [[32] * 3], [[32, 32, 48]]
    else:
        trains = [[64] * 3, [128] * 3, [128, 256, 256], [256] * 3]
        patches = [[32] * 3, [64] * 3, [64, 128, 128]]
        samples = [[64] * 3, [128] * 3, [128, 256, 256], [256] * 3, [256, 512, 512]]
        windowed = [[128, 256, 256], [256, 512, 512]]
    big = max(trains, key=lambda s: s[0] * s[1] * s[2])
    out = []
    for net in args.nets:
        out += [{**common, "net": net, "mode": "train patch-wise", "size": big, "patch": p} for p in patches]
        out += [{**common, "net": net, "mode": "train whole volume", "size": s, "patch": None} for s in trains]
        out += [{**common, "net": net, "mode": "sample whole", "size": s, "patch": None} for s in samples]
        out += [{**common, "net": net, "mode": "sample windowed", "size": s, "overlap": overlap,
                 "patch": [16, 16, 16] if args.quick else NETS[net][1], "windows": 2 if args.quick else 3}
                for s in windowed for overlap in ([0.5] if args.quick else [0.5, 0.25])]
    return out


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
        for gb in (24, 40, 80):
            ax.axhline(gb, color="gray", linewidth=0.8, linestyle="-.")
        ax.set(xscale="log", yscale="log", xlabel="voxels (patch-wise training: of the patch)",
               ylabel="peak memory (GiB)", title=f"{net} net (dash-dot: 24, 40, 80 GB)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


def net(args) -> int:
    import pandas as pd

    from lungsynth.io import write_csv
    from lungsynth.runtime import cpu_description

    if args.quick:
        args.nets = ["benchmark"]
    todo = cases(args)
    # the baseline: the peak of the same kind of case at 16^3 (imports, kernel caches, the net), the
    # part of a case's memory that does not grow with the voxels: the estimate's intercept
    base = {(case["net"], case["mode"].split()[0]): float(measure(case, 600).get("peak_mb", 0.0)) for case in
            [{**todo[0], "net": net, "mode": mode, "size": [16] * 3, "patch": None} for net in args.nets
             for mode in ("train whole volume", "sample whole")]}
    coefficients = {net: analytic(net) for net in args.nets}
    done = pd.read_csv(args.csv, dtype={"patch_or_window": str}) if args.csv.exists() and not args.fresh else None
    rows = [] if done is None else done.to_dict("records")
    measured = {_case_key(r) for r in rows}
    for i, case in enumerate(todo, 1):
        if _case_key(_row_fields(case)) in measured:
            continue
        print(f"[{i}/{len(todo)}] {case['net']} {case['mode']} {case['size']} {case.get('patch')} "
              f"{case.get('overlap', '')}", file=sys.stderr, flush=True)
        result, kind = measure(case, args.timeout), case["mode"].split()[0]
        rows.append({**_row_fields(case), **{k: result.get(k) for k in ("peak_mb", "cuda_peak_mb", "seconds")},
                     "per": "training step" if kind == "train" else "network call",
                     "estimate_mb": estimate_mb(case, coefficients[case["net"]], base[case["net"], kind]),
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


def stand_in_crops(folder: Path, cases: int, size, spacing) -> tuple[list[str], list[str]]:
    """``cases`` image and mask paths on the grid ``size`` (z, y, x) at ``spacing`` mm, all links to
    one stand-in chest crop."""
    from lungsynth.io import Geometry, write_nifti

    image_file, mask_file = folder / "stand-in.nii.gz", folder / "stand-in-mask.nii.gz"
    if not image_file.exists():
        z, y, x = (np.indices(size, dtype=np.float32) - (np.asarray(size, np.float32)[:, None, None, None] - 1) / 2)
        z, y, x = z * spacing[0], y * spacing[1], x * spacing[2]
        body = (y / (0.45 * size[1] * spacing[1])) ** 2 + (x / (0.45 * size[2] * spacing[2])) ** 2 <= 1
        lungs = body & (((np.abs(x) - 0.2 * size[2] * spacing[2]) / (0.15 * size[2] * spacing[2])) ** 2
                        + (y / (0.3 * size[1] * spacing[1])) ** 2 <= 1)
        nodule = (z ** 2 + y ** 2 + (x - 0.2 * size[2] * spacing[2]) ** 2) <= 8.0 ** 2
        hu = np.where(body, 40, -1000) + np.where(lungs, -890, 0) + np.where(nodule, 880, 0)
        hu = hu + np.random.default_rng(0).normal(0, 20, size)
        geometry = Geometry(tuple(float(s) for s in spacing[::-1]), (0.0, 0.0, 0.0))
        write_nifti(mask_file, nodule.astype(np.uint8), geometry)
        write_nifti(image_file, hu.astype(np.int16), geometry)
    names = [f"LIDC-IDRI-{index:04d}.nii.gz" for index in range(cases)]
    for target, kind in ((image_file, "images"), (mask_file, "masks")):
        (folder / kind).mkdir(exist_ok=True)
        for name in names:
            if not (folder / kind / name).exists():
                (folder / kind / name).symlink_to(target)
    return [str(folder / "images" / n) for n in names], [str(folder / "masks" / n) for n in names]


def rules(args) -> int:
    import pandas as pd

    from lungsynth.config import load_config
    from lungsynth.io import write_csv
    from lungsynth.resources import Counts, rule_request
    from lungsynth.runtime import cpu_description

    config = load_config(ROOT / "config" / "lidc.yaml")
    size, spacing = config["preprocess"]["volume_size"], config["preprocess"]["target_spacing"]
    if args.quick:
        size = config["preprocess"]["volume_size"] = [32, 64, 64]
    cases = args.cases or (12 if args.quick else 553)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="paper-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    images, masks = stand_in_crops(workdir, cases, size, spacing)
    counts = Counts.from_config(config, round(cases * 833 / 553))   # `cases` training crops, the paper's split
    volume, rows = "x".join(map(str, size)), []

    def run(rule: str, n: int, scratch: Path | None = None) -> dict:
        """``rule``'s code on every crop (``n``: the cases nnunet_plan plans, the volumes fidelity predicts)."""
        with tempfile.TemporaryDirectory(dir=workdir) as temporary:
            return measure({"rule": rule, "images": images, "masks": masks,
                            "scratch": str(scratch or temporary), "model": str(workdir / "nnunet-model"),
                            "threads": rule_request(ASKED_AS.get(rule, rule), config, counts).threads,
                            "synthetic": n if rule == "synthetic_fidelity" else 3 if args.quick else 10,
                            "plan_cases": n, "config": config}, None)

    def add(rule: str, n: int, result: dict, note: str = "") -> None:
        peak = result.get("peak_mb", float("nan"))   # none if the child failed
        if result.get("status") != "ok":
            note = f"failed ({result.get('status')}): {result.get('note', '')}"
        asked = rule_request(rule, config, counts).mem_mb
        rows.append({"rule": rule, "cases": n, "volume": volume, "measured_peak_mb": round(peak, 1),
                     "mem_mb_asked": asked, "seconds": round(result.get("seconds", float("nan")), 1),
                     "note": note or result["note"], "cpu": cpu_description()})
        print(f"{rule:22} {n:5} cases {volume}: peak {peak:9.0f} MB, asked {asked:7} MB "
              f"({rows[-1]['seconds']} s) {note}", flush=True)

    wanted, plan_cases = set(args.only or ROW_RULES), 6 if args.quick else 8
    for rule, n in (("train_ddpm", cases), ("synthetic_quality", cases), ("nnunet_plan", plan_cases),
                    ("synthetic_fidelity", 2)):
        if rule == "synthetic_fidelity" and rule in wanted and not (workdir / "nnunet-model").exists():
            model = run("nnunet_model", plan_cases, workdir / "nnunet-scratch")   # what fidelity predicts with
            if model.get("status") != "ok":
                print(f"nnU-Net model for synthetic_fidelity: {model}", file=sys.stderr)
        if rule in wanted:
            add(rule, n, run(rule, n))
    if args.csv:
        table = pd.DataFrame(rows, columns=RULE_COLUMNS)
        if args.only and args.csv.exists():   # the other rows as they were measured
            kept = pd.read_csv(args.csv)
            table = pd.concat([kept[~kept["rule"].isin(wanted)], table], ignore_index=True)
        write_csv(args.csv, table)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:   # one case, in the process measure() starts
        run_child(json.loads(argv[1]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="part", required=True)
    n = sub.add_parser("net", help="the DDPM's nets: patch-wise and whole-volume training, windowed and whole sampling")
    n.add_argument("--quick", action="store_true", help="tiny sizes, one case per mode")
    n.add_argument("--nets", nargs="+", choices=sorted(NETS), default=["paper", "benchmark"])
    n.add_argument("--threads", type=int, default=2)
    n.add_argument("--device", default="cpu", help="cpu or cuda")
    n.add_argument("--mem-limit-gb", type=float, default=20.0, help="address-space limit of each CPU case")
    n.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    n.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "memory.csv")
    n.add_argument("--png", type=Path, default=None, help="the plot (default: beside the CSV)")
    n.add_argument("--fresh", action="store_true", help="measure every case again (default: resume the CSV)")
    r = sub.add_parser("rules", help="the heavy workflow rules at config/lidc.yaml's size against what they ask")
    r.add_argument("--quick", action="store_true", help="12 crops of 32 x 64 x 64")
    r.add_argument("--cases", type=int, default=None, help="training crops (default 553, quick 12)")
    r.add_argument("--csv", type=Path, default=None, help="write the table (e.g. docs/benchmark/paper_scale.csv)")
    r.add_argument("--only", nargs="+", choices=ROW_RULES, help="measure these rows (the CSV keeps its others)")
    r.add_argument("--workdir", type=Path, default=None, help="the stand-in crops' folder (default: a new one)")
    args = p.parse_args(argv)
    return net(args) if args.part == "net" else rules(args)


if __name__ == "__main__":
    sys.exit(main())
