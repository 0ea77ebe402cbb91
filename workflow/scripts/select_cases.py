from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.select_cases(
    snakemake.input[0] if snakemake.input else None, snakemake.output[0],
    snakemake.params.data, snakemake.params.phantom, snakemake.params.criteria))
