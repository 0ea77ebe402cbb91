from lungsynth.arms import arm
from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

i = snakemake.input
training = {name: (i[f"{name}_images"], i[f"{name}_masks"]) for name in arm(snakemake.wildcards.arm).training_sets}
run(snakemake, lambda: nnunet.raw_dataset(
    snakemake.wildcards.arm, training, (i.validation_images, i.validation_masks), snakemake.output[0],
    snakemake.params.dataset, snakemake.params.link))
