from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.phantom_series(
    snakemake.input[0], snakemake.wildcards.case, snakemake.output[0], snakemake.params.seed))
