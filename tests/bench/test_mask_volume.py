"""bench/mask_volume.py --quick: the table of what the grid keeps of a nodule, by rule."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.bench import REPO


def test_quick_table_shows_the_partial_volume_rule_keeps_what_the_threshold_loses(tmp_path):
    out = tmp_path / "mask_volume.csv"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "mask_volume.py"), "--quick", "--csv", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(out).set_index(["grid_mm", "diameter_mm", "rule"])
    assert (table.xs("partial volume", level="rule")["lost"] == 0).all()
    assert table.loc[("demo 5x3x3", 3, "threshold 0.5"), "lost"] > 0          # what the former rule dropped
    assert 0.85 <= table.loc[("lidc 2.5x1.25x1.25", 10, "partial volume"), "kept_mean"] <= 1.15
