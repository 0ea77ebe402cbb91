from pathlib import Path

from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

run(snakemake, lambda: nnunet.statistics(
    snakemake.input, snakemake.output.table1, Path(snakemake.output.per_case).parent, snakemake.params.seed))
