"""Run the real Snakefile from a scratch working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TEST_CONFIG = REPO / "tests" / "workflow" / "config.yaml"


def snakemake(workdir, *args, configfiles=(TEST_CONFIG,), timeout=1800) -> subprocess.CompletedProcess:
    """``snakemake -s REPO/Snakefile -d workdir --configfile ... args`` (output captured)."""
    # --configfile takes several values: it goes last, or it would swallow the targets
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
               "--show-failed-logs", *args, "--configfile", *map(str, configfiles)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def run_snakemake():
    return snakemake
