from lungsynth.pipeline import utility
from lungsynth.scripting import run

run(snakemake, lambda: utility.figure3(snakemake.input.per_case, snakemake.input.worst, snakemake.output[0]))
