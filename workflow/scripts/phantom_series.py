from lungsynth.pipeline import data
from lungsynth.scripting import run

p = snakemake.params
run(snakemake, lambda: data.phantom_series(
    snakemake.input[0], snakemake.wildcards.case, snakemake.output[0], p.seed, p.layout, p.quirks))
