from lungsynth.pipeline import ddpm
from lungsynth.scripting import job_device, run

run(snakemake, lambda: ddpm.sample(
    snakemake.input.model, snakemake.input.mask, snakemake.output.image, snakemake.output.mask,
    snakemake.wildcards.case, snakemake.params.settings, snakemake.threads,
    window_batch=snakemake.config["execution"]["sampling_window_batch"], device=job_device(snakemake)))
