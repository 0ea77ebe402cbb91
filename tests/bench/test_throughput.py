"""The throughput benchmark at tiny sizes: the DDPM's step per variant in its own process, and
nnU-Net on a tiny run folder (every variant timed, bf16 reported as used only where the CPU runs it
fast, the speed-up against fp32)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from lungsynth.runtime import cpu_has_fast_bf16
from tests.bench import load_bench, toy_run


def bench():
    return load_bench("throughput")


def test_every_variant_is_timed_for_training_and_prediction(tmp_path, monkeypatch):
    run, overlay = toy_run(tmp_path / "run", seed=3)
    csv = tmp_path / "throughput.csv"
    threads = torch.get_num_threads()
    assert bench().main(["nnunet", "--run", str(run), "--config", str(overlay), "--threads", "1", "--iterations", "2",
                         "--warmup", "1", "--cases", "1", "--out", str(tmp_path / "out"), "--csv", str(csv)]) == 0
    torch.set_num_threads(threads)
    table = pd.read_csv(csv)
    assert sorted(table["stage"].unique()) == ["predict", "train"]
    assert set(table["variant"]) == {"fp32", "bf16"}
    assert len(table) == 4 and (table["seconds"] > 0).all()
    train = table[table["stage"] == "train"]
    assert list(train["seconds"]) == pytest.approx(list(train["data_seconds"] + train["step_seconds"]), rel=1e-3)
    fp32 = table[table["variant"] == "fp32"]
    assert (fp32["speedup"] == 1).all()
    bf16 = table[table["variant"].str.startswith("bf16")]
    assert (bf16["bf16_used"] == cpu_has_fast_bf16()).all()   # falls back to fp32 where bf16 is slow
    assert "[" in table["cpu"].iloc[0]
    # a rerun replaces its own rows; one under a oneDNN cap (another "machine") adds its own
    common = ["nnunet", "--run", str(run), "--config", str(overlay), "--threads", "1", "--iterations", "1", "--warmup", "0",
              "--cases", "1", "--out", str(tmp_path / "out"), "--csv", str(csv)]
    assert bench().main([*common, "--variants", "fp32"]) == 0
    again = pd.read_csv(csv)
    trained = again[again["stage"] == "train"].set_index("variant")["n"]
    assert len(again) == 4 and trained["fp32"] == 1 and trained["bf16"] == 2
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert bench().main([*common, "--variants", "fp32", "bf16"]) == 0
    torch.set_num_threads(threads)
    capped = pd.read_csv(csv)
    capped = capped[capped["cpu"].str.endswith("oneDNN capped at AVX2")]
    assert len(capped) == 4 and not capped["bf16_used"].any()


def test_ddpm_quick_times_each_variant_beside_the_matmul(tmp_path):
    csv = tmp_path / "ddpm.csv"
    assert bench().main(["ddpm", "--quick", "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    steps = table[table["net"] == "8-16-16"]
    assert set(steps["variant"]) == {"fp32", "fp32 channels_last_3d", "bf16", "bf16 channels_last_3d"}
    assert (steps["status"] == "ok").all() and (steps["seconds_per_step"] > 0).all()
    assert (steps["gflop_per_step"] > 0).all() and (steps["threads"] == 1).all()
    assert sorted(table.loc[table["net"] == "matmul", "variant"]) == ["bf16", "fp32"]


def test_nnunet_quick_times_one_thread_and_one_case(tmp_path):
    run, overlay = toy_run(tmp_path / "run", seed=4)
    csv = tmp_path / "quick.csv"
    threads = torch.get_num_threads()
    assert bench().main(["nnunet", "--quick", "--run", str(run), "--config", str(overlay), "--variants", "fp32",
                         "--out", str(tmp_path / "out"), "--csv", str(csv)]) == 0
    torch.set_num_threads(threads)
    table = pd.read_csv(csv)
    assert list(table["stage"]) == ["train", "predict"] and (table["threads"] == 1).all()
    assert list(table["n"]) == [2, 1]
