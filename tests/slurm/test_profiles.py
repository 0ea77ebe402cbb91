"""The SLURM profiles as files (no cluster needed): GPU asks, placeholders, and the test overrides
staying in step with the profile they override."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .cluster import PROFILES, REPO, SNAKEMAKE

GPU_RULES = ("train_ddpm", "sample", "synthetic_fidelity", "nnunet_train", "nnunet_predict")


def profile(path) -> dict:
    return yaml.safe_load((path / "config.yaml").read_text())


CLUSTER, LOCAL = (profile(p) for p in PROFILES)


def test_cluster_profile_uses_the_slurm_executor_with_placeholders_the_user_must_replace():
    assert CLUSTER["executor"] == "slurm"
    defaults = CLUSTER["default-resources"]
    assert defaults["slurm_partition"].startswith("SET-YOUR-")
    assert defaults["slurm_account"].startswith("SET-YOUR-")
    assert {"runtime", "mem_mb", "cpus_per_task"} <= set(defaults)
    # a number here would override every rule's threads; the expression keeps --cpus-per-task = threads
    assert defaults["cpus_per_task"] == "threads"
    assert CLUSTER["retries"] >= 1 and CLUSTER["rerun-incomplete"] is True and CLUSTER["latency-wait"] >= 30


def test_gpus_come_from_the_config_and_no_profile_asks_for_gres_or_gpus():
    """The rules ask for a GPU themselves where the config runs on CUDA (lungsynth.resources): a
    profile that asked too would give the demo's CPU run a GPU it cannot use, and `gres` beside the
    rules' `gpu` would make the plugin pass both --gres and --gpus."""
    for profile_settings in (CLUSTER, LOCAL):
        for key in ("default-resources", "set-resources", "resources"):
            settings = profile_settings.get(key) or {}
            flat = [settings] if key != "set-resources" else list(settings.values())
            for entry in flat:
                assert not {"gpu", "gres"} & set(entry), f"{key}: {entry}"


@pytest.mark.parametrize("configfile, gpus", [("config/lidc.yaml", 1), ("tests/workflow/config.yaml", 0)])
def test_network_rules_ask_for_a_gpu_exactly_when_the_config_runs_on_cuda(configfile, gpus):
    from lungsynth.config import load_config
    from lungsynth.resources import Counts, snakemake_resources

    config = load_config(REPO / configfile)
    for rule in GPU_RULES:
        assert snakemake_resources(rule, config, lambda: Counts.from_config(config)).get("gpu", 0) == gpus, rule
    assert "gpu" not in snakemake_resources("preprocess_case", config, lambda: Counts.from_config(config))


def test_test_cluster_overrides_keep_the_keys_of_the_cluster_profile():
    """A later --profile replaces whole top-level keys, so the overrides must be complete."""
    assert set(LOCAL["default-resources"]) == set(CLUSTER["default-resources"])
    assert LOCAL["default-resources"]["cpus_per_task"] == CLUSTER["default-resources"]["cpus_per_task"]
    assert (LOCAL["default-resources"]["slurm_partition"], LOCAL["default-resources"]["slurm_account"]) == ("debug", "ci")
    assert set(LOCAL.get("set-resources") or {}) == set(CLUSTER.get("set-resources") or {})
    assert "executor" not in LOCAL and "retries" not in LOCAL, "the test must run the user's settings"
    # the plugin falls back to sacct when MinJobAge (300 s in .ci/slurm) < 3 x the first poll
    assert 3 * LOCAL["slurm-init-seconds-before-status-checks"] <= 300


@pytest.mark.workflow
def test_gpu_rules_exist_in_the_workflow(workflow_rules):
    """A misspelt rule name in lungsynth.resources.GPU_RULES would silently get no GPU."""
    from lungsynth.resources import GPU_RULES as LIBRARY_GPU_RULES

    assert set(GPU_RULES) <= workflow_rules
    assert set(LIBRARY_GPU_RULES) <= workflow_rules


@pytest.fixture(scope="module")
def workflow_rules() -> set[str]:
    done = subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--list-rules"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(done.stdout.split())


def test_profile_named_slurm_is_found_from_the_repository_root(monkeypatch):
    """`snakemake --profile slurm` (the design card's command) looks in ./slurm first."""
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO)
    directory, config = get_profile_dir("slurm")
    assert config.resolve() == (REPO / "profiles" / "slurm" / "config.yaml").resolve()
    assert get_profile_dir("profiles/slurm")[1].resolve() == config.resolve()
