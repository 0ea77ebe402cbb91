# The utility experiment: one nnU-Net v2 dataset per arm, `runs` seeded trainings per arm on the
# same fixed split, predictions of the real validation and test cases
# (docs/design-decisions.md, "The utility experiment"). Each rule's params are the part of
# `nnunet:` its output depends on: the dataset's name and links, the plan, the schedule and
# seed of one run, the prediction settings.


rule nnunet_raw_dataset:
    input:
        unpack(arm_inputs),
        ddpm=ddpm_model_of_arm,
    output:
        directory("results/nnunet/{arm}/raw"),
    log:
        "logs/nnunet/{arm}/raw_dataset.log",
    params:
        dataset=dataset_name,
        link=config["nnunet"]["link"],
    threads: threads_of("nnunet_raw_dataset")
    resources:
        **resources_of("nnunet_raw_dataset"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/nnunet_raw_dataset.py"


rule nnunet_plan:
    input:
        "results/nnunet/{arm}/raw",
    output:
        directory("results/nnunet/{arm}/preprocessed"),
    log:
        "logs/nnunet/{arm}/plan.log",
    benchmark:
        "benchmarks/nnunet/{arm}/plan.tsv"
    params:
        plan=config["nnunet"]["plan"],
    threads: threads_of("nnunet_plan")
    resources:
        **resources_of("nnunet_plan"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/nnunet_plan.py"


rule nnunet_train:
    input:
        "results/nnunet/{arm}/preprocessed",
    output:
        directory("results/nnunet/{arm}/run{run}/model"),
    log:
        "logs/nnunet/{arm}/run{run}/train.log",
    benchmark:
        "benchmarks/nnunet/{arm}/run{run}/train.tsv"
    params:
        plan=config["nnunet"]["plan"],
        train=config["nnunet"]["train"],
        seed=seed_of_run,
    threads: threads_of("nnunet_train")
    resources:
        **resources_of("nnunet_train"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/nnunet_train.py"


rule nnunet_predict:
    input:
        model="results/nnunet/{arm}/run{run}/model",
        validation_images=lambda wildcards: split_paths("validation", "images"),
        validation_masks=lambda wildcards: split_paths("validation", "masks"),
        test_images=lambda wildcards: split_paths("test", "images"),
        test_masks=lambda wildcards: split_paths("test", "masks"),
    output:
        predictions=directory("results/nnunet/{arm}/run{run}/predictions"),
        validation="results/nnunet/{arm}/run{run}/validation_dice.csv",
        test="results/nnunet/{arm}/run{run}/test_dice.csv",
    log:
        "logs/nnunet/{arm}/run{run}/predict.log",
    benchmark:
        "benchmarks/nnunet/{arm}/run{run}/predict.tsv"
    params:
        settings=config["nnunet"]["predict"],
        lung_threshold_hu=config["preprocess"]["lung_threshold_hu"],
    threads: threads_of("nnunet_predict")
    resources:
        **resources_of("nnunet_predict"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/nnunet_predict.py"


checkpoint worst_validation:
    input:
        dice=lambda wildcards: selection_files("validation_dice.csv"),
        masks=lambda wildcards: split_paths("validation", "masks"),
        images=lambda wildcards: split_paths("validation", "images"),
    output:
        report("results/targeted/worst_validation.csv", caption="../report/worst.rst", category="Utility"),
    log:
        "logs/targeted/worst_validation.log",
    threads: threads_of("worst_validation")
    resources:
        **resources_of("worst_validation"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/worst_validation.py"
