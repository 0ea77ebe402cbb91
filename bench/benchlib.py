"""What the bench scripts share (a sibling: ``python bench/<script>.py`` puts bench/ on the path, on the
lent GPU too): a file lock, a run's config with ``key.path=value`` changes, a run's crops, a CSV's rows
replaced, the Real arm's plan, an error's first line, a timer."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


class Data:
    """The crops of a workflow run folder (``results/data``): its split, the paths of its cases."""

    def __init__(self, run: Path):
        self.folder = run / "results" / "data"
        self.split = json.loads((self.folder / "splits.json").read_text())

    def paths(self, kind: str, cases) -> list[Path]:
        return [self.folder / kind / f"{c}.nii.gz" for c in cases]


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


def first_line(err: BaseException, width: int = 200) -> str:
    """The first line of an error's message (its type's name if it has none), for a row's note."""
    text = str(err).strip()
    return text.splitlines()[0][:width] if text else type(err).__name__


def timed(device, work, repeats: int = 1) -> float:
    """Seconds per call of ``work(i)`` (``i``: its index), a CUDA ``device``'s queue drained before and after."""
    import torch

    sync = torch.cuda.synchronize if getattr(device, "type", None) == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    for i in range(repeats):
        work(i)
    sync()
    return (time.perf_counter() - started) / repeats


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


def replace_rows(csv: Path, keys: list[str], rows, **read) -> None:
    """Replace the rows of ``csv`` whose ``keys`` columns equal those of a row of ``rows`` (a table)
    by ``rows``, keep the others (locked); ``read``: for ``pd.read_csv``."""
    import pandas as pd

    from lungsynth.io import write_csv

    with locked(csv.with_name(f".{csv.name}.lock")):
        table = pd.read_csv(csv, **read) if csv.exists() else pd.DataFrame()
        if len(table) and all(k in table for k in keys):   # a key column the table lacks: no row is the same
            mine = set(rows[keys].astype(str).itertuples(index=False, name=None))
            table = table[[r not in mine for r in table[keys].astype(str).itertuples(index=False, name=None)]]
        write_csv(csv, pd.concat([table, rows], ignore_index=True), float_format="%.4g")


def real_arm_plan(run: Path, config: dict, out: Path, threads: int) -> Path:
    """The Real arm's nnU-Net dataset of a run folder, planned and preprocessed once per ``nnunet.plan``
    (cached under ``out``, locked): what the nnU-Net throughput times."""
    from lungsynth.arms import REFERENCE
    from lungsynth.pipeline import nnunet

    n, data = config["nnunet"], Data(run)
    key = hashlib.sha256(json.dumps(n["plan"], sort_keys=True).encode()).hexdigest()[:10]
    root = out / f"plan-{key}"
    with locked(out / ".plan.lock"):
        if not (root / "preprocessed").exists():
            pair = lambda part: tuple(data.paths(kind, data.split[part]) for kind in ("images", "masks"))  # noqa: E731
            nnunet.raw_dataset(REFERENCE.token, {"real": pair("train")}, pair("validation"), root / "raw",
                               REFERENCE.dataset_name(n["datasets"][REFERENCE.token]), "copy")
            nnunet.plan(root / "raw", root / "preprocessed", n["plan"], threads)
    return root / "preprocessed"
