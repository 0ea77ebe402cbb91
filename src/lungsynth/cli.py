"""The ``lungsynth`` console command: the package's tools outside the Snakemake workflow.

Subcommands register themselves in :data:`COMMANDS` (a function that adds a subparser and sets
``func``); to add one, write ``_add_<name>(subparsers)`` and list it there. Bad input
(:class:`InputError`) prints one line on stderr and exits with status 2, as argparse does for
bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from . import __version__
from .errors import InputError

log = logging.getLogger("lungsynth")


def _add_sample(subparsers) -> None:
    from .config import section_schema
    from .ddpm.settings import SamplingSettings
    from .settings import ExecutionSettings

    default = SamplingSettings.from_config()
    choices = {name: node.get("enum") for name, node in section_schema("sampling")["properties"].items()}
    window_batch = ExecutionSettings.from_config().sampling_window_batch
    p = subparsers.add_parser(
        "sample", help="generate one synthetic CT volume from a nodule mask with a trained DDPM",
        description="Generate one synthetic CT volume (HU, int16 NIfTI) for a nodule mask with a trained "
                    "DDPM checkpoint. The mask must have the volume size and voxel spacing the model was "
                    "trained on; the output gets the mask's affine. Same code as the workflow's sample rule.",
)
    p.add_argument("--checkpoint", required=True, type=Path, help="trained model file (e.g. results/ddpm/model.pt)")
    p.add_argument("--mask", required=True, type=Path, help="conditioning nodule mask (NIfTI, 0/1)")
    p.add_argument("--out", required=True, type=Path, help="where to write the synthetic CT (.nii.gz)")
    p.add_argument("--sampler", choices=choices["sampler"], default=default.sampler,
                   help="ddim: few deterministic steps; ddpm: all T (1000) stochastic steps; euler: a rectified-flow "
                        "model's steps (default: %(default)s)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"DDIM steps (default {default.steps}); DDPM always runs all T steps")
    p.add_argument("--eta", type=float, default=default.eta, help="DDIM noise weight, 0 = deterministic (default: %(default)s)")
    p.add_argument("--mode", choices=choices["mode"], default=default.mode,
                   help="whole: the net sees the whole volume (the paper's); windowed: overlapping windows "
                        "of the training patch size, memory independent of the volume (default: %(default)s)")
    p.add_argument("--overlap", type=float, default=default.window_overlap, help="window overlap in [0, 1) (windowed mode; default: %(default)s)")
    p.add_argument("--blend", choices=choices["window_blend"], default=default.window_blend, help="window blending (windowed mode; default: %(default)s)")
    p.add_argument("--window-batch", type=int, default=window_batch, help="windows per net call (windowed mode; default: %(default)s)")
    p.add_argument("--seed", type=int, default=default.seed, help="seed; with the case id it fixes the volume (default: %(default)s)")
    p.add_argument("--case-id", default=None, help="case id for seeding (default: the mask's file name)")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=default.bf16,
                   help="bf16 autocast, about 2x faster on CPUs with bf16 support (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu or cuda (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_sample)


_FLAGS = {"steps": "--steps", "eta": "--eta", "window_overlap": "--overlap"}


def _run_sample(args) -> int:
    from .ddpm.checkpoint import load_model
    from .runtime import resolve_device, set_threads
    from .ddpm.sample import sample_nifti
    from .ddpm.settings import SamplingSettings

    set_threads(args.threads)
    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device)
    steps_total = loaded.schedule.num_train_timesteps
    if args.sampler == "ddpm" and args.steps not in (None, steps_total):
        raise InputError("--steps", f"the DDPM sampler runs all {steps_total} steps; use --sampler ddim "
                                    f"for {args.steps} steps")
    try:
        changes = {"sampler": args.sampler, "steps": args.steps, "eta": args.eta, "mode": args.mode,
                   "window_overlap": args.overlap, "window_blend": args.blend, "seed": args.seed, "bf16": args.bf16}
        settings = SamplingSettings.from_config({k: v for k, v in changes.items() if v is not None})
        if args.window_batch < 1:
            raise InputError("--window-batch", f"must be >= 1, got {args.window_batch}")
    except InputError as err:
        flag = _FLAGS.get(err.where.split(".")[-1], err.where)
        raise InputError(flag, err.problem) from None
    started = time.perf_counter()
    hu = sample_nifti(loaded, args.mask, args.out, case_id=args.case_id, settings=settings, device=device,
                      progress=not args.quiet, window_batch=args.window_batch)
    steps = steps_total if settings.sampler == "ddpm" else settings.steps
    log.info("wrote %s: %s voxels, HU %d..%d, %s %d steps, %s mode, %.1f s", args.out, hu.shape,
             hu.min(), hu.max(), settings.sampler, steps, settings.mode, time.perf_counter() - started)
    return 0


def _add_config(subparsers) -> None:
    p = subparsers.add_parser(
        "config", help="print the effective workflow configuration, every key with its meaning",
        description="Merge config files as Snakemake's --configfile does (later files win), fill every "
                    "missing key with its default from the schema, validate, and print the result as "
                    "YAML with each key's description. With no file: the defaults.")
    p.add_argument("configfile", nargs="*", type=Path,
                   help="config files in order, e.g. config/config.yaml config/benchmark.yaml")
    p.set_defaults(func=_run_config)


def _run_config(args) -> int:
    from .config import annotated_yaml, load_config
    from .settings import WorkflowSettings

    for path in args.configfile:
        if not path.is_file():
            raise InputError(path, "config file not found")
    config = load_config(*args.configfile)
    WorkflowSettings.from_config(config)   # the checks across sections
    print(annotated_yaml(config))
    return 0


def _add_estimate(subparsers) -> None:
    p = subparsers.add_parser(
        "estimate", help="what a run will ask of a cluster, per rule, before anything is submitted",
        description="Print one row per rule of `all`: jobs, threads, memory, GPUs and runtime each job asks "
                    "(the workflow's own resources, lungsynth.resources), the estimate behind them, and the "
                    "totals (GPU-hours, CPU core-hours, disk). Needs no data: the case count comes from "
                    "--cases or the config.")
    p.add_argument("--configfile", nargs="+", type=Path, default=[], metavar="FILE",
                   help="overlays on config/config.yaml's defaults, as Snakemake's --configfile")
    p.add_argument("--cases", type=int, default=None,
                   help="cases in the run (default: phantom.n_scans, data.max_cases, else ~875 for LIDC-IDRI)")
    p.add_argument("--csv", type=Path, default=None, help="also write the table as CSV")
    p.set_defaults(func=_run_estimate)


def _run_estimate(args) -> int:
    from .config import load_config
    from .resources import Counts, estimate_csv, estimate_table, estimate_text
    from .settings import WorkflowSettings

    for path in args.configfile:
        if not path.is_file():
            raise InputError(path, "config file not found")
    if args.cases is not None and args.cases < 3:
        raise InputError("--cases", f"a run needs at least 3 cases (train, validation, test), got {args.cases}")
    config = load_config(*args.configfile)
    WorkflowSettings.from_config(config)
    counts = Counts.from_config(config, args.cases)
    requests = estimate_table(config, counts)
    print(estimate_text(requests, config, counts))
    if args.csv:
        from .io import atomic_path

        with atomic_path(args.csv) as tmp:
            Path(tmp).write_text(estimate_csv(requests))
    return 0


COMMANDS = [_add_sample, _add_config, _add_estimate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lungsynth", description="Patch-wise 3D DDPM for lung CT: tools outside the Snakemake workflow.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def _log_to_stderr() -> None:
    """The package's log records (not those of its dependencies) as ``lungsynth: ...`` on stderr."""
    if not any(getattr(h, "_lungsynth_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lungsynth: %(message)s"))
        handler._lungsynth_cli = True
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lungsynth`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"lungsynth: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lungsynth: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
