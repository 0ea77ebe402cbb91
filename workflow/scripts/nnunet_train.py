from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

run(snakemake, lambda: nnunet.train(
    snakemake.wildcards.arm, int(snakemake.wildcards.run), snakemake.input[0], snakemake.output[0],
    snakemake.params.settings, snakemake.threads))
