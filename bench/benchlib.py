"""What the bench scripts share (they import it as a sibling: ``python bench/<script>.py`` puts bench/
on the path): a file lock, the config of a run with ``key.path=value`` changes, the Real arm's plan."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock on ``path`` (created), for work that side-by-side runs share."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def config_with(overlays, sets: list[str]) -> dict:
    """config/config.yaml + ``overlays`` (merged as Snakemake does), then ``key.path=value`` changes."""
    from lungsynth.config import load_config

    return with_sets(load_config(ROOT / "config" / "config.yaml", *overlays), sets)


def with_sets(config: dict, sets: list[str]) -> dict:
    """A copy of a whole config with ``key.path=value`` changes (YAML values), validated."""
    from lungsynth.settings import WorkflowSettings

    config = copy.deepcopy(config)
    for item in sets:
        key, _, value = item.partition("=")
        *path, leaf = key.split(".")
        node = config
        for part in path:
            node = node[part]
        if leaf not in node:
            raise SystemExit(f"--set {item}: no key {key} in the config")
        node[leaf] = yaml.safe_load(value)
    WorkflowSettings.from_config(config)
    return config


def recorded_nnunet(path: Path) -> dict:
    """``nnunet`` settings recorded beside cached runs, newer schema keys at their (then) defaults."""
    from lungsynth.config import complete

    return complete(yaml.safe_load(Path(path).read_text()), "nnunet")


def replace_row(csv: Path, key: str | list[str], row: dict) -> None:
    """Replace the row whose ``key`` column(s) equal ``row``'s in ``csv`` (locked)."""
    import numpy as np
    import pandas as pd

    from lungsynth.io import write_csv

    keys = [key] if isinstance(key, str) else list(key)
    with locked(csv.with_name(f".{csv.name}.lock")):
        table = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
        if len(table) and all(k in table for k in keys):   # a key column the table lacks: no row is the same
            same = np.logical_and.reduce([table[k].astype(str) == str(row[k]) for k in keys])
            table = table[~same]
        write_csv(csv, pd.concat([table, pd.DataFrame([row])], ignore_index=True), float_format="%.4g")


def real_arm_plan(run: Path, config: dict, out: Path, threads: int) -> Path:
    """The Real arm's nnU-Net dataset of a run folder, planned and preprocessed once per ``nnunet.plan``
    (cached under ``out``, locked): what the nnU-Net throughput times."""
    from lungsynth.arms import REFERENCE
    from lungsynth.pipeline import nnunet

    n = config["nnunet"]
    data = run / "results" / "data"
    split = json.loads((data / "splits.json").read_text())
    key = hashlib.sha256(json.dumps(n["plan"], sort_keys=True).encode()).hexdigest()[:10]
    root = out / f"plan-{key}"
    with locked(out / ".plan.lock"):
        if not (root / "preprocessed").exists():
            paths = lambda cases, kind: [data / kind / f"{c}.nii.gz" for c in cases]  # noqa: E731
            nnunet.raw_dataset(REFERENCE.token, {"real": (paths(split["train"], "images"), paths(split["train"], "masks"))},
                               (paths(split["validation"], "images"), paths(split["validation"], "masks")),
                               root / "raw", REFERENCE.dataset_name(n["datasets"][REFERENCE.token]), "copy")
            nnunet.plan(root / "raw", root / "preprocessed", n["plan"], threads)
    return root / "preprocessed"
