from lungsynth.pipeline import ddpm
from lungsynth.scripting import run

run(snakemake, lambda: ddpm.link_sampled(
    snakemake.input[0], snakemake.wildcards.case, snakemake.output.image, snakemake.output.mask))
