"""What the tests of the bench scripts share: loading a script as a module, and a tiny run folder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: an nnU-Net small enough to train in seconds on toy cases
TINY_NNUNET = """
nnunet:
  train: {epochs: 1, iterations_per_epoch: 2}
  plan: {features: [4, 8, 16], patch_size: [16, 16, 16]}
"""


def load_bench(name: str):
    """``bench/<name>.py`` as a module (the bench folder is scripts, not a package; they import
    their sibling ``benchlib`` as ``python bench/<name>.py`` would)."""
    import sys

    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_run(folder: Path, seed: int, overlay: str = TINY_NNUNET) -> tuple[Path, Path]:
    """A workflow run folder of 5 toy crops (3 train / 1 validation / 1 test) and a config overlay."""
    from tests.nnunet.toys import write_toy_cases

    cases = sorted(write_toy_cases(folder / "results" / "data", 5, seed=seed))
    (folder / "results" / "data" / "splits.json").write_text(json.dumps(
        {"train": cases[:3], "validation": cases[3:4], "test": cases[4:]}))
    path = folder.parent / f"{folder.name}.yaml"
    path.write_text(overlay)
    return folder, path
