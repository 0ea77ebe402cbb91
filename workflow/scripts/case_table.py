from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.case_table(snakemake.input.records, snakemake.output[0]))
