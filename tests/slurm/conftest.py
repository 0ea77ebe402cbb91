"""A real single-node SLURM for the tests, started by the project's own .ci/slurm/start-slurm.sh.

``slurm_cluster`` (session) installs and starts munged, MariaDB, slurmdbd, slurmctld and slurmd
(20-30 s on a fresh machine, 4 s when the packages are there) and at the end of the session stops
exactly the daemons it started, by PID. A cluster that .ci/slurm/start-slurm.sh started earlier is
used and left running. Where SLURM cannot be started (not root, no apt-get, no package mirror, a
SLURM that is not ours) the SLURM tests are skipped with the reason.

``LUNGSYNTH_SLURM_TESTS``: unset or ``auto`` as above; ``0`` skips them; ``require`` turns every
such skip into a failure (for CI, where they must run).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cluster import CI_SLURM, DAEMONS, ours_running, stop_cluster

# start-slurm.sh exit codes that mean "cannot run here", not "broken"
CANNOT_START = {2: "not root", 3: "the SLURM packages cannot be installed",
                4: "a SLURM, munge or MariaDB that start-slurm.sh did not start is present"}
START_TIMEOUT = 600     # s; apt-get on a slow mirror


def skip_or_fail(reason: str):
    if os.environ.get("LUNGSYNTH_SLURM_TESTS", "auto") == "require":
        pytest.fail(f"SLURM tests are required (LUNGSYNTH_SLURM_TESTS=require), but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_possible():
    """Skip, with the reason, before any expensive set-up where SLURM cannot be started."""
    if os.environ.get("LUNGSYNTH_SLURM_TESTS", "auto") in ("0", "no", "skip"):
        pytest.skip("SLURM tests disabled (LUNGSYNTH_SLURM_TESTS=0)")
    if not sys.platform.startswith("linux"):
        skip_or_fail("the SLURM tests need Linux")
    if ours_running("slurmctld") and ours_running("slurmd"):
        return                                   # started earlier by .ci/slurm/start-slurm.sh: use it
    if os.geteuid() != 0:
        skip_or_fail("the SLURM tests need root (they apt-get install SLURM and start its daemons): "
                     "run them as root, or first run `SLURM_CI_USERS=$USER .ci/slurm/start-slurm.sh` as root")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        skip_or_fail("the SLURM tests need apt-get (Debian/Ubuntu) or SLURM installed")


@dataclass
class Cluster:
    started_here: bool          # False: it was already running, and is left running
    start_seconds: float
    start_log: str


@pytest.fixture(scope="session")
def slurm_cluster(slurm_possible, request, tmp_path_factory):
    """The test cluster: one node, partition ``debug``, account ``ci``, sacct through slurmdbd.

    Shared by the pytest-xdist workers of a run (``make test``): under a file lock the first user
    starts it and counts itself in, every later one counts itself in; the last one out stops it if
    this run started it.
    """
    from filelock import FileLock

    from tests.conftest import shared_temp

    if any("nodule_table_build" in item.fixturenames for item in request.session.items):
        # a test of this session needs the nodule table: build it while the cluster starts and
        # the other SLURM tests run (they mostly wait for status polls)
        request.getfixturevalue("nodule_table_build")
    state = shared_temp(tmp_path_factory) / "slurm-cluster"
    users, started_mark = state.with_suffix(".users"), state.with_suffix(".started")
    with FileLock(str(state) + ".lock"):
        count = int(users.read_text()) if users.exists() else 0
        if count == 0 and ours_running("slurmctld") and ours_running("slurmd"):
            cluster = Cluster(started_here=started_mark.exists(), start_seconds=0.0, start_log="already running")
        elif count == 0:
            cluster = start_cluster()
            started_mark.write_text("started by this test run")
        else:
            cluster = Cluster(started_here=False, start_seconds=0.0, start_log="started by another worker")
        users.write_text(str(count + 1))
    try:
        yield cluster
    finally:
        with FileLock(str(state) + ".lock"):
            count = int(users.read_text()) - 1
            users.write_text(str(count))
            if count == 0 and started_mark.exists():
                started_mark.unlink()
                stop_cluster()
                left = [d for d in DAEMONS if ours_running(d)]
                assert not left, f"still running after .ci/slurm/stop-slurm.sh: {left}"


def start_cluster() -> Cluster:
    """.ci/slurm/start-slurm.sh, with a skip (or failure) naming why where SLURM cannot run here."""
    t0 = time.monotonic()
    # own session: a hung apt-get can then be ended together with the script (both started here)
    proc = subprocess.Popen([str(CI_SLURM / "start-slurm.sh")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        stop_cluster()
        skip_or_fail(f".ci/slurm/start-slurm.sh did not finish in {START_TIMEOUT} s "
                     f"(apt-get hanging?):\n{out[-2000:]}")
    if proc.returncode in CANNOT_START:
        last = out.strip().splitlines()[-1] if out.strip() else ""
        skip_or_fail(f"SLURM cannot be started here ({CANNOT_START[proc.returncode]}): {last}")
    if proc.returncode != 0:
        stop_cluster()
        pytest.fail(f".ci/slurm/start-slurm.sh failed (exit {proc.returncode}):\n{out[-4000:]}", pytrace=False)
    return Cluster(started_here=True, start_seconds=time.monotonic() - t0, start_log=out)
