from lungsynth.pipeline import ddpm
from lungsynth.scripting import job_device, run

run(snakemake, lambda: ddpm.train(
    snakemake.input.images, snakemake.input.masks, snakemake.params.settings,
    snakemake.output.model, snakemake.output.losses, snakemake.output.curve, snakemake.threads,
    checkpoint_every=snakemake.config["execution"]["ddpm_checkpoint_every"],
    layout=snakemake.config["execution"]["ddpm_memory_format"], device=job_device(snakemake)))
