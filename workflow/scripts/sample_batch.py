from lungsynth.pipeline import ddpm
from lungsynth.scripting import job_device, run

run(snakemake, lambda: ddpm.sample_into_folder(
    snakemake.input.model, snakemake.input.masks, snakemake.params.cases, snakemake.output[0],
    snakemake.params.settings, snakemake.threads,
    window_batch=snakemake.config["execution"]["sampling_window_batch"], device=job_device(snakemake)))
