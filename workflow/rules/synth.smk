# Synthetic volumes: one per conditioning mask (docs/design-decisions.md, "Synthetic sets").
# general  = every real training mask; targeted = `targeted.per_mask` variants <case>_v<k> of each
# worst validation mask (the list comes from the Real nnU-Net runs). A volume depends on the
# model, on the `sampling:` section and on its case id (its seed) only. `sample` samples a batch
# of `execution.sampling_batch` masks with one model load (one GPU job); `synthetic_volume` links
# each volume to its own path.


rule sample:
    input:
        model="results/ddpm/model.pt",
        masks=sampling_batch_masks,
    output:
        directory("results/synthetic/{set}/batches/{batch}"),
    log:
        "logs/synthetic/{set}/batch{batch}.log",
    benchmark:
        "benchmarks/synthetic/{set}/batch{batch}.tsv"
    params:
        settings=config["sampling"],
        cases=sampling_batch_cases,
    threads: threads_of("sample")
    resources:
        **resources_of("sample"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/sample_batch.py"


rule synthetic_volume:
    input:
        sampling_batch_of_case,
    output:
        image="results/synthetic/{set}/{case}.nii.gz",
        mask="results/synthetic/{set}/masks/{case}.nii.gz",
    log:
        "logs/synthetic/{set}/{case}.log",
    localrule: True
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/link_sampled.py"


rule synthetic_quality:
    input:
        images=lambda wildcards: synthetic_paths(wildcards.set, "images"),
        masks=lambda wildcards: synthetic_paths(wildcards.set, "masks"),
        real=lambda wildcards: split_paths("train", "images"),
    output:
        report("results/synthetic/{set}/quality.csv", caption="../report/quality.rst", category="DDPM"),
    log:
        "logs/synthetic/{set}/quality.log",
    params:
        settings=config["quality"],
    threads: threads_of("synthetic_quality")
    resources:
        **resources_of("synthetic_quality"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/synthetic_quality.py"


rule figure2:
    input:
        unpack(figure2_inputs),
    output:
        report("results/synthetic/{set}/figure2.png", caption="../report/figure2.rst", category="DDPM"),
    log:
        "logs/synthetic/{set}/figure2.log",
    params:
        title=lambda wildcards: f"{wildcards.set} synthetic volumes: mask, generated, real",
        n_cases=config["report"]["figure2_cases"],
    threads: threads_of("figure2")
    resources:
        **resources_of("figure2"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/figure2.py"


rule synthetic_fidelity:
    input:
        images=lambda wildcards: synthetic_paths(wildcards.set, "images"),
        masks=lambda wildcards: synthetic_paths(wildcards.set, "masks"),
        models=lambda wildcards: fidelity_files("model"),
        real_test=lambda wildcards: fidelity_files("test_dice.csv"),
    output:
        report("results/synthetic/{set}/fidelity.csv", caption="../report/fidelity.rst", category="DDPM"),
    log:
        "logs/synthetic/{set}/fidelity.log",
    benchmark:
        "benchmarks/fidelity/{set}.tsv"
    params:
        settings=config["nnunet"]["predict"],
        lung_threshold_hu=config["preprocess"]["lung_threshold_hu"],
    threads: threads_of("synthetic_fidelity")
    resources:
        **resources_of("synthetic_fidelity"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/synthetic_fidelity.py"
