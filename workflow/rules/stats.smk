# Statistics and figures of the utility experiment (docs/design-decisions.md, "Statistics").


rule utility_stats:
    input:
        all_dice_files,
    output:
        table1=report("results/table1.csv", caption="../report/table1.rst", category="Utility"),
        per_case="results/stats/per_case_dice.csv",
        run_means="results/stats/run_means.csv",
        paired="results/stats/paired_tests.csv",
        power="results/stats/power.csv",
        case_means=expand("results/stats/case_means_{subset}.csv", subset=["test", "validation"]),
    log:
        "logs/stats/utility_stats.log",
    threads: threads_of("utility_stats")
    resources:
        **resources_of("utility_stats"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/experiment_stats.py"


rule bootstrap_intervals:
    input:
        "results/stats/per_case_dice.csv",
    output:
        "results/stats/bootstrap.csv",
    log:
        "logs/stats/bootstrap.log",
    params:
        settings=config["stats"],
    threads: threads_of("bootstrap_intervals")
    resources:
        **resources_of("bootstrap_intervals"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/bootstrap.py"


rule figure3:
    input:
        per_case="results/stats/per_case_dice.csv",
        worst="results/targeted/worst_validation.csv",
    output:
        report("results/figures/figure3.png", caption="../report/figure3.rst", category="Utility"),
    log:
        "logs/figures/figure3.log",
    threads: threads_of("figure3")
    resources:
        **resources_of("figure3"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/figure3.py"


rule prediction_examples:
    input:
        per_case="results/stats/per_case_dice.csv",
        worst="results/targeted/worst_validation.csv",
        images=lambda wildcards: split_paths("test", "images"),
        masks=lambda wildcards: split_paths("test", "masks"),
        real="results/nnunet/Real/run1/predictions",
        real_synthetic="results/nnunet/RealSynthetic/run1/predictions",
    output:
        report("results/figures/predictions.png", caption="../report/predictions.rst", category="Utility"),
    log:
        "logs/figures/predictions.log",
    params:
        n_cases=config["report"]["example_cases"],
    threads: threads_of("prediction_examples")
    resources:
        **resources_of("prediction_examples"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/prediction_examples.py"
