"""bench/paper_scale.py --quick: each heavy rule's code runs on stand-in crops and its peak is
compared with what the rule asks."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.bench import REPO


def test_quick_run_measures_every_heavy_rule_within_what_it_asks(tmp_path):
    out = tmp_path / "paper_scale.csv"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "paper_scale.py"), "--quick", "--csv", str(out),
                           "--workdir", str(tmp_path / "crops")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(out).set_index("rule")
    assert {"train_ddpm", "train_ddpm (before)", "synthetic_quality", "nnunet_plan"} <= set(table.index)
    assert (table.measured_peak_mb > 100).all(), table
    measured = table.drop(index="train_ddpm (before)")
    assert (measured.measured_peak_mb < measured.mem_mb_asked).all(), table
    assert table.cpu.str.contains("[").all()
