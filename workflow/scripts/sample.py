from lungsynth.pipeline import ddpm
from lungsynth.scripting import run

run(snakemake, lambda: ddpm.sample(
    snakemake.input.model, snakemake.input.mask, snakemake.output.image, snakemake.output.mask,
    snakemake.wildcards.case, snakemake.params.settings, snakemake.threads,
    window_batch=snakemake.config["execution"]["sampling_window_batch"]))
