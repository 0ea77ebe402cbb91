from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.nodule_table(snakemake.output[0], processes=snakemake.threads))
