"""The DDPM recipe harness on a tiny run folder: one variant trains in its budget, is scored, and
writes its CSV row (the frozen segmentation model is trained once and reused)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.bench import load_bench
from tests.nnunet.toys import write_toy_cases


def harness():
    return load_bench("ddpm_recipe")


TINY = """
ddpm:
  network: {channels: [8, 16, 16], norm_num_groups: 8}
  schedule: {num_train_timesteps: 50}
  training: {patch_size: [16, 16, 16], batch_size: 2, bf16: false}
sampling: {steps: 2, bf16: false}
nnunet:
  train: {epochs: 1, iterations_per_epoch: 2}
  plan: {features: [4, 8, 16], patch_size: [16, 16, 16]}
"""


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    cases = write_toy_cases(run / "results" / "data", 5, seed=2)
    names = sorted(cases)
    (run / "results" / "data" / "splits.json").write_text(json.dumps(
        {"train": names[:3], "validation": names[3:5], "test": []}))
    overlay = run / "tiny.yaml"
    overlay.write_text(TINY)
    return run, overlay


def test_a_variant_trains_in_its_cpu_budget_and_writes_one_row(run_folder, tmp_path):
    run, overlay = run_folder
    module = harness()
    csv, out = tmp_path / "ab.csv", tmp_path / "out"
    common = ["--run", str(run), "--config", str(overlay), "--budget", "3", "--masks", "1", "--seeds", "2",
              "--probe-every", "25", "--out", str(out), "--csv", str(csv)]
    assert module.main(["--name", "base", *common]) == 0
    assert module.main(["--name", "cosine", "--set", "ddpm.training.lr_schedule=cosine", *common]) == 0
    table = pd.read_csv(csv).set_index("variant")
    assert list(table.index) == ["base", "cosine"]
    row = table.loc["cosine"]
    assert row["settings"] == "ddpm.training.lr_schedule=cosine" and row["volumes"] == 2
    assert row["steps"] >= 50 and row["cpu_seconds"] > 0 and row["patches_per_s"] > 0
    assert 0 <= row["fidelity_dice"] <= 1 and row["real_dice"] >= 0 and row["wasserstein_lung_hu"] >= 0
    # the ratios are rounded to 4 decimals
    assert row["contrast_ratio"] == pytest.approx(row["contrast_hu"] / row["real_contrast_hu"], abs=5e-5)
    assert row["blob_ratio"] == pytest.approx(row["blobs"] / row["real_blobs"], abs=5e-5) if row["real_blobs"] else \
        pd.isna(row["blob_ratio"])
    assert "[" in row["cpu"]
    calibrated = json.loads((out / "cosine" / "training.json").read_text())
    assert calibrated["probe_cpu_seconds"] > 0             # the probe's cost is in the budget's step count
    assert calibrated["cpu_seconds_per_step"] > calibrated["bare_step_cpu_seconds"] > 0
    probe = pd.read_csv(out / "cosine" / "probe.csv")
    assert list(probe.columns[:2]) == ["step", "t0"] and probe["step"].iloc[-1] == row["steps"]
    loss = pd.read_csv(out / "cosine" / "loss.csv")
    assert loss["lr"].iloc[-1] == 0.0   # the decay saw the budget's horizon
    assert len(list((out / "frozen-model").glob("model/run.json"))) == 1   # trained once, shared
    again = module.main(["--name", "cosine", "--set", "ddpm.training.lr_schedule=cosine", *common])
    assert again == 0 and len(pd.read_csv(csv)) == 2   # a rerun replaces its row and resumes
    # a sampling-only variant reuses the model of a variant with the same ddpm: section
    assert module.main(["--name", "eta1", "--set", "sampling.eta=1.0", "--model-from", "base", *common]) == 0
    table = pd.read_csv(csv).set_index("variant")
    assert table.loc["eta1", "steps"] == table.loc["base", "steps"] and table.loc["eta1", "sampler"].endswith("eta 1")
    with pytest.raises(SystemExit, match="differ"):
        module.main(["--name", "bad", "--set", "ddpm.training.lr_schedule=cosine", "--model-from", "base", *common])
    with pytest.raises(SystemExit, match="cached under other ddpm"):   # its model is base's, not cosine's
        module.main(["--name", "base", "--set", "ddpm.training.lr_schedule=cosine", *common])
    # another judge scores the same volumes again: its own cached model, a row of its own
    volumes = sorted(p.stat().st_mtime_ns for p in (out / "base" / "volumes").glob("*.nii.gz"))
    strong = ["--judge", "judge4", "--judge-set", "nnunet.train.iterations_per_epoch=4"]
    assert module.main(["--name", "base", *strong, *common]) == 0
    assert sorted(p.stat().st_mtime_ns for p in (out / "base" / "volumes").glob("*.nii.gz")) == volumes
    judge = json.loads((out / "judge4" / "model" / "run.json").read_text())
    assert judge["train"]["iterations_per_epoch"] == 4
    table = pd.read_csv(csv)
    assert len(table) == 4 and sorted(table.loc[table["variant"] == "base", "judge"]) == ["frozen-model", "judge4"]
    assert (out / "base" / "volumes-judge4.csv").exists()
    with pytest.raises(SystemExit, match="other nnunet settings"):   # a judge's name keeps its settings
        module.main(["--name", "base", "--judge", "judge4", *common])
    with pytest.raises(SystemExit, match="nnunet"):
        module.main(["--name", "base", "--judge", "j", "--judge-set", "ddpm.training.steps=3", *common])


def test_unknown_key_in_set_is_refused(run_folder, tmp_path):
    run, overlay = run_folder
    with pytest.raises(SystemExit, match="no key"):
        harness().main(["--run", str(run), "--config", str(overlay), "--name", "x", "--set",
                        "ddpm.training.lr_shedule=cosine", "--out", str(tmp_path)])


def test_quick_trains_a_tiny_net_and_judge_on_any_run_folder(run_folder, tmp_path):
    run, _ = run_folder                       # no overlay: --quick alone makes it tiny
    csv, out = tmp_path / "quick.csv", tmp_path / "out"
    assert harness().main(["--run", str(run), "--name", "check", "--quick", "--out", str(out), "--csv", str(csv)]) == 0
    row = pd.read_csv(csv).iloc[0]
    assert row["variant"] == "check" and row["volumes"] == 1 and row["budget_s"] == 5
    assert "ddpm.network.channels=[8,16,16]" in row["settings"] and 0 <= row["fidelity_dice"] <= 1
    judge = json.loads((out / "frozen-model" / "model" / "run.json").read_text())
    assert judge["train"]["iterations_per_epoch"] == 2
