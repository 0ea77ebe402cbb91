"""Which DDPM settings give good volumes within a CPU budget: train one variant, sample, measure.

    .venv/bin/python bench/bench_ddpm_quality.py --run runs/benchmark --config config/benchmark.yaml \
        --name wide --set network.channels=[32,64,64] --steps 3000 --threads 1 \
        --modes whole windowed --ddim 10 25

Trains the DDPM of ``--config`` (over config/config.yaml), changed by ``--set`` (keys below
``ddpm:``), on the training crops of a workflow run folder (``<run>/results/data``), into
``bench/results/quality/<name>/`` (resumable: the same command continues a killed run, a larger
``--steps`` continues a finished one). Then samples the first ``--cases`` validation masks for
every mode and DDIM step count and prints, per setting, the quality metrics of the workflow's
``quality.csv`` next to those of the real crops of the same cases; writes ``quality.csv`` and a
Figure-2-like ``samples.png`` (one row per setting, the real image last).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lungsynth.ddpm.figures import samples_grid  # noqa: E402
from lungsynth.ddpm.quality import lung_hu_sample, spacing_zyx, volume_quality  # noqa: E402
from lungsynth.ddpm.sample import sample_case  # noqa: E402
from lungsynth.ddpm.settings import DdpmSettings, SamplingSettings  # noqa: E402
from lungsynth.ddpm.train import train_ddpm  # noqa: E402
from lungsynth.io import read_nifti, save_figure  # noqa: E402
from lungsynth.pipeline.ddpm import read_training_set  # noqa: E402

METRICS = ["mean_hu_nodule", "contrast_hu", "mean_hu_lung", "lung_fraction", "wasserstein_lung_hu"]


def merged_config(overlay: str | None) -> dict:
    """config/config.yaml with the overlay's keys replacing its own (as Snakemake merges them)."""
    def merge(base, over):
        for key, value in over.items():
            base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
        return base

    config = yaml.safe_load(open(ROOT / "config" / "config.yaml"))
    return merge(config, yaml.safe_load(open(overlay))) if overlay else config


def apply_sets(ddpm: dict, sets: list[str]) -> dict:
    """``section.key=value`` (YAML value) below ``ddpm:``, e.g. ``training.learning_rate=5.0e-4``."""
    for item in sets:
        key, _, value = item.partition("=")
        *path, leaf = key.split(".")
        node = ddpm
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return ddpm


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="workflow run folder holding results/data (crops, splits.json)")
    p.add_argument("--config", help="config overlay (e.g. config/benchmark.yaml)")
    p.add_argument("--name", required=True, help="variant name (output folder)")
    p.add_argument("--set", action="append", default=[], help="ddpm key=value, e.g. network.channels=[32,64,64]")
    p.add_argument("--steps", type=int, help="training steps (default: the config's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cases", type=int, default=4, help="validation masks to sample")
    p.add_argument("--modes", nargs="+", default=["whole"], choices=["whole", "windowed"])
    p.add_argument("--ddim", nargs="+", type=int, default=[10], help="DDIM step counts (0 = DDPM, all T steps)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality"))
    args = p.parse_args(argv)

    config = merged_config(args.config)
    ddpm = apply_sets(config["ddpm"], args.set)
    if args.steps:
        ddpm["training"]["steps"] = args.steps
    settings = DdpmSettings.from_config(ddpm)
    out = Path(args.out) / args.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "ddpm.json").write_text(json.dumps(settings.to_dict(), indent=1))

    data = Path(args.run) / "results" / "data"
    split = json.loads((data / "splits.json").read_text())
    train = split["train"] if isinstance(split["train"], list) else list(split["train"])
    images, masks, spacing = read_training_set([data / "images" / f"{c}.nii.gz" for c in train],
                                               [data / "masks" / f"{c}.nii.gz" for c in train])
    result = train_ddpm(images, masks, settings, out / "model.pt", loss_csv=out / "loss.csv",
                        loss_png=out / "loss.png", spacing=spacing, names=train, threads=args.threads)
    losses = result.losses
    print(f"{args.name}: {result.step} steps, {losses['seconds'].diff().median():.2f} s/step, "
          f"mean loss of the last 200 steps {losses['loss'].tail(200).mean():.4f}", flush=True)

    real_lung = lung_hu_sample(images, SamplingSettings().quality)
    cases = split["validation"][: args.cases]
    rows, shown = [], {}
    for case in cases:
        hu, geometry = read_nifti(data / "images" / f"{case}.nii.gz")
        mask, _ = read_nifti(data / "masks" / f"{case}.nii.gz")
        rows.append({"setting": "real", "seconds": 0.0, **volume_quality(case, hu, mask, spacing_zyx(geometry), real_lung)})
        shown.setdefault("real", []).append((case, hu, mask))
    sampling = SamplingSettings.from_config(config["sampling"])
    for mode in args.modes:
        for steps in args.ddim:
            setting = f"{mode} {'ddpm-1000' if steps == 0 else f'ddim-{steps}'}"
            chosen = sampling.replace(mode=mode, sampler="ddpm" if steps == 0 else "ddim",
                                      steps=steps if steps else None)
            for case in cases:
                mask, geometry = read_nifti(data / "masks" / f"{case}.nii.gz")
                started = time.perf_counter()
                hu = sample_case(out / "model.pt", mask, case_id=case, settings=chosen, threads=args.threads)
                seconds = time.perf_counter() - started
                rows.append({"setting": setting, "seconds": seconds,
                             **volume_quality(case, hu, mask, spacing_zyx(geometry), real_lung)})
                shown.setdefault(setting, []).append((case, hu, mask))
            print(f"  sampled {setting}", flush=True)
    table = pd.DataFrame(rows)
    table.insert(0, "variant", args.name)
    table.insert(1, "train_steps", result.step)
    table.to_csv(out / "quality.csv", index=False)
    summary = table.groupby("setting", sort=False)[["seconds", *METRICS]].mean()
    print(summary.round(3).to_string())
    order = [k for k in shown if k != "real"] + ["real"]
    save_figure(out / "samples.png", samples_grid({k: shown[k] for k in order},
                                                  title=f"{args.name}: {result.step} steps (PHANTOM, NOT PATIENT DATA)"))


if __name__ == "__main__":
    main()
