"""One lent GPU (for minutes, torch only, no network), one call: the CUDA paths at the paper's sizes
and a GPU-scale recipe run, in three steps:

    .venv/bin/python bench/cuda_check.py pack --run runs/benchmark --out .gpu      # here: data, settings
    python3 bench/cuda_check.py gpu --pack .gpu --out $OUT --deadline 500          # there (PYTHONPATH=src)
    .venv/bin/python bench/cuda_check.py unpack --results DIR --pack .gpu --run runs/benchmark   # here

Part 1: config/lidc.yaml's net, patch and crop through the project's Trainer, sampler and checkpoint
code on CUDA, fp32 and bf16, seconds and allocator peaks (``cuda_paper.csv``; out of memory is a result).
Part 2: the benchmark's DDPM trained at GPU scale for a wall-clock budget, the harness's masks sampled;
``unpack`` files it where ``bench/ddpm_recipe.py`` only scores it. Under ``--deadline`` a case that
would start too late is skipped, one still running is stopped, an error (a sticky CUDA error too) is
its row (what each part answers: docs/benchmark.md, "On a GPU").
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import logging
import os
import shutil
import signal
import sys
import time
import types
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchlib import ROOT, Data, config_with, first_line, timed

log = logging.getLogger("cuda_check")

#: the GPU-scale recipe run: the benchmark's DDPM as docs/benchmark/ddpm_ab.csv's "base" row pins it
#: (bench/ddpm_ab.sh), with cosine decay and 16 patches a step, sampled with eta 0 and eta 1
MODEL = "gpu-cosine-b16"
SETS = ["ddpm.training.nodule_patch_fraction=0.5", "ddpm.training.lr_schedule=cosine", "ddpm.training.batch_size=16"]
SAMPLERS = {"": [], "-eta1": ["sampling.eta=1.0"]}
MASKS, SEEDS = 6, 2                      # the harness's defaults (bench/ddpm_recipe.py)
MODEL_LIMIT_BYTES = 15 * 2**20           # what one file back from the lent machine may hold


# ----------------------------------------------------------------------------- pack (here)

def pack(run: Path, out: Path, overlays: list[Path]) -> None:
    """The training crops, the first validation masks and every setting the GPU side needs, resolved
    and validated here (the GPU machine has no config overlays to read)."""
    from lungsynth.io import read_nifti
    from lungsynth.pipeline.ddpm import read_training_set

    data = Data(run)
    train, validation = data.split["train"], data.split["validation"][:MASKS]
    images, masks, spacing = read_training_set(data.paths("images", train), data.paths("masks", train))
    validation_masks = [read_nifti(p)[0] for p in data.paths("masks", validation)]
    arrays = {"images": np.stack(images).astype(np.int16), "masks": np.stack(masks).astype(np.uint8),
              "validation_masks": np.stack(validation_masks).astype(np.uint8)}
    configs = {MODEL + suffix: (SETS + more, config_with(overlays, SETS + more)) for suffix, more in SAMPLERS.items()}
    variants = [{"name": name, "sets": sets, "ddpm": c["ddpm"], "sampling": c["sampling"]}
                for name, (sets, c) in configs.items()]
    paper = config_with([ROOT / "config" / "lidc.yaml"], [])
    meta = {"train": train, "validation": validation, "spacing": spacing, "seeds": SEEDS, "variants": variants,
            "paper": {"ddpm": paper["ddpm"], "volume_size": paper["preprocess"]["volume_size"]}}
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "data.npz", **arrays)
    (out / "pack.json").write_text(json.dumps(meta, indent=1))
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"{out}: {len(train)} training crops {arrays['images'].shape[1:]}, {len(validation)} validation masks, "
          f"{len(variants)} variants; {size:.1f} MiB")


# ----------------------------------------------------------------------------- GPU side

class Clock:
    """Seconds left before ``deadline`` (from the start of the call)."""

    def __init__(self, deadline: float):
        self.end = time.perf_counter() + deadline

    def left(self) -> float:
        return self.end - time.perf_counter()


def fresh(device) -> None:
    """Free what the last case left and reset the allocator's peaks."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


class Deadline(Exception):
    """A case still running when the call's time is up."""


@contextlib.contextmanager
def deadline_after(seconds: float):
    """Raise :class:`Deadline` in the main thread after ``seconds`` (between Python calls: a CUDA
    kernel already launched finishes first)."""
    def ring(signum, frame):
        raise Deadline(f"stopped at the deadline, {seconds:.0f} s after it started")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def measured(case: dict, device, clock: Clock, need: float, work, reserve: float = 0.0) -> dict:
    """``work()`` (a dict of figures) as one case with its memory peak; out of memory, an error or the
    deadline as its status; skipped with under ``need`` + ``reserve`` seconds left. Nothing a case
    raises (a sticky CUDA error in the cleanup too) ends the call."""
    if clock.left() < need + reserve:
        return {**case, "status": f"skipped: {clock.left():.0f} s left, needs ~{need + reserve:.0f}"}
    try:
        with deadline_after(clock.left() - reserve):
            fresh(device)
            result = {**case, **work(), "status": "ok"}
    except Deadline as err:
        result = {**case, "status": "stopped", "note": str(err)}
    except Exception as err:   # noqa: BLE001 - a case that fails is a row, the others still run
        oom = isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in first_line(err).lower()
        result = {**case, "status": "out of memory" if oom else "error", "note": first_line(err)}
    try:
        if device.type == "cuda":
            result.update(cuda_peak_mb=round(torch.cuda.max_memory_allocated() / 2**20),
                          cuda_reserved_mb=round(torch.cuda.max_memory_reserved() / 2**20))
        fresh(device)
    except Exception as err:   # noqa: BLE001 - e.g. a sticky CUDA error: the next cases say so too
        result["note"] = f"{result.get('note', '')}; cleanup failed: {first_line(err)}".lstrip("; ")
    log.info("%s", result)
    return result


def paper_cases(meta: dict, device, clock: Clock, tiny: bool, folder: Path, reserve: float,
                write_rows) -> list[dict]:
    """Part 1: the paper net's training and sampling paths on ``device``; ``write_rows(rows)`` after each
    case (a call cut short keeps them), ``folder`` for the checkpoint's round trip, ``reserve`` s kept."""
    from lungsynth.ddpm.checkpoint import load_model, save_model
    from lungsynth.ddpm.network import build_network, network_config
    from lungsynth.ddpm.sample import sample_case, sample_volume
    from lungsynth.ddpm.settings import DdpmSettings, SamplingSettings
    from lungsynth.ddpm.train import Trainer
    from lungsynth.runtime import autocast, bf16_is_used

    ddpm = copy.deepcopy(meta["paper"]["ddpm"])
    if tiny:   # the paths, not the paper net's arithmetic
        ddpm["network"].update(channels=[8, 16, 16, 16], norm_num_groups=8, num_res_blocks=1)
    patch = [16, 16, 16] if tiny else list(ddpm["training"]["patch_size"])
    volume = [16, 32, 32] if tiny else list(meta["paper"]["volume_size"])
    big = [32, 32, 32] if tiny else [256, 256, 256]
    huge = [32, 32, 64] if tiny else [256, 512, 512]
    rows = []

    def settings_for(p, bf16):
        spec = copy.deepcopy(ddpm)
        spec["training"].update(patch_size=list(p), batch_size=1, bf16=bf16, nodule_patch_fraction=0.0)
        return DdpmSettings.from_config(spec)

    def train_case(size, p, bf16, steps):
        hu = torch.full((1, *size), -700, dtype=torch.int16)
        trainer = Trainer(settings_for(p, bf16), hu, torch.zeros_like(hu, dtype=torch.uint8), device)
        trainer.step(1)                                           # allocates AdamW's state
        return {"seconds": timed(device, lambda i: trainer.step(2 + i), steps), "per": "training step",
                "note": f"mean of {steps} steps after one"}

    def net_call(size, bf16):
        model = build_network(network_config(settings_for(patch, bf16).network)).to(device).eval()
        x, t = torch.zeros((1, 5, *size), device=device), torch.tensor([500], device=device)
        with torch.no_grad(), autocast(device, bf16):
            model(x, t)
            return {"seconds": timed(device, lambda i: model(x, t)), "per": "network call"}

    def full_sample(bf16, steps):
        """A checkpoint written from the GPU, read back (on the CPU too), and one whole crop generated."""
        hu = torch.full((1, *volume), -700, dtype=torch.int16)
        settings = settings_for(patch, bf16)
        trainer = Trainer(settings, hu, torch.zeros_like(hu, dtype=torch.uint8), device)
        trainer.step(1)
        path = folder / "paper-model.pt"
        save_model(path, trainer.ema.module, settings=settings, network=trainer.network, volume_size=volume,
                   spacing=None, data_hash="cuda-check", step=1)
        assert next(load_model(path, "cpu").model.parameters()).device.type == "cpu"
        loaded = load_model(path, device)
        mask = np.zeros(volume, dtype=np.uint8)
        mask[tuple(slice(s // 2 - 3, s // 2 + 3) for s in volume)] = 1
        sampling = SamplingSettings.from_config({"sampler": "ddim", "steps": steps, "mode": "whole", "bf16": bf16})
        out = {}
        seconds = timed(device, lambda i: out.update(hu=sample_case(loaded, mask, case_id="cuda-check",
                                                                    settings=sampling, device=device)))
        path.unlink()
        assert out["hu"].shape == tuple(volume) and out["hu"].dtype == np.int16
        return {"seconds": seconds, "per": f"whole crop, DDIM-{steps}",
                "note": f"x {1000 / steps:.0f} for the paper's 1000-step DDPM: ~{seconds * 1000 / steps:.0f} s; "
                        f"HU {int(out['hu'].min())}..{int(out['hu'].max())}; checkpoint read back on the CPU"}

    def windowed(size, bf16, overlap, window_batch, steps):
        settings = settings_for(patch, bf16)
        model = build_network(network_config(settings.network)).to(device).eval()
        seconds = timed(device, lambda i: sample_volume(
            model, np.zeros(size, dtype=np.uint8), settings.schedule, sampler="ddim", steps=steps,
            mode="windowed", window=patch, overlap=overlap, window_batch=window_batch, bf16=bf16, device=device,
            generator=torch.Generator(device=device).manual_seed(0))) / steps
        return {"seconds": seconds, "per": "sampling step (all windows)",
                "note": f"{window_batch} windows per call; DDIM-50 ~{50 * seconds:.0f} s"}

    def case(mode, size, p, bf16, overlap=None):
        return {"part": "paper", "net": "paper", "mode": mode, "size": "x".join(map(str, size)),
                "patch_or_window": "x".join(map(str, p)) if p else "", "overlap": overlap,
                "precision": "bf16 autocast" if bf16_is_used(device, bf16) else
                "fp32 (bf16 asked for, not used here)" if bf16 else "fp32"}

    both, ddim = (True, False), 2 if tiny else 50   # bf16 autocast, fp32
    plan = [(case("train patch-wise", big, patch, b), 15, partial(train_case, big, patch, b, 5)) for b in both]
    plan += [(case("train whole volume", volume, None, b), 25, partial(train_case, volume, volume, b, 3)) for b in both]
    plan += [(case("sample whole", volume, None, b), 10, partial(net_call, volume, b)) for b in both]
    plan += [(case(f"sample whole, DDIM-{ddim} crop", volume, None, True), 30, partial(full_sample, True, ddim)),
             (case("sample windowed", huge, patch, True, 0.25), 40, partial(windowed, huge, True, 0.25, 4, 2))]
    plan += [(case("train whole volume", big, None, b), 40, partial(train_case, big, big, b, 1)) for b in both]
    plan += [(case("sample whole", s, None, True), need, partial(net_call, s, True))
             for s, need in ((big, 15), (huge, 30))]
    for spec, need, work in plan:
        rows.append(measured(spec, device, clock, need, work, reserve))
        write_rows(rows)
    return rows


def gpu(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    try:
        import SimpleITK  # noqa: F401
    except ImportError:   # the lent machine's image lacks it; the DDPM's paths here never read NIfTI
        sys.modules["SimpleITK"] = types.ModuleType("SimpleITK")
    from lungsynth.runtime import bf16_is_used, resolve_device

    clock, device, out = Clock(args.deadline), resolve_device(args.device), args.out
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads((args.pack / "pack.json").read_text())
    info = {"torch": torch.__version__, "device": str(device),
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "",
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
            "tf32_conv": torch.backends.cudnn.allow_tf32, "bf16_used": bf16_is_used(device, True),
            "cpu_threads": args.threads}
    log.info("%s", info)

    def write_rows(rows):   # after each case: a call cut short keeps what it measured
        pd.DataFrame(rows).assign(gpu=info["gpu"] or "cpu", torch=info["torch"]).to_csv(out / ".paper.csv", index=False)
        (out / ".paper.csv").replace(out / "cuda_paper.csv")

    if "paper" in args.parts:
        paper_cases(meta, device, Clock(min(args.paper_budget, clock.left() - args.reserve)), args.tiny, out,
                    args.reserve, write_rows)
    records = {"info": info, "variants": {}}
    if "recipe" in args.parts:
        try:
            with deadline_after(clock.left() - args.reserve):
                recipe_run(meta, args, device, out, clock, records)
        except Exception as err:   # noqa: BLE001 - the deadline or an error: what was done comes back
            log.error("recipe run: %s", first_line(err))
    (out / "records.json").write_text(json.dumps(records, indent=1))
    log.info("done, %.0f s of %.0f used", args.deadline - clock.left(), args.deadline)
    return 0


def recipe_run(meta: dict, args, device, out: Path, clock: Clock, records: dict) -> None:
    """Part 2: train for what the deadline leaves (sampling time kept; the step count calibrated so
    the decay sees its horizon), then sample each variant, one file each (<= 16 MiB come back)."""
    from lungsynth.ddpm.checkpoint import load_model
    from lungsynth.ddpm.sample import sample_case
    from lungsynth.ddpm.settings import DdpmSettings, SamplingSettings
    from lungsynth.ddpm.train import train_ddpm

    data = dict(np.load(args.pack / "data.npz"))
    calibration, min_steps = (5, 5) if args.tiny else (30, 50)
    if args.tiny:   # a check of the paths: 3 crops, 2 patches a step
        data = {k: v[:3] for k, v in data.items()}
        meta["variants"][0]["ddpm"]["training"]["batch_size"] = 2
    budget = min(args.budget, clock.left() - args.reserve - args.sampling_seconds * len(meta["variants"]))
    if budget < min(args.budget, 20.0):
        log.warning("%s: skipped, %.0f s left", MODEL, clock.left())
        return
    folder = out / MODEL
    settings = DdpmSettings.from_config(meta["variants"][0]["ddpm"])
    images, masks = list(data["images"]), list(data["masks"])
    train = dict(device=device, threads=args.threads, progress=False, names=meta["train"])
    trial = train_ddpm(images, masks, settings.replace(training=settings.training.replace(steps=calibration)),
                       folder / "calibration.pt", checkpoint_every=calibration, **train)
    per_step = float(trial.losses["seconds"].diff().iloc[calibration // 5:].median())   # after warm-up
    steps = max(min_steps, int(budget / per_step))
    settings = settings.replace(training=settings.training.replace(steps=steps))
    result = train_ddpm(images, masks, settings, folder / "model.pt", checkpoint_every=steps, spacing=meta["spacing"],
                        **train)
    losses, wall = result.losses, float(result.losses["seconds"].iloc[-1])
    record = {"model": MODEL, "steps": int(result.step), "batch_size": settings.training.batch_size,
              "wall_seconds": wall, "seconds_per_step": per_step, "budget": budget,
              "patches_per_s": result.step * settings.training.batch_size / wall,
              "final_loss": float(losses["loss"].tail(100).mean()),
              "losses": losses[["step", "loss", "lr", "seconds"]].to_numpy(np.float32).tolist()}
    loaded = load_model(folder / "model.pt", device)
    for variant in meta["variants"]:
        base = SamplingSettings.from_config(variant["sampling"])
        volumes, seconds = {}, []
        for case, mask in zip(meta["validation"], data["validation_masks"]):
            for s in range(meta["seeds"]):
                seconds.append(timed(device, lambda i: volumes.update({f"{case}_s{s}": sample_case(
                    loaded, mask, case_id=case, device=device, settings=base.replace(seed=base.seed + s),
                    spacing=meta["spacing"])})))
        np.savez_compressed(out / f"{variant['name']}.npz", **volumes)
        records["variants"][variant["name"]] = {**record, "sample_seconds": float(np.mean(seconds))}
        (out / "records.json").write_text(json.dumps(records, indent=1))
    if (folder / "model.pt").stat().st_size <= MODEL_LIMIT_BYTES:
        (folder / "model.pt").replace(out / f"{MODEL}.pt")
    shutil.rmtree(folder, ignore_errors=True)
    log.info("%s: %s", MODEL, {k: v for k, v in record.items() if k != "losses"})


# ----------------------------------------------------------------------------- unpack (here)

def unpack(results: Path, pack_dir: Path, run: Path, recipe: Path, overlays: list[Path]) -> None:
    """File each GPU variant where bench/ddpm_recipe.py finds it trained and sampled."""
    import yaml

    from lungsynth.io import read_nifti, write_csv, write_nifti

    sets_of = {v["name"]: v["sets"] for v in json.loads((pack_dir / "pack.json").read_text())["variants"]}
    records = json.loads((results / "records.json").read_text())
    folder = run / "results" / "data"
    for name, record in records["variants"].items():
        sets, out = sets_of[name], recipe / name
        config = config_with(overlays, sets)
        (out / "volumes" / "masks").mkdir(parents=True, exist_ok=True)
        arrays = np.load(results / f"{name}.npz")
        for volume_name in arrays.files:
            case = volume_name.rsplit("_s", 1)[0]
            mask, geometry = read_nifti(folder / "masks" / f"{case}.nii.gz")
            write_nifti(out / "volumes" / f"{volume_name}.nii.gz", arrays[volume_name], geometry)
            write_nifti(out / "volumes" / "masks" / f"{volume_name}.nii.gz", mask, geometry)
        losses = pd.DataFrame(record["losses"], columns=["step", "loss", "lr", "seconds"]).astype({"step": int})
        write_csv(out / "loss.csv", losses)
        model = results / f"{record['model']}.pt"
        if model.exists():
            (out / "model.pt").write_bytes(model.read_bytes())
        else:   # scored from its volumes only; the harness must not try to train it again
            (out / "model.pt").write_text("trained on a lent GPU; the weights did not come back\n")
        (out / "config.yaml").write_text(yaml.safe_dump({k: config[k] for k in ("ddpm", "sampling", "execution")}))
        (out / "training.json").write_text(json.dumps({
            "budget": record["budget"], "cpu_seconds": record["wall_seconds"], "trained_steps": record["steps"],
            "patches_per_s": record["patches_per_s"], "final_loss": record["final_loss"],
            "seconds_per_step": record["seconds_per_step"], "batch_size": record["batch_size"],
            "gpu_sample_seconds_per_volume": record["sample_seconds"],
            "device": f"{records['info']['gpu']} (wall seconds, not CPU seconds)"}, indent=1))
        print(f"{out}: {record['steps']} steps x {record['batch_size']} in {record['wall_seconds']:.0f} s on "
              f"{records['info']['gpu']}; score with:\n  .venv/bin/python bench/ddpm_recipe.py --run {run} "
              f"--config config/benchmark.yaml --name {name} " + " ".join(f"--set {s}" for s in sets))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="here: the data and settings the GPU side needs")
    g = sub.add_parser("gpu", help="there: part 1 (paper sizes) and part 2 (the recipe run)")
    u = sub.add_parser("unpack", help="here: file the GPU variants for bench/ddpm_recipe.py")
    for here in (a, u):
        here.add_argument("--run", type=Path, required=True, help="the workflow run folder of the crops")
        here.add_argument("--config", type=Path, action="append", default=None, help="default config/benchmark.yaml")
    a.add_argument("--out", type=Path, default=ROOT / ".gpu")
    g.add_argument("--pack", type=Path, default=ROOT / ".gpu")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--device", default="auto")
    g.add_argument("--deadline", type=float, default=500.0, help="seconds from the start for everything")
    g.add_argument("--paper-budget", type=float, default=150.0, help="seconds for part 1")
    g.add_argument("--budget", type=float, default=150.0, help="training seconds of part 2 at most")
    g.add_argument("--sampling-seconds", type=float, default=15.0, help="expected seconds to sample one variant")
    g.add_argument("--reserve", type=float, default=15.0, help="seconds kept free at the end")
    g.add_argument("--threads", type=int, default=8)
    g.add_argument("--parts", nargs="+", default=["paper", "recipe"], choices=["paper", "recipe"])
    g.add_argument("--quick", "--tiny", dest="tiny", action="store_true",
                   help="tiny sizes: a check of this script on any device in seconds")
    u.add_argument("--results", type=Path, required=True, help="the folder the GPU call's files came back in")
    u.add_argument("--pack", type=Path, default=ROOT / ".gpu", help="the pack the GPU call ran on")
    u.add_argument("--recipe", type=Path, default=ROOT / "bench" / "results" / "recipe")
    args = p.parse_args(argv)
    overlays = args.config if getattr(args, "config", None) else [ROOT / "config" / "benchmark.yaml"]
    if args.command == "pack":
        pack(args.run, args.out, overlays)
    elif args.command == "unpack":
        unpack(args.results, args.pack, args.run, args.recipe, overlays)
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        return gpu(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
