from lungsynth.pipeline import utility
from lungsynth.scripting import run

run(snakemake, lambda: utility.bootstrap(snakemake.input[0], snakemake.output[0], snakemake.params.settings))
