"""Wall time and peak memory per stage of a finished workflow run, from Snakemake's benchmark files.

    .venv/bin/python bench/stage_times.py runs/benchmark      # or . for the demo

Every heavy rule writes ``benchmarks/<stage>/.../<job>.tsv`` (Snakemake's ``benchmark:``); this
pools them per stage (runs and cases together) into jobs, job-seconds, fastest / median / slowest
job and largest max RSS. ``--csv`` adds when each stage's jobs ended (UTC) and this machine's CPU
model and flags: run it where the workflow ran.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

RUN_FOLDER = re.compile(r"^run\d+$")


def stage_of(tsv: Path, root: Path) -> str:
    """``nnunet/Real/run2/train.tsv`` -> ``nnunet/Real/train``: arms kept, runs and cases pooled."""
    parts = list(tsv.relative_to(root).with_suffix("").parts)
    kept = [p for p in parts[:-1] if not RUN_FOLDER.match(p)]
    if len(parts) >= 2 and parts[0] in {"phantom", "data", "synthetic", "samplers"}:
        kept = kept[:2] if parts[0] in {"synthetic", "samplers"} else kept[:1]
        return "/".join(kept + ["<case>"])
    return "/".join(kept + [parts[-1]])


def stage_table(run: Path) -> pd.DataFrame:
    root = run / "benchmarks"
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        rows.append({"stage": stage_of(tsv, root), "s": float(bench["s"].iloc[-1]),
                     "max_rss_mb": float(pd.to_numeric(bench["max_rss"], errors="coerce").iloc[-1]),
                     "ended": datetime.fromtimestamp(tsv.stat().st_mtime, timezone.utc)})
    if not rows:
        raise SystemExit(f"{root}: no benchmark files (run the workflow first)")
    table = pd.DataFrame(rows).groupby("stage").agg(
        jobs=("s", "size"), total_s=("s", "sum"), min_s=("s", "min"), median_s=("s", "median"),
        max_s=("s", "max"), max_rss_mb=("max_rss_mb", "max"), first_ended=("ended", "min"),
        last_ended=("ended", "max"))
    for column in ("first_ended", "last_ended"):
        table[column] = table[column].dt.strftime("%Y-%m-%d %H:%M")
    return table.round(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the workflow's working directory")
    parser.add_argument("--csv", type=Path, help="also write the table here, with this machine's CPU")
    args = parser.parse_args()
    table = stage_table(args.run)
    print(table.to_string())
    if args.csv:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from lungsynth.io import write_csv
        from lungsynth.runtime import cpu_description

        write_csv(args.csv, table.assign(cpu=cpu_description()).reset_index())
    print(f"\n{int(table['jobs'].sum())} jobs, {table['total_s'].sum() / 60:.1f} job-minutes")


if __name__ == "__main__":
    main()
