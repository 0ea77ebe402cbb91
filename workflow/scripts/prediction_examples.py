from lungsynth.pipeline import nnunet
from lungsynth.scripting import run

i = snakemake.input
run(snakemake, lambda: nnunet.prediction_examples(
    i.per_case, i.worst, i.images, i.masks, {"Real": i.real, "Real+Synthetic": i.real_synthetic},
    snakemake.output[0], snakemake.params.n_cases))
