# Synthetic volumes: one per conditioning mask (design.md step 5).
# general  = every real training mask; targeted = `per_mask` variants <case>_v<k> of each worst
# validation mask (the list comes from the Real nnU-Net runs).


rule sample:
    input:
        model="results/ddpm/model.pt",
        mask=lambda wildcards: f"results/data/masks/{source_case(wildcards.case)}.nii.gz",
    output:
        image="results/synthetic/{set}/{case}.nii.gz",
        mask="results/synthetic/{set}/masks/{case}.nii.gz",
    log:
        "logs/synthetic/{set}/{case}.log",
    benchmark:
        "benchmarks/synthetic/{set}/{case}.tsv"
    params:
        settings=generation_settings(),
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
        settings=config["sampling"],
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
        images=lambda wildcards: synthetic_paths(wildcards.set, "images")[: config["report"]["figure2_cases"]],
        masks=lambda wildcards: synthetic_paths(wildcards.set, "masks")[: config["report"]["figure2_cases"]],
        real=lambda wildcards: [
            f"results/data/images/{source_case(c)}.nii.gz"
            for c in synthetic_cases(wildcards.set)[: config["report"]["figure2_cases"]]
        ],
    output:
        report("results/synthetic/{set}/figure2.png", caption="../report/figure2.rst", category="DDPM"),
    log:
        "logs/synthetic/{set}/figure2.log",
    params:
        title=lambda wildcards: f"{wildcards.set} synthetic volumes: mask, generated, real",
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
        settings=config["nnunet"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/synthetic_fidelity.py"
