from lungsynth.pipeline import fidelity
from lungsynth.scripting import job_device, run

run(snakemake, lambda: fidelity.mask_fidelity(
    snakemake.input.models, snakemake.input.images, snakemake.input.masks, snakemake.input.real_test,
    snakemake.output[0], snakemake.params.settings, snakemake.threads,
    tile_batch=snakemake.config["execution"]["nnunet_tile_batch"],
    lung_threshold_hu=snakemake.params.lung_threshold_hu, device=job_device(snakemake)))
