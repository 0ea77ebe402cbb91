from lungsynth.pipeline import ddpm
from lungsynth.scripting import run

run(snakemake, lambda: ddpm.figure2(
    snakemake.input.images, snakemake.input.masks, snakemake.input.real, snakemake.output[0],
    snakemake.params.title, snakemake.params.n_cases))
