# The patch-wise DDPM: trained on random patches of the real training crops
# (docs/design-decisions.md, "The DDPM"). Its params are the whole `ddpm:` section: the model
# depends on every key of it; the checkpoint interval is `execution.ddpm_checkpoint_every`.


rule train_ddpm:
    input:
        images=lambda wildcards: split_paths("train", "images"),
        masks=lambda wildcards: split_paths("train", "masks"),
    output:
        model="results/ddpm/model.pt",
        losses="results/ddpm/loss.csv",
        curve=report("results/ddpm/loss.png", caption="../report/loss.rst", category="DDPM"),
    log:
        "logs/ddpm/train.log",
    benchmark:
        "benchmarks/ddpm/train.tsv"
    params:
        settings=config["ddpm"],
    # first among the jobs ready with it: every synthetic volume, and so two of the three arms, waits for it
    priority: 10
    threads: threads_of("train_ddpm")
    resources:
        **resources_of("train_ddpm"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/train_ddpm.py"
