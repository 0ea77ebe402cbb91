# Synthetic volumes: one per conditioning mask (docs/design-decisions.md, "Synthetic sets").
# general  = every real training mask; targeted = `targeted.per_mask` variants <case>_v<k> of each
# worst validation mask (the list comes from the Real nnU-Net runs). A volume depends on the
# model and on the `sampling:` section only.


rule sample:
    input:
        model="results/ddpm/model.pt",
        mask=conditioning_mask,
    output:
        image="results/synthetic/{set}/{case}.nii.gz",
        mask="results/synthetic/{set}/masks/{case}.nii.gz",
    log:
        "logs/synthetic/{set}/{case}.log",
    benchmark:
        "benchmarks/synthetic/{set}/{case}.tsv"
    params:
        settings=config["sampling"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    group:
        "sample"
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/sample.py"


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
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
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
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/synthetic_fidelity.py"
