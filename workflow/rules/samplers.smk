# The sampler comparison (not part of `all`): the same validation masks and seeds by DDPM (all T
# steps) and by DDIM at a few step counts, scored like quality.csv and fidelity.csv.
#   snakemake results/samplers/comparison.csv


rule sample_with_sampler:
    input:
        model="results/ddpm/model.pt",
        mask="results/data/masks/{case}.nii.gz",
    output:
        image="results/samplers/{sampler}/{case}.nii.gz",
        mask="results/samplers/{sampler}/masks/{case}.nii.gz",
    log:
        "logs/samplers/{sampler}/{case}.log",
    benchmark:
        "benchmarks/samplers/{sampler}/{case}.tsv"
    params:
        settings=lambda wildcards: sampler_settings(wildcards.sampler, config["sampling"]),
    threads: threads_of("sample_with_sampler")
    resources:
        **resources_of("sample_with_sampler"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/sample.py"


rule sampler_comparison:
    input:
        unpack(sampler_comparison_inputs),
    output:
        table=report("results/samplers/comparison.csv", caption="../report/samplers.rst", category="DDPM"),
        figure=report("results/samplers/comparison.png", caption="../report/samplers.rst", category="DDPM"),
    log:
        "logs/samplers/comparison.log",
    params:
        samplers=config["sampler_comparison"]["samplers"],
        quality=config["quality"],
        predict=config["nnunet"]["predict"],
        lung_threshold_hu=config["preprocess"]["lung_threshold_hu"],
    threads: threads_of("sampler_comparison")
    resources:
        **resources_of("sampler_comparison"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/sampler_comparison.py"
