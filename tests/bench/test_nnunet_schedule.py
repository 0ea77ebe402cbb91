"""The nnU-Net schedule study on a tiny run folder: one row per setting with the runs' spread,
each run cached so that a rerun resumes instead of training again."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from tests.bench import load_bench, toy_run


def study():
    return load_bench("nnunet_schedule")


def test_a_setting_gets_one_row_with_its_spread_and_a_rerun_reuses_the_runs(tmp_path):
    run, overlay = toy_run(tmp_path / "toyrun", seed=4)
    csv, out = tmp_path / "schedule.csv", tmp_path / "out"
    common = ["--run", str(run), "--config", str(overlay), "--seeds", "1", "2", "--out", str(out), "--csv", str(csv)]
    assert study().main(["--name", "two-its", *common]) == 0
    assert study().main(["--name", "four-its", "--set", "nnunet.train.iterations_per_epoch=4", *common]) == 0
    table = pd.read_csv(csv).set_index("setting")
    assert list(table.index) == ["two-its", "four-its"]
    assert table.loc["two-its", "iterations"] == 2 and table.loc["four-its", "iterations"] == 4
    row = table.loc["four-its"]
    assert row["runs"] == 2 and row["crops"] == "toyrun: 3 train / 1 test"
    dice = [float(d) for d in row["run_dice"].split()]
    assert all(0 <= d <= 1 for d in dice)
    assert row["mean_test_dice"] == pytest.approx(sum(dice) / 2, abs=1e-3)
    assert row["min_test_dice"] <= row["mean_test_dice"] <= row["max_test_dice"]
    assert row["train_minutes"] > 0 and "[" in row["cpu"]
    cached = out / "four-its" / "seed2" / "result.json"
    stamp = cached.stat().st_mtime_ns
    assert study().main(["--name", "four-its", "--set", "nnunet.train.iterations_per_epoch=4", *common]) == 0
    assert cached.stat().st_mtime_ns == stamp and len(pd.read_csv(csv)) == 2   # resumed, row replaced
    # a prediction-only setting reuses the trained runs of one with the same plan and schedule
    best = ["--name", "best", "--set", "nnunet.train.iterations_per_epoch=4", "--set",
            "nnunet.predict.checkpoint=checkpoint_best.pth", "--model-from", "four-its", *common]
    assert study().main(best) == 0
    assert not (out / "best" / "seed1" / "model").exists() and (out / "best" / "seed1" / "predictions").is_dir()
    table = pd.read_csv(csv).set_index("setting")
    assert table.loc["best", "train_minutes"] == pytest.approx(table.loc["four-its", "train_minutes"], rel=1e-3)
    assert table.loc["best", "changes"].endswith("(the runs of four-its)")
    # runs cached before a key was added to the schema are its default's runs
    recorded = out / "four-its" / "nnunet.yaml"
    older = yaml.safe_load(recorded.read_text())
    del older["train"]["oversampling"], older["predict"]["lung_margin_mm"]
    recorded.write_text(yaml.safe_dump(older))
    assert study().main(["--name", "four-its", "--set", "nnunet.train.iterations_per_epoch=4", *common]) == 0
    assert study().main(best) == 0
    with pytest.raises(SystemExit, match="differ"):
        study().main(["--name", "best2", "--model-from", "two-its", "--set", "nnunet.train.iterations_per_epoch=4",
                      *common])
    with pytest.raises(SystemExit, match="other nnunet settings"):   # a name's cache is not reused for others
        study().main(["--name", "four-its", "--set", "nnunet.train.iterations_per_epoch=3", *common])
    with pytest.raises(SystemExit, match="no key"):
        study().main(["--name", "bad", "--set", "nnunet.train.iterations=4", *common])
