from lungsynth.pipeline import experiment
from lungsynth.scripting import run

run(snakemake, lambda: experiment.figure3(snakemake.input.per_case, snakemake.input.worst, snakemake.output[0]))
