"""Stage times from Snakemake benchmark files: runs and cases pooled per stage, the CSV with its CPU."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.bench import REPO

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_tsv(path, seconds, rss):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds}\n")


def test_jobs_are_pooled_per_stage_and_the_csv_carries_the_cpu(tmp_path):
    bench = tmp_path / "benchmarks"
    write_tsv(bench / "nnunet" / "Real" / "run1" / "train.tsv", 100.0, 700)
    write_tsv(bench / "nnunet" / "Real" / "run2" / "train.tsv", 300.0, 800)
    write_tsv(bench / "phantom" / "LIDC-IDRI-0001.tsv", 10.0, 900)
    csv = tmp_path / "stage_times.csv"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "stage_times.py"), str(tmp_path), "--csv", str(csv)],
                          capture_output=True, text=True, check=True)
    assert "3 jobs" in done.stdout
    table = pd.read_csv(csv).set_index("stage")
    assert table.loc["nnunet/Real/train", "jobs"] == 2 and table.loc["nnunet/Real/train", "total_s"] == 400
    assert table.loc["nnunet/Real/train", "median_s"] == 200 and table.loc["nnunet/Real/train", "max_rss_mb"] == 800
    assert table.loc["phantom/<case>", "jobs"] == 1
    assert table["cpu"].str.len().gt(0).all() and table["last_ended"].notna().all()
