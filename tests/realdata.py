"""Real CT for the tests, from the package registry into a cache outside git (never committed).

TotalSegmentator 2.18.0's source distribution (Apache-2.0, 38 MB; its wheel has none of this)
carries a whole-thorax chest CT at 1.5 mm (``tests/reference_files/aorta_report/example_ct.nii.gz``,
233 x 167 x 191) and a real 20-slice CT series in JPEG 2000 lossless with blank UIDs
(``tests/reference_files/example_ct_dicom/``). ``make test`` runs this file first:

    .venv/bin/python tests/realdata.py       # fetch into .testdata/ (or $LUNGSYNTH_TESTDATA), once

Offline, it says so and the tests that need the data skip with that reason; with
``LUNGSYNTH_REAL_CT=require`` (CI) a failed fetch is an error and so is a skipped test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE, VERSION = "totalsegmentator", "2.18.0"
SHA256 = "5d4223ef93973bc36d710869d11e7742ead2c154c72f7f9edcaaadd5b6c4bd03"
MEMBERS = {
    "chest_ct": "tests/reference_files/aorta_report/example_ct.nii.gz",
    "dicom_series": "tests/reference_files/example_ct_dicom",
    "license": "LICENSE",
}


def cache_dir() -> Path:
    return Path(os.environ.get("LUNGSYNTH_TESTDATA", REPO / ".testdata")) / f"{PACKAGE}-{VERSION}"


def paths() -> dict[str, Path]:
    return {name: cache_dir() / member for name, member in MEMBERS.items()}


def required() -> bool:
    return os.environ.get("LUNGSYNTH_REAL_CT", "") == "require"


def present() -> bool:
    return (cache_dir() / ".complete").exists()


def fetch() -> str | None:
    """Download, check and unpack the data; returns None when it is there, else why not."""
    if present():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               "--disable-pip-version-check", "-q", "-d", scratch, f"{PACKAGE}=={VERSION}"],
                              capture_output=True, text=True, timeout=900)
        archives = list(Path(scratch).glob(f"{PACKAGE}-{VERSION}.tar.gz"))
        if done.returncode != 0 or not archives:
            return f"could not download {PACKAGE}=={VERSION}'s source distribution (offline?): " + \
                (done.stderr.strip().splitlines() or ["no archive"])[-1][:200]
        digest = hashlib.sha256(archives[0].read_bytes()).hexdigest()
        if digest != SHA256:
            return f"{archives[0].name}: sha256 {digest} is not the expected {SHA256}"
        target = cache_dir()
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(archives[0]) as archive:
            prefix = f"{PACKAGE}-{VERSION}/"
            wanted = [m for m in archive.getmembers() if any(
                m.name == prefix + member or m.name.startswith(prefix + member + "/") for member in MEMBERS.values())]
            for member in wanted:
                member.name = member.name[len(prefix):]
            archive.extractall(partial, members=wanted, filter="data")
        (partial / ".complete").write_text(f"{PACKAGE}=={VERSION} sha256 {SHA256}\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    return None


def main() -> int:
    reason = fetch()
    if reason is None:
        print(f"real CT test data: {cache_dir()}")
        return 0
    print(f"real CT test data not available: {reason}", file=sys.stderr)
    return 1 if required() else 0


if __name__ == "__main__":
    sys.exit(main())
