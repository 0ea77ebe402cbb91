from lungsynth.pipeline import data
from lungsynth.scripting import run

run(snakemake, lambda: data.phantom_manifest(
    snakemake.input.selection, snakemake.input.series, snakemake.params.layout, snakemake.output[0]))
