from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

run(snakemake, lambda: nnunet.figure3(snakemake.input.per_case, snakemake.input.worst, snakemake.output[0]))
