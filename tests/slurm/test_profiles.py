"""The SLURM profiles as files (no cluster needed): GPU asks, placeholders, and the test overrides
staying in step with the profile they override."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .cluster import PROFILES, REPO, SNAKEMAKE

GPU_RULES = ("train_ddpm", "sample", "nnunet_train", "nnunet_predict")
# GPU rules the profile names before the workflow has them (none now): such a rule's test is an
# expected failure, and fails as soon as the rule exists, until its name is removed here.
PENDING_GPU_RULES: set[str] = set()


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


def test_gpu_rules_ask_for_a_gpu_and_no_rule_asks_for_gres():
    asks = CLUSTER["set-resources"]
    assert set(GPU_RULES) <= set(asks)
    for rule in GPU_RULES:
        assert int(asks[rule]["gpu"]) >= 1, rule
    for name, settings in [("default-resources", CLUSTER["default-resources"]), *asks.items()]:
        assert "gres" not in settings, f"{name}: use `gpu`/`gpu_model`, never together with `gres`"
    # CPU rules ask for none: nothing GPU-like in the defaults, and only GPU rules get set-resources
    assert not {"gpu", "gpu_model", "gres"} & set(CLUSTER["default-resources"])
    assert set(asks) == set(GPU_RULES)


def test_test_cluster_overrides_keep_the_keys_of_the_cluster_profile():
    """A later --profile replaces whole top-level keys, so the overrides must be complete."""
    assert set(LOCAL["default-resources"]) == set(CLUSTER["default-resources"])
    assert LOCAL["default-resources"]["cpus_per_task"] == CLUSTER["default-resources"]["cpus_per_task"]
    assert (LOCAL["default-resources"]["slurm_partition"], LOCAL["default-resources"]["slurm_account"]) == ("debug", "ci")
    assert set(LOCAL["set-resources"]) == set(CLUSTER["set-resources"])
    assert all(int(r["gpu"]) == 0 for r in LOCAL["set-resources"].values()), "the test node has no GPU"
    assert "executor" not in LOCAL and "retries" not in LOCAL, "the test must run the user's settings"
    # the plugin falls back to sacct when MinJobAge (300 s in ci/slurm) < 3 x the first poll
    assert 3 * LOCAL["slurm-init-seconds-before-status-checks"] <= 300


@pytest.mark.workflow
@pytest.mark.parametrize("rule", [
    pytest.param(r, marks=pytest.mark.xfail(strict=True, reason="rule not in the workflow yet"))
    if r in PENDING_GPU_RULES else r for r in GPU_RULES])
def test_gpu_rule_named_in_the_profile_exists_in_the_workflow(rule, workflow_rules):
    """A misspelt rule name in set-resources is silently ignored: the job would get no GPU."""
    assert rule in workflow_rules


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
