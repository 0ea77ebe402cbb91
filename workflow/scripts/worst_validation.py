from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

run(snakemake, lambda: nnunet.worst_validation(
    snakemake.input.dice, snakemake.input.masks, snakemake.input.images, snakemake.output[0]))
