from lungsynth.pipeline import nnunet
from lungsynth.scripting import job_device, run

i, o = snakemake.input, snakemake.output
run(snakemake, lambda: nnunet.predict(
    i.model, {"validation": i.validation_images, "test": i.test_images},
    {"validation": i.validation_masks, "test": i.test_masks}, o.predictions,
    {"validation": o.validation, "test": o.test}, snakemake.params.settings, snakemake.threads,
    tile_batch=snakemake.config["execution"]["nnunet_tile_batch"],
    lung_threshold_hu=snakemake.params.lung_threshold_hu, device=job_device(snakemake)))
