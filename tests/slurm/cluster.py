"""Helpers for the SLURM tests: the test cluster's scripts, running Snakemake through the SLURM
executor as a user would, and reading back what SLURM did (sacct, the plugin's logs)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CI_SLURM = REPO / ".ci" / "slurm"
STATE_DIR = Path(os.environ.get("SLURM_CI_STATE_DIR", "/run/lungsynth-slurm"))
# the user's profile, then the test cluster's overrides (a later profile replaces whole top-level keys)
PROFILES = (REPO / "profiles" / "slurm", REPO / "profiles" / "slurm-local")
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")


def ours_running(daemon: str) -> bool:
    """True when the PID that start-slurm.sh recorded for ``daemon`` is alive and still that daemon."""
    try:
        pid = (STATE_DIR / "started" / f"{daemon}.pid").read_text().strip()
        return Path(f"/proc/{pid}/comm").read_text().strip() == daemon
    except OSError:
        return False


def stop_cluster() -> str:
    """.ci/slurm/stop-slurm.sh: stops the recorded PIDs only."""
    done = subprocess.run([str(CI_SLURM / "stop-slurm.sh")], capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


# ---------------------------------------------------------------- Snakemake through the SLURM executor


def snakemake_command(workdir, *args, snakefile=REPO / "Snakefile", budget: int = 600) -> list[str]:
    """The user's command (`--profile profiles/slurm`) plus the test cluster's overrides, under
    `timeout --foreground -s INT`: one SIGINT makes Snakemake cancel its SLURM jobs and exit
    (SIGTERM makes it wait for them). Without --foreground, timeout signals Snakemake twice (directly
    and through the process group); a second SIGINT can hit the cancellation, and then the SLURM
    jobs keep running and Snakemake hangs (seen in 4 of 6 tries here)."""
    profiles = [a for p in PROFILES for a in ("--profile", str(p))]
    return ["timeout", "--foreground", "-s", "INT", "-k", "30", str(budget), str(SNAKEMAKE),
            "-s", str(snakefile), "-d", str(workdir), *profiles, *args]


def snakemake_env() -> dict:
    # never look like a SLURM job to the plugin (it would strip the environment and warn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(command: list[str], workdir, log: Path) -> subprocess.Popen:
    """Start ``command`` from ``workdir`` in a session of its own, so `reap` can end exactly it."""
    with open(log, "w") as handle:
        return subprocess.Popen(command, cwd=workdir, env=snakemake_env(), stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def reap(proc: subprocess.Popen) -> None:
    """Kill what is left of the process group that `spawn` created (normally nothing)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class Submission:
    jobid: str          # Snakemake's job id (a UUID for a group job)
    rule: str           # the rule, or for a group job "<group>_<rules>"
    slurm_id: str
    log: Path           # the plugin's SLURM log of this job
    group: bool = False


@dataclass
class SlurmRun:
    """One Snakemake run through the SLURM executor, and what its log says it did."""

    workdir: Path
    returncode: int
    output: str                                      # Snakemake's stdout + stderr
    seconds: float
    submissions: list[Submission] = field(default_factory=list)
    finished: dict[str, str] = field(default_factory=dict)      # Snakemake job id -> rule
    resources: dict[str, dict] = field(default_factory=dict)    # Snakemake job id -> resources line
    local_rules: set[str] = field(default_factory=set)          # rules Snakemake ran itself

    @property
    def slurm_ids(self) -> list[str]:
        return [s.slurm_id for s in self.submissions]


SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
FINISHED = re.compile(r"Finished jobid: (\d+) \(Rule: (\w+)\)")
LOCALRULE = re.compile(r"^localrule (\w+):", re.MULTILINE)
JOB_BLOCK = re.compile(r"^(?:rule|checkpoint) \w+:\n(?:    .*\n)*?    jobid: (\d+)\n(?:    .*\n)*?    resources: (.*)$", re.MULTILINE)


def parse_run(workdir, returncode: int, output: str, seconds: float) -> SlurmRun:
    run = SlurmRun(Path(workdir), returncode, output, seconds)
    for jobid, slurm_id, log in SUBMITTED.findall(output):
        kind, name = re.search(r"/(rule|group)_([\w-]+)/", log).groups()    # .../slurm_logs/rule_<rule>/...
        run.submissions.append(Submission(jobid, name, slurm_id, Path(log), group=kind == "group"))
    run.finished = dict(FINISHED.findall(output))
    run.local_rules = set(LOCALRULE.findall(output))
    for jobid, line in JOB_BLOCK.findall(output):   # the first block of a job id is Snakemake's own;
        # later ones can come from a failed job's log that Snakemake prints (show-failed-logs)
        run.resources.setdefault(jobid, dict(item.split("=", 1) for item in line.split(", ") if "=" in item))
    return run


def run_on_slurm(workdir, *args, snakefile=REPO / "Snakefile", budget: int = 600) -> SlurmRun:
    """Run Snakemake from ``workdir`` (as a user would from their project folder); its log is
    kept as ``workdir/snakemake-slurm.log``."""
    log = Path(workdir) / "snakemake-slurm.log"
    t0 = time.monotonic()
    proc = spawn(snakemake_command(workdir, *args, snakefile=snakefile, budget=budget), workdir, log)
    try:
        returncode = proc.wait(timeout=budget + 60)
    except subprocess.TimeoutExpired:
        returncode = -9
    finally:
        reap(proc)
    return parse_run(workdir, returncode, log.read_text(), time.monotonic() - t0)


# ---------------------------------------------------------------- what SLURM recorded


SACCT_FIELDS = ("JobIDRaw", "State", "ExitCode", "Account", "Partition", "AllocCPUS", "ReqMem", "Timelimit", "Elapsed",
                "Comment")


def sacct(job_ids, fields=SACCT_FIELDS) -> list[dict]:
    """One dict per SLURM job (allocations, not steps), from the accounting database (slurmdbd)."""
    if not job_ids:
        return []
    done = subprocess.run(["sacct", "-X", "-P", "-n", "-j", ",".join(job_ids), "-o", ",".join(fields)],
                          capture_output=True, text=True, timeout=60, check=True)
    return [dict(zip(fields, line.split("|"))) for line in done.stdout.splitlines() if line.strip()]


def sacct_table(job_ids) -> str:
    """sacct's own table of these jobs, for reports and failure messages."""
    if not job_ids:
        return "(no SLURM jobs)"
    done = subprocess.run(["sacct", "-X", "-j", ",".join(job_ids), "-o",
                           "JobID,State,ExitCode,Account,Partition,AllocCPUS,ReqMem,Elapsed,Comment%50"],
                          capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr
