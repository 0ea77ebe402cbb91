"""What rules ask of a cluster, from the config: the paper's run fits, retries grow, the CLI prints it."""

from __future__ import annotations

import pandas as pd
import pytest

from lungsynth import resources
from lungsynth.cli import main
from lungsynth.config import load_config
from tests.workflow.conftest import REPO, TEST_CONFIG

LIDC = REPO / "config" / "lidc.yaml"
NETWORK_RULES = {"train_ddpm", "sample", "synthetic_fidelity", "nnunet_train", "nnunet_predict"}


@pytest.fixture(scope="module")
def lidc():
    config = load_config(LIDC)
    counts = resources.Counts.from_config(config, 875)
    return config, counts, resources.estimate_table(config, counts)


def test_the_paper_run_asks_a_gpu_for_every_network_rule_and_none_elsewhere(lidc):
    _, _, table = lidc
    for request in table:
        assert request.gpus == (1 if request.rule in NETWORK_RULES else 0), request


def test_no_rule_asks_less_than_its_estimate(lidc):
    _, _, table = lidc
    for request in table:
        assert request.mem_mb >= request.estimated_peak_mb, request
        assert request.runtime_min >= request.estimated_runtime_min, request


def test_paper_run_estimates_follow_the_config_not_the_demo(lidc):
    config, counts, table = lidc
    asks = {r.rule: r for r in table}
    data_mb = counts.train * 128 * 256 * 256 * 3 / 2**20          # int16 crops + uint8 masks
    assert asks["train_ddpm"].estimated_peak_mb > data_mb > 10_000
    assert asks["nnunet_train"].threads >= 1 + config["nnunet"]["train"]["augmentation_workers"]
    assert asks["sample"].jobs <= 100
    assert asks["synthetic_volume"].jobs == counts.train + counts.worst * config["targeted"]["per_mask"]
    demo = {r.rule: r for r in resources.estimate_table(load_config(), resources.Counts.from_config(load_config()))}
    assert asks["train_ddpm"].mem_mb > 5 * demo["train_ddpm"].mem_mb
    assert asks["train_ddpm"].runtime_min > 5 * demo["train_ddpm"].runtime_min


def test_memory_and_runtime_grow_with_each_attempt(lidc):
    _, _, table = lidc
    first = table[0]
    second, third = first.at_attempt(2), first.at_attempt(3)
    assert first.mem_mb < second.mem_mb < third.mem_mb
    assert first.runtime_min < second.runtime_min < third.runtime_min
    assert first.at_attempt(1) == first


def test_snakemake_resources_follow_the_attempt_and_ask_a_gpu_only_on_cuda(lidc):
    config, counts, _ = lidc
    asked = resources.snakemake_resources("train_ddpm", config, lambda: counts)
    assert asked["gpu"] == 1
    assert asked["mem_mb"](None, 2) > asked["mem_mb"](None, 1)
    cpu_config = load_config()
    assert "gpu" not in resources.snakemake_resources("train_ddpm", cpu_config, lambda: counts)


def test_augmentation_workers_fit_the_job_threads():
    assert resources.augmentation_workers(8, resources.nnunet_threads({"augmentation_workers": 8}, True)) == 8
    assert resources.augmentation_workers(8, 1) == 0
    assert resources.augmentation_workers(8, 4) == 2
    assert resources.augmentation_workers(0, 16) == 0


def test_the_memory_model_reproduces_its_two_measured_nets():
    paper = {"channels": [32, 64, 128, 128], "num_res_blocks": 2}
    benchmark = {"channels": [16, 32, 32], "num_res_blocks": 1}
    assert resources.ddpm_train_bytes_per_voxel(paper) == pytest.approx(8155, rel=0.02)
    assert resources.ddpm_train_bytes_per_voxel(benchmark) == pytest.approx(2736, rel=0.02)
    assert resources.ddpm_train_flop_per_voxel(benchmark) * 2 * 32**3 == pytest.approx(50.22e9, rel=0.01)


def test_estimate_command_writes_every_rule_of_the_run(tmp_path, capsys):
    out = tmp_path / "plan.csv"
    assert main(["estimate", "--configfile", str(LIDC), "--cases", "875", "--csv", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == resources.CSV_COLUMNS
    assert {"preprocess_case", "train_ddpm", "sample", "nnunet_train", "utility_stats"} <= set(table.rule)
    assert "phantom_series" not in set(table.rule)           # a LIDC run writes no phantom
    assert "GPU-hours" in capsys.readouterr().out


def test_estimate_command_names_a_bad_case_count(capsys):
    assert main(["estimate", "--configfile", str(TEST_CONFIG), "--cases", "2"]) == 2
    assert "--cases" in capsys.readouterr().err
