r"""Is a weak Synthetic arm a domain gap or a failure to learn? Dice of each arm's runs on real test
cases against Dice on synthetic volumes none of them trained on.

    .venv/bin/python bench/domain_gap.py runs/benchmark --config config/benchmark.yaml \
        [--arms Real Synthetic] [--runs 1 2] [--set targeted]

The Synthetic arm trains on the ``general`` set (volumes from the training masks); the
``targeted`` set (volumes from validation masks) is synthetic data it has not seen. A Synthetic
run that segments the targeted volumes but not the real test cases has learnt the synthetic
domain and does not transfer; one that fails on both has not learnt the task. (The
Real+Synthetic arm trains on the targeted set, so it is left out by default.) Prints one row per
arm and run: real test Dice (from ``test_dice.csv``) and Dice on the synthetic set against its
conditioning masks, with true- and false-positive voxels per volume.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from lungsynth.arms import TOKENS
from lungsynth.config import load_config
from lungsynth.pipeline.fidelity import fidelity_dice
from lungsynth.scripting import configure_logging

ROOT = Path(__file__).resolve().parents[1]


def synthetic_pairs(run: Path, name: str) -> dict:
    folder = run / "results" / "synthetic" / name
    images = sorted(folder.glob("*.nii.gz"))
    if not images:
        raise SystemExit(f"{folder}: no synthetic volumes (run the workflow first)")
    return {p.name[: -len(".nii.gz")]: (str(p), str(folder / "masks" / p.name)) for p in images}


def domain_gap(run: Path, arms: list[str], name: str, settings: dict, threads: int,
               runs: list[int] | None = None) -> pd.DataFrame:
    pairs = synthetic_pairs(run, name)
    rows = []
    for arm in arms:
        for model in sorted((run / "results" / "nnunet" / arm).glob("run*/model")):
            test = model.parent / "test_dice.csv"
            if not test.exists() or (runs and int(model.parent.name[3:]) not in runs):
                continue
            per_volume = fidelity_dice([model], pairs, settings, threads)
            rows.append({"arm": arm, "run": model.parent.name,
                         "real_test_dice": round(pd.read_csv(test)["dice"].mean(), 4),
                         f"{name}_dice": round(per_volume["dice"].mean(), 4),
                         "tp_per_volume": round(per_volume["tp"].mean(), 1),
                         "fp_per_volume": round(per_volume["fp"].mean(), 1),
                         "mask_voxels_per_volume": round(per_volume["truth_voxels"].mean(), 1)})
    if not rows:
        raise SystemExit(f"{run}: no finished nnU-Net runs of {arms}")
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a workflow run folder (runs/benchmark, or . for the demo)")
    parser.add_argument("--arms", nargs="+", default=["Real", "Synthetic"], choices=TOKENS,
                        help="arm folders under results/nnunet/ (default: Real Synthetic)")
    parser.add_argument("--set", default="targeted", help="synthetic set under results/synthetic/ (default: targeted)")
    parser.add_argument("--config", help="the run's config overlay over config/config.yaml (e.g. config/benchmark.yaml)")
    parser.add_argument("--runs", type=int, nargs="+", help="only these run numbers (default: all; a CPU "
                        "predicts one volume in 10-70 s)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    configure_logging()
    config = load_config(ROOT / "config" / "config.yaml", *([args.config] if args.config else []))
    table = domain_gap(args.run, args.arms, args.set, config["nnunet"]["predict"], args.threads, args.runs)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
