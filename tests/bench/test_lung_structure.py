"""The lung-structure diagnosis on a toy run: vessels cut into pieces count as many small
components and blobs; a lung that is only brighter is undone by the lung-level shift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from lungsynth.io import write_nifti
from tests.bench import load_bench
from tests.conftest import synthetic_chest


def _vessels(hu, lungs, nodule, cut: bool) -> np.ndarray:
    """Straight 16-voxel vessels along x through the lungs, whole or cut into 3-voxel pieces."""
    hu = hu.copy()
    for z, y in [(14, 40), (20, 58), (26, 36)]:
        for cx in (29, 66):
            assert lungs[z, y, cx - 8:cx + 8].all() and not nodule[z, y, cx - 9:cx + 9].any()
            for start in range(cx - 8, cx + 8, 4 if cut else 16):
                hu[z, y, start:start + (3 if cut else 16)] = 40
    return hu


def test_cut_vessels_show_as_components_and_a_brighter_lung_is_undone_by_the_shift(tmp_path):
    module = load_bench("lung_structure")
    hu, lungs, nodule, geometry = synthetic_chest()
    data = tmp_path / "run" / "results" / "data"
    real = _vessels(hu, lungs, nodule, cut=False)
    write_nifti(data / "images" / "c1.nii.gz", real.astype(np.int16), geometry)
    write_nifti(data / "masks" / "c1.nii.gz", nodule.astype(np.uint8), geometry)
    (data / "splits.json").write_text(json.dumps({"train": [], "validation": ["c1"], "test": []}))
    sets = {"copies": real, "pieces": _vessels(hu, lungs, nodule, cut=True),
            "brighter": np.where(lungs & ~nodule, real + 100, real)}
    for name, volume in sets.items():
        write_nifti(tmp_path / name / "c1_s0.nii.gz", volume.astype(np.int16), geometry)
    csv = tmp_path / "structure.csv"
    argv = ["--run", str(tmp_path / "run"), "--csv", str(csv)]
    assert module.main([*argv, *[f"--volumes={n}={tmp_path / n}" for n in sets]]) == 0
    table = pd.read_csv(csv).set_index("set")
    copies, pieces, brighter = table.loc["copies"], table.loc["pieces"], table.loc["brighter"]
    assert copies["component_ratio"] == 1 and copies["blob_ratio_at_real_lung_level"] == copies["blob_ratio"]
    assert copies["real_dense_components"] == 6 and copies["real_big_component_share"] == 0
    assert pieces["dense_components"] == 4 * copies["dense_components"] and pieces["blobs"] == 24
    assert pieces["dense_share_ratio"] < 1
    assert brighter["lung_median_hu"] - copies["lung_median_hu"] == 100
    assert brighter["blob_ratio_at_real_lung_level"] == 1
    assert module.main([*argv, f"--volumes=copies={tmp_path / 'copies'}"]) == 0
    assert len(pd.read_csv(csv)) == 3                          # a rerun replaces its row
