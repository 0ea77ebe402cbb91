"""bench/memory.py --quick: ``net``, one case per mode in fresh processes, a CSV, a plot, the analytic
side; ``rules``, each heavy rule's code on stand-in crops, its peak against what the rule asks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from tests.bench import REPO, load_bench

SCRIPT = str(REPO / "bench" / "memory.py")


def test_quick_mode_measures_every_mode_and_writes_the_table_and_the_plot(tmp_path):
    csv = tmp_path / "memory.csv"
    done = subprocess.run([sys.executable, SCRIPT, "net", "--quick", "--threads", "1", "--csv", str(csv)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(csv)
    assert set(table["mode"]) == {"train patch-wise", "train whole volume", "sample whole", "sample windowed"}
    assert (table["status"] == "ok").all() and (table["peak_mb"] > 100).all() and (table["seconds"] > 0).all()
    assert (table["estimate_mb"] > 0).all() and table["cpu"].str.contains(r"\[").all()
    windowed = table[table["mode"] == "sample windowed"].iloc[0]
    assert "windows" in windowed["note"]
    analytic = pd.read_csv(tmp_path / "memory_analytic.csv").iloc[0]
    assert analytic["train_bytes_per_voxel"] > analytic["sample_bytes_per_voxel"] > 0   # backward keeps more
    assert (tmp_path / "memory.png").stat().st_size > 10_000

    again = subprocess.run([sys.executable, SCRIPT, "net", "--quick", "--threads", "1", "--csv", str(csv)],
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[1/" not in again.stderr                          # every case was in the CSV: resumed, none remeasured
    assert len(pd.read_csv(csv)) == len(table)


def test_a_case_peak_is_its_own_not_that_of_the_process_that_started_it():
    memory = load_bench("memory")
    ballast = np.ones(1536 * 2**20 // 8)                          # 1.5 GiB resident in this process
    result = memory.measure({"threads": 1, "mem_limit_gb": 8, "device": "cpu", "net": "benchmark",
                             "mode": "sample whole", "size": [16, 16, 16], "patch": None}, 600)
    assert result["status"] == "ok", result
    assert 50 < result["peak_mb"] < ballast.nbytes / 2**20 * 0.8    # a 16^3 call needs a few hundred MB


def test_quick_rules_measure_every_heavy_rule_within_what_it_asks(tmp_path):
    out = tmp_path / "paper_scale.csv"
    done = subprocess.run([sys.executable, SCRIPT, "rules", "--quick", "--csv", str(out),
                           "--workdir", str(tmp_path / "crops")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(out).set_index("rule")
    assert {"train_ddpm", "synthetic_quality", "nnunet_plan", "synthetic_fidelity"} <= set(table.index)
    assert (table.measured_peak_mb > 100).all(), table
    assert (table.measured_peak_mb < table.mem_mb_asked).all(), table
    assert table.cpu.str.contains("[", regex=False).all()
