from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

run(snakemake, lambda: nnunet.plan(snakemake.input[0], snakemake.output[0], snakemake.params.plan, snakemake.threads))
