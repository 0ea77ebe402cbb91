from lungsynth.pipeline import experiment
from lungsynth.scripting import run

i = snakemake.input
run(snakemake, lambda: experiment.prediction_examples(
    i.per_case, i.worst, i.images, i.masks, {"Real": i.real, "RealSynthetic": i.real_synthetic},
    snakemake.output[0], snakemake.params.n_cases))
