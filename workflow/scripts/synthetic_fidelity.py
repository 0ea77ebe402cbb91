from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

run(snakemake, lambda: nnunet.mask_fidelity(
    snakemake.input.models, snakemake.input.images, snakemake.input.masks, snakemake.input.real_test,
    snakemake.output[0], snakemake.params.settings, snakemake.threads))
