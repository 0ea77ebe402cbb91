from lungsynth.pipeline import experiment
from lungsynth.scripting import run

run(snakemake, lambda: experiment.bootstrap(snakemake.input[0], snakemake.output[0], snakemake.params.settings))
