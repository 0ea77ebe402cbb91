"""Peak memory of the heavy rules at the paper's size (config/lidc.yaml), on this CPU, against what
each rule asks (lungsynth.resources): docs/benchmark/paper_scale.csv.

    .venv/bin/python bench/paper_scale.py                  # 553 training crops of 128 x 256 x 256 (~30 min)
    .venv/bin/python bench/paper_scale.py --quick          # 12 crops of 32 x 64 x 64 (a minute)

No LIDC-IDRI here: the crops are one stand-in chest (body, lungs, a nodule, noise) on the paper's
grid, written once and linked under every case name, so each case is read from its own path as
the rule reads it. Each rule's code runs in a child process whose peak RSS (VmHWM) is its own:

- train_ddpm: the rule's data path (read_training_set, the Trainer with its mean image and patch
  sampler) and one training step; the step uses a 32^3 patch, since at the paper's patch the
  activations live on the GPU (their size: docs/benchmark/memory_analytic.csv). ``train_ddpm
  (before)``: the former float32 stacking, measured on fewer crops and extrapolated per crop.
- synthetic_quality: all real training crops as the reference, then a few synthetic volumes
  (memory does not grow with them: one volume at a time).
- nnunet_plan: nnU-Net's own plan and preprocessing of a few cases in the rule's processes (per
  process, one case at a time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

COLUMNS = ["rule", "cases", "volume", "measured_peak_mb", "mem_mb_asked", "seconds", "note", "cpu"]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no /proc/self/status")


def stand_in_crops(folder: Path, cases: int, size, spacing) -> tuple[list[str], list[str]]:
    """``cases`` image and mask paths on the grid ``size`` (z, y, x) at ``spacing`` mm, all links to
    one stand-in chest crop."""
    import numpy as np

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
    images, masks = [], []
    for index in range(cases):
        for target, kind, out in ((image_file, "images", images), (mask_file, "masks", masks)):
            path = folder / kind / f"LIDC-IDRI-{index:04d}.nii.gz"
            path.parent.mkdir(exist_ok=True)
            if not path.exists():
                path.symlink_to(target)
            out.append(str(path))
    return images, masks


# ----------------------------------------------------------------------------- child side

def child_train(spec: dict) -> str:
    import torch

    from lungsynth.ddpm.settings import DdpmSettings
    from lungsynth.ddpm.train import Trainer
    from lungsynth.pipeline.ddpm import read_training_set

    hu, nodules, _ = read_training_set(spec["images"], spec["masks"])
    settings = DdpmSettings.from_config({"network": {"channels": [8, 16, 16], "norm_num_groups": 8},
                                         "intensity": {"mean_image": True},
                                         "training": {"patch_size": [32, 32, 32], "batch_size": 1, "steps": 10,
                                                      "nodule_patch_fraction": 0.2}})
    trainer = Trainer(settings, torch.from_numpy(hu), torch.from_numpy(nodules), torch.device("cpu"), "contiguous")
    trainer.step(1)
    return "read_training_set + Trainer (mean image, patch sampler) + one 32^3 step (host side)"


def child_train_before(spec: dict) -> str:
    """The former path (main at 42aab6b): a list of crops, then float32 copies stacked."""
    import numpy as np

    from lungsynth.io import read_nifti

    images = [read_nifti(p)[0] for p in spec["images"]]
    masks = [read_nifti(p)[0] for p in spec["masks"]]
    hu = np.stack([np.clip(np.rint(np.asarray(i, dtype=np.float32)), -32768, 32767) for i in images])
    nodules = np.stack([np.asarray(m) > 0 for m in masks])
    hu.astype(np.int16), nodules.astype(np.uint8)
    return "former read_training_set + stack_training_data"


def child_quality(spec: dict) -> str:
    from lungsynth.config import load_config
    from lungsynth.pipeline.ddpm import quality

    n = spec["synthetic"]
    quality(spec["images"][:n], spec["masks"][:n], spec["images"], Path(spec["scratch"]) / "quality.csv",
            load_config(ROOT / "config" / "lidc.yaml")["quality"])
    return f"{len(spec['images'])} real crops as reference, {n} synthetic volumes scored"


def child_plan(spec: dict) -> str:
    from lungsynth.config import load_config
    from lungsynth.pipeline.nnunet import plan, raw_dataset

    n = spec["plan_cases"]
    scratch = Path(spec["scratch"])
    train = (spec["images"][:n], spec["masks"][:n])
    validation = (spec["images"][n:n + 2], spec["masks"][n:n + 2])
    raw_dataset("Real", {"real": train}, validation, scratch / "raw", "Dataset901_Real", "symlink")
    plan(scratch / "raw", scratch / "preprocessed", load_config(ROOT / "config" / "lidc.yaml")["nnunet"]["plan"],
         spec["threads"])
    return f"nnU-Net's own plan, {n + 2} cases in {spec['threads']} processes"


CHILDREN = {"train_ddpm": child_train, "train_ddpm (before)": child_train_before,
            "synthetic_quality": child_quality, "nnunet_plan": child_plan}


def run_child(rule: str, spec: dict) -> dict:
    """Run one rule's code in a child process; its peak is the larger of the child's own VmHWM and
    the summed PSS (shared pages counted once, as a cgroup does) of the child and its workers
    (nnU-Net's pools), sampled every 0.2 s."""
    import psutil

    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, __file__, "--child", rule, json.dumps(spec)], stdout=out,
                                 stderr=err, env={**os.environ, "OMP_NUM_THREADS": str(spec["threads"])})
        tree_peak = 0.0
        while child.poll() is None:
            try:
                parent = psutil.Process(child.pid)
                members = [parent, *parent.children(recursive=True)]
                tree_peak = max(tree_peak, sum(p.memory_full_info().pss for p in members) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        return {"peak": float("nan"), "note": f"failed: {stderr.strip().splitlines()[-1:]}", "seconds": seconds}
    result = json.loads(stdout.strip().splitlines()[-1])
    return {**result, "peak": max(result["peak"], tree_peak), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="12 crops of 32 x 64 x 64")
    parser.add_argument("--cases", type=int, default=None, help="training crops (default 553, quick 12)")
    parser.add_argument("--csv", type=Path, default=None, help="write the table (e.g. docs/benchmark/paper_scale.csv)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the stand-in crops go (default: a temporary folder)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rule, spec = args.child[0], json.loads(args.child[1])
        note = CHILDREN[rule](spec)
        print(json.dumps({"peak": peak_rss_mb(), "note": note}))
        return

    from lungsynth.config import load_config
    from lungsynth.resources import Counts, rule_request
    from lungsynth.runtime import cpu_description

    config = load_config(ROOT / "config" / "lidc.yaml")
    size, spacing = config["preprocess"]["volume_size"], config["preprocess"]["target_spacing"]
    if args.quick:
        size = [32, 64, 64]
        config["preprocess"]["volume_size"] = size
    cases = args.cases or (12 if args.quick else 553)
    before_cases = [min(cases, n) for n in ((3, 6) if args.quick else (20, 40))]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="paper-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    images, masks = stand_in_crops(workdir, cases, size, spacing)
    # the rules' requests for a run with `cases` training crops (split in the paper's proportions)
    total = round(cases * 833 / 553)
    counts = Counts.from_config(config, total)
    volume = "x".join(map(str, size))
    rows = []
    plans = [("train_ddpm", cases), ("train_ddpm (before)", before_cases), ("synthetic_quality", cases),
             ("nnunet_plan", 6 if args.quick else 8)]
    for rule, n in plans:
        counts_measured = n if isinstance(n, list) else [n]
        results = []
        for count in counts_measured:
            with tempfile.TemporaryDirectory(dir=workdir) as scratch:
                spec = {"images": images[:count] if rule.endswith("(before)") else images,
                        "masks": masks[:count] if rule.endswith("(before)") else masks, "scratch": scratch,
                        "threads": rule_request(rule.split()[0], config, counts).threads,
                        "synthetic": 3 if args.quick else 10, "plan_cases": count}
                results.append(run_child(rule, spec))
        result = results[-1]
        peak, note, n = result["peak"], result["note"], counts_measured[-1]
        if len(results) == 2:             # the former path: linear in the crops, extrapolated to all
            (n1, p1), (n2, p2) = zip(counts_measured, (r["peak"] for r in results))
            per_crop = (p2 - p1) / (n2 - n1)
            peak, n = p2 + per_crop * (cases - n2), cases
            note = f"{note}: {p1:.0f} MB on {n1} crops, {p2:.0f} MB on {n2}, extrapolated at {per_crop:.1f} MB per crop"
        asked = rule_request(rule.split()[0], config, counts).mem_mb
        rows.append({"rule": rule, "cases": n, "volume": volume, "measured_peak_mb": round(peak, 1),
                     "mem_mb_asked": asked, "seconds": round(result["seconds"], 1), "note": note,
                     "cpu": cpu_description()})
        print(f"{rule:22} {n:5} cases {volume}: peak {peak:9.0f} MB, asked {asked:7} MB "
              f"({result['seconds']:.0f} s) {note}", flush=True)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
