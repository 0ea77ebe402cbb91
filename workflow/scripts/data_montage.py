from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.montage(
    snakemake.input.cases, snakemake.input.images, snakemake.input.masks, snakemake.output[0],
    snakemake.params.n_cases, snakemake.params.source))
