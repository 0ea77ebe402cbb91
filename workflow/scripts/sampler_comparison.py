from lungsynth.pipeline import samplers
from lungsynth.scripting import job_device, run

volumes = {name: snakemake.input[f"volumes_{name}"] for name in snakemake.params.samplers}
run(snakemake, lambda: samplers.compare(
    volumes, snakemake.input.masks, snakemake.input.real, snakemake.input.reference, snakemake.input.models,
    snakemake.output.table, snakemake.output.figure, snakemake.params.quality, snakemake.params.predict,
    snakemake.threads, tile_batch=snakemake.config["execution"]["nnunet_tile_batch"],
    lung_threshold_hu=snakemake.params.lung_threshold_hu, device=job_device(snakemake)))
