"""The project's own DAG on a real SLURM, through `--profile profiles/slurm` (+ the test cluster's
overrides in profiles/slurm-local), on the workflow tests' tiny configuration with fewer cases.

The working directory is seeded with a nodule table built once per session, so the cluster runs
the per-case jobs. Two Snakemake runs: the first builds the case selection (a checkpoint) and, if a
target needs it, the split, so that the targets below can name real cases; the second builds the
targets. Both runs are checked for what went through SLURM, and the outputs for what they are.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from lungsynth.io import read_nifti

from .cluster import REPO, SlurmRun, run_on_slurm, sacct, sacct_table

pytestmark = pytest.mark.slurm

# What the SLURM test builds, relative to its working directory: preprocessing, a DDPM training of a
# few steps and a few sampled volumes. Placeholders: {case} is each of the first N_CASES cases of
# results/data/selection.csv; {train_case}, {validation_case} and {test_case} the first N_CASES
# cases of that set in results/data/splits.json. Extend it as the DAG grows.
SLURM_TARGETS = (
    "results/data/images/{train_case}.nii.gz",
    "results/data/masks/{train_case}.nii.gz",
    "results/ddpm/model.pt",
    "results/synthetic/general/{train_case}.nii.gz",
)
N_CASES = 2
# the workflow tests' configuration, and tests/slurm/config.yaml on top (4 scans instead of 8)
CONFIGFILES = (REPO / "tests" / "workflow" / "config.yaml", Path(__file__).with_name("config.yaml"))
BUDGET = 900            # s per Snakemake run (it is stopped with SIGINT after that)
SPLIT_SETS = ("train", "validation", "test")


@dataclass
class DagOnSlurm:
    workdir: Path
    targets: list[str]
    runs: list[SlurmRun]

    @property
    def report(self) -> str:
        ids = [i for r in self.runs for i in r.slurm_ids]
        logs = "\n".join(r.output[-3000:] for r in self.runs)
        return f"{logs}\n{sacct_table(ids)}"


def first_stage_targets(targets) -> list[str]:
    """The checkpoint (and the split, if a target names split cases) that the targets are named from."""
    first = ["results/data/selection.csv"]
    if any(f"{{{s}_case}}" in t for t in targets for s in SPLIT_SETS):
        first.append("results/data/splits.json")
    return first


def expand_targets(workdir: Path, targets=SLURM_TARGETS, n: int = N_CASES) -> list[str]:
    cases = {"case": pd.read_csv(workdir / "results/data/selection.csv", dtype=str)["case"].tolist()[:n]}
    splits = workdir / "results/data/splits.json"
    if splits.exists():
        split = json.loads(splits.read_text())
        cases.update({f"{s}_case": split[s][:n] for s in SPLIT_SETS})
    expanded = []
    for target in targets:
        keys = set(re.findall(r"{(\w+)}", target))
        assert len(keys) <= 1, f"one placeholder per target: {target}"
        expanded += [target.format(**{k: c}) for k in keys for c in cases[k]] if keys else [target]
    return expanded


def merged_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for overlay in CONFIGFILES:
        for key, value in (yaml.safe_load(overlay.read_text()) or {}).items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


@pytest.fixture(scope="module")
def dag_on_slurm(nodule_table_build, slurm_cluster, tmp_path_factory) -> DagOnSlurm:
    workdir = tmp_path_factory.mktemp("dag-on-slurm")
    (workdir / "results" / "lidc").mkdir(parents=True)
    shutil.copy(nodule_table_build(), workdir / "results" / "lidc" / "nodules.csv")
    config = ["--configfile", *map(str, CONFIGFILES)]      # last: it takes every argument after it

    first = run_on_slurm(workdir, *first_stage_targets(SLURM_TARGETS), *config, budget=BUDGET)
    if first.returncode != 0:
        pytest.fail(f"building the case selection on SLURM failed (exit {first.returncode}):\n"
                    f"{first.output[-5000:]}\n{sacct_table(first.slurm_ids)}", pytrace=False)
    targets = expand_targets(workdir)
    second = run_on_slurm(workdir, *targets, *config, budget=BUDGET)
    dag = DagOnSlurm(workdir, targets, [first, second])
    seconds = ", ".join(f"{r.seconds:.0f} s" for r in dag.runs)
    print(f"\nSLURM runs took {seconds}; cluster start {slurm_cluster.start_seconds:.0f} s\n"
          f"{sacct_table([i for r in dag.runs for i in r.slurm_ids])}")
    (workdir / "sacct.txt").write_text(sacct_table([i for r in dag.runs for i in r.slurm_ids]))
    return dag


def test_the_dag_builds_its_targets_on_slurm(dag_on_slurm):
    for run in dag_on_slurm.runs:
        assert run.returncode == 0, f"exit {run.returncode} after {run.seconds:.0f} s\n{dag_on_slurm.report}"
    missing = [t for t in dag_on_slurm.targets if not (dag_on_slurm.workdir / t).exists()]
    assert not missing, f"{missing}\n{dag_on_slurm.report}"


def test_every_job_snakemake_ran_was_a_completed_slurm_job(dag_on_slurm):
    report = dag_on_slurm.report
    for run in dag_on_slurm.runs:
        assert run.returncode == 0, report
        finished = {jobid: rule for jobid, rule in run.finished.items() if rule not in run.local_rules}
        submitted = {s.jobid: s for s in run.submissions}
        groups = [s for s in run.submissions if s.group]
        assert finished, f"no job ran\n{report}"
        # a job of a group (`group:` / --groups) is submitted as part of its group's SLURM job
        alone = {j: r for j, r in finished.items() if not any(r in g.rule for g in groups)}
        assert set(alone) <= set(submitted), f"jobs that did not go through SLURM: " \
                                             f"{set(alone) - set(submitted)}\n{report}"
        rows = {row["JobIDRaw"]: row for row in sacct(run.slurm_ids)}
        for group in groups:
            assert rows[group.slurm_id]["State"] == "COMPLETED", f"{group}\n{report}"
        for jobid, rule in alone.items():
            sub = submitted[jobid]
            row = rows.get(sub.slurm_id)
            assert row is not None, f"SLURM job {sub.slurm_id} ({rule}) is not in sacct\n{report}"
            assert row["State"] == "COMPLETED" and row["ExitCode"] == "0:0", f"{row}\n{report}"
            assert (row["Account"], row["Partition"]) == ("ci", "debug"), f"{row}\n{report}"
            assert row["Comment"].startswith(f"rule_{rule}"), f"{row}\n{report}"
            # what Snakemake asked for is what SLURM allocated
            wanted = run.resources[jobid]
            assert row["ReqMem"] == f"{wanted['mem_mb']}M", f"{row} vs {wanted}\n{report}"
            assert row["AllocCPUS"] == wanted["cpus_per_task"], f"{row} vs {wanted}\n{report}"
            assert minutes(row["Timelimit"]) == int(wanted["runtime"]), f"{row} vs {wanted}\n{report}"
            # the plugin's SLURM log of the job holds the job's own Snakemake output
            assert sub.log.is_file() and re.search(rf"^(rule|checkpoint) {rule}:$", sub.log.read_text(),
                                                   re.MULTILINE), f"{sub}\n{report}"


def test_the_volumes_built_on_slurm_are_valid_nifti_of_the_configured_size(dag_on_slurm):
    workdir = dag_on_slurm.workdir
    volume_size = tuple(merged_config()["preprocess"]["volume_size"])
    volumes = sorted({*(workdir / t for t in dag_on_slurm.targets if t.endswith(".nii.gz")),
                      *(workdir / "results").rglob("*.nii.gz")})
    assert volumes, dag_on_slurm.report
    for path in volumes:
        image = nib.load(path)                        # a NIfTI header nibabel accepts
        data = np.asarray(image.dataobj)
        assert data.ndim == 3 and np.isfinite(data).all(), path
        assert np.isfinite(image.affine).all() and abs(np.linalg.det(image.affine[:3, :3])) > 0, path
        array, geometry = read_nifti(path)            # the project's reader: (z, y, x)
        assert array.shape == volume_size, f"{path}: {array.shape} != {volume_size}"
    for image_path in (workdir / "results/data/images").glob("*.nii.gz"):
        mask_path = workdir / "results/data/masks" / image_path.name
        image, image_geometry = read_nifti(image_path)
        mask, mask_geometry = read_nifti(mask_path)
        assert set(np.unique(mask)) <= {0, 1}, mask_path
        assert image_geometry.matches(mask_geometry), image_path.name
        assert -2000 <= image.min() and image.max() <= 4000, f"{image_path}: not HU"


def minutes(timelimit: str) -> int:
    """sacct's Timelimit ([D-]HH:MM:SS) in minutes."""
    days, _, clock = timelimit.rpartition("-")
    h, m, _ = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + h * 60 + m


def test_a_cpu_rule_is_submitted_with_what_lungsynth_resources_computes(dag_on_slurm):
    """preprocess_case as SLURM recorded it: the cores, memory and time limit of the estimate."""
    from lungsynth.config import load_config
    from lungsynth.resources import Counts, rule_request

    config = load_config(*CONFIGFILES)
    split = json.loads((dag_on_slurm.workdir / "results/data/splits.json").read_text())
    expected = rule_request("preprocess_case", config, Counts.from_split(split, None, config))
    subs = [s for r in dag_on_slurm.runs for s in r.submissions if s.rule == "preprocess_case"]
    assert subs, dag_on_slurm.report
    rows = {row["JobIDRaw"]: row for row in sacct([s.slurm_id for s in subs])}
    for sub in subs:
        row = rows[sub.slurm_id]
        assert (int(row["AllocCPUS"]), row["ReqMem"], minutes(row["Timelimit"])) == \
            (expected.threads, f"{expected.mem_mb}M", expected.runtime_min), f"{row} vs {expected}"


def test_a_gpu_rule_is_submitted_with_one_gpu_and_its_computed_cores_memory_and_time(dag_on_slurm, tmp_path):
    """train_ddpm with execution.device: cuda, as the plugin hands it to sbatch (the test node has
    no GPU, so SLURM refuses it or leaves it pending; the call is what is checked)."""
    from lungsynth.config import load_config
    from lungsynth.resources import Counts, rule_request

    workdir = tmp_path / "gpu"
    shutil.copytree(dag_on_slurm.workdir / "results", workdir / "results", symlinks=True)
    overlay = tmp_path / "cuda.yaml"
    overlay.write_text("execution:\n  device: cuda\n")
    # --cores and --resources above the job's ask: the test profile caps both for the CPU-sized runs
    run = run_on_slurm(workdir, "--verbose", "--cores", "16", "--resources", "mem_mb=100000", "--allowed-rules",
                       "train_ddpm", "--forcerun", "train_ddpm", "results/ddpm/model.pt", "--configfile",
                       *map(str, CONFIGFILES), str(overlay), budget=90)
    calls = re.findall(r"sbatch call: (sbatch .*--comment rule_train_ddpm .*)", run.output)
    assert calls, run.output[-5000:]
    config = load_config(*CONFIGFILES, overlay)
    split = json.loads((workdir / "results/data/splits.json").read_text())
    expected = rule_request("train_ddpm", config, Counts.from_split(split, None, config))
    call = calls[0]
    assert re.search(r"--gpus[= ]1\b", call), call
    assert re.search(rf"--cpus-per-task[= ]{expected.threads}\b", call), call
    assert re.search(rf"--mem[= ]{expected.mem_mb}\b", call), call
    assert re.search(rf"(-t|--time)[= ]{expected.runtime_min}\b", call), call
