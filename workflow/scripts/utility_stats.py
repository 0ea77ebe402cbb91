from pathlib import Path

from lungsynth.pipeline import utility
from lungsynth.scripting import run

run(snakemake, lambda: utility.statistics(
    snakemake.input, snakemake.output.table1, Path(snakemake.output.per_case).parent))
