from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.split(snakemake.input[0], snakemake.output[0], snakemake.params.settings))
