"""Wall time and peak memory per stage of a finished workflow run, from Snakemake's benchmark files.

    .venv/bin/python bench/stage_times.py runs/benchmark      # or . for the demo

Every heavy rule writes ``benchmarks/<stage>/.../<job>.tsv`` (Snakemake's ``benchmark:``
directive: seconds, max RSS, ...). This groups them by stage (the path below ``benchmarks/``
without the job's own name and wildcards) and prints one row per stage: jobs, summed and
largest seconds, largest max RSS. Summed seconds are job-seconds: jobs ran side by side.
"""

from __future__ import annotations

import argparse
import re
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
                     "max_rss_mb": float(pd.to_numeric(bench["max_rss"], errors="coerce").iloc[-1])})
    if not rows:
        raise SystemExit(f"{root}: no benchmark files (run the workflow first)")
    table = pd.DataFrame(rows).groupby("stage").agg(
        jobs=("s", "size"), total_s=("s", "sum"), max_s=("s", "max"), max_rss_mb=("max_rss_mb", "max"))
    return table.round(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the workflow's working directory")
    table = stage_table(parser.parse_args().run)
    print(table.to_string())
    print(f"\n{int(table['jobs'].sum())} jobs, {table['total_s'].sum() / 60:.1f} job-minutes")


if __name__ == "__main__":
    main()
