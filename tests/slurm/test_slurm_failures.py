"""A failing job and an interrupted run on the real test cluster: Snakemake reports, retries,
cancels and exits instead of hanging (tests/slurm/faulty.smk holds the misbehaving rules)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .cluster import PROFILES, parse_run, reap, run_on_slurm, sacct, sacct_table, snakemake_command, spawn

pytestmark = pytest.mark.slurm

FAULTY = Path(__file__).with_name("faulty.smk")
BUDGET = 240          # s; a failing rule with one retry takes about 85 s here, mostly the
                      # plugin's status-poll back-off (5 s, then +10 s per idle poll)


def profile_retries() -> int:
    return int(yaml.safe_load((PROFILES[0] / "config.yaml").read_text()).get("retries", 0))


def test_failing_rule_is_retried_then_reported_and_snakemake_exits_nonzero(slurm_cluster, tmp_path):
    run = run_on_slurm(tmp_path, "fails", snakefile=FAULTY, budget=BUDGET)
    report = f"{run.output[-4000:]}\n{sacct_table(run.slurm_ids)}"

    assert run.returncode not in (0, 124, 137), f"exit {run.returncode} (124/137: timed out)\n{report}"
    assert run.seconds < BUDGET, report
    assert "Error in rule fails" in run.output, report
    # the profile's retries: the job went to SLURM once more per retry, and every attempt failed there
    attempts = [s for s in run.submissions if s.rule == "fails"]
    assert len(attempts) == 1 + profile_retries(), report
    rows = sacct([s.slurm_id for s in attempts])
    assert [r["State"] for r in rows] == ["FAILED"] * len(attempts), report
    assert all(r["ExitCode"] == "1:0" for r in rows), report
    assert re.search(r"SLURM-job '\d+' failed, SLURM status is: 'FAILED'", run.output), report
    # the plugin kept the failed job's SLURM log; show-failed-logs printed the rule's own log
    assert all(s.log.is_file() and "rule fails:" in s.log.read_text() for s in attempts), report
    assert "this rule fails on purpose" in run.output, report
    assert not (tmp_path / "fails.txt").exists()


def test_sigint_cancels_the_running_slurm_job_and_snakemake_exits(slurm_cluster, tmp_path):
    """One SIGINT (Ctrl-C, or `timeout --foreground -s INT`) cancels the cluster job: none is left running."""
    log = tmp_path / "snakemake-slurm.log"
    proc = spawn(snakemake_command(tmp_path, "sleeps", snakefile=FAULTY, budget=BUDGET), tmp_path, log)
    try:
        slurm_id = _wait_until_running(log, proc, limit=90)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)          # to `timeout`, which passes it on to snakemake
        try:
            returncode = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            returncode = None
        seconds = time.monotonic() - t0
    finally:
        reap(proc)
    run = parse_run(tmp_path, returncode, log.read_text(), seconds)
    report = f"{run.output[-4000:]}\n{sacct_table(run.slurm_ids)}"
    assert returncode is not None and seconds < 60, f"snakemake did not exit after SIGINT\n{report}"
    assert returncode != 0, report
    state = _wait_for_state(slurm_id, lambda s: s.startswith("CANCELLED"), limit=30)
    assert state.startswith("CANCELLED"), f"SLURM job {slurm_id} is {state}\n{report}"


def _wait_until_running(log: Path, proc, limit: float) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"snakemake exited early ({proc.returncode}):\n{log.read_text()[-3000:]}")
        found = re.search(r"submitted with SLURM jobid (\d+)", log.read_text())
        if found:
            state = subprocess.run(["squeue", "-h", "-j", found.group(1), "-o", "%T"],
                                   capture_output=True, text=True).stdout.strip()
            if state == "RUNNING":
                return found.group(1)
        time.sleep(0.5)
    pytest.fail(f"no running SLURM job after {limit} s:\n{log.read_text()[-3000:]}")


def _wait_for_state(slurm_id: str, done, limit: float) -> str:
    deadline = time.monotonic() + limit
    state = ""
    while time.monotonic() < deadline:
        rows = sacct([slurm_id])
        state = rows[0]["State"] if rows else ""
        if done(state):
            break
        time.sleep(1)
    return state


def test_the_test_node_offers_every_cpu_of_the_machine(slurm_cluster):
    # the node is sized by start-slurm.sh; a caller's OMP_NUM_THREADS must not shrink it (it did once:
    # plain `nproc` honours that variable, and then 2-thread jobs were refused)
    shown = subprocess.run(["scontrol", "show", "node"], capture_output=True, text=True, check=True).stdout
    assert int(re.search(r"CPUTot=(\d+)", shown).group(1)) == os.cpu_count()
