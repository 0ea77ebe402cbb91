from pathlib import Path

from lungsynth.pipeline import experiment
from lungsynth.scripting import run

run(snakemake, lambda: experiment.statistics(
    snakemake.input, snakemake.output.table1, Path(snakemake.output.per_case).parent))
