# Source volumes -> preprocessed crops, case table, patient split, montage
# (docs/design-decisions.md, "Data").


rule nodule_table:
    output:
        "results/lidc/nodules.csv",
    log:
        "logs/lidc/nodule_table.log",
    benchmark:
        "benchmarks/lidc/nodule_table.tsv"
    threads: threads_of("nodule_table")
    resources:
        **resources_of("nodule_table"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/nodule_table.py"


checkpoint select_cases:
    input:
        select_cases_input,
    output:
        "results/data/selection.csv",
    log:
        "logs/data/select_cases.log",
    params:
        data=config["data"],
        phantom=config["phantom"] if SOURCE == "phantom" else {},
        criteria=nodule_criteria(),
    threads: threads_of("select_cases")
    resources:
        **resources_of("select_cases"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/select_cases.py"


rule phantom_series:
    input:
        "results/data/selection.csv",
    output:
        directory(f"{PHANTOM_PATIENTS}/{{case}}"),
    log:
        "logs/phantom/{case}.log",
    benchmark:
        "benchmarks/phantom/{case}.tsv"
    params:
        seed=config["phantom"]["seed"],
        layout=config["phantom"]["layout"],
        quirks=config["phantom"]["quirks"],
    threads: threads_of("phantom_series")
    resources:
        **resources_of("phantom_series"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/phantom_series.py"


rule phantom_manifest:
    input:
        selection="results/data/selection.csv",
        series=lambda wildcards: expand(f"{PHANTOM_PATIENTS}/{{case}}", case=all_cases()),
    output:
        f"{PHANTOM_MANIFEST}/metadata.csv",
    log:
        "logs/phantom/manifest.log",
    params:
        layout=config["phantom"]["layout"],
    threads: threads_of("phantom_manifest")
    resources:
        **resources_of("phantom_manifest"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/phantom_manifest.py"


rule preprocess_case:
    input:
        unpack(preprocess_input),
    output:
        image="results/data/images/{case}.nii.gz",
        mask="results/data/masks/{case}.nii.gz",
        record="results/data/records/{case}.json",
    log:
        "logs/data/preprocess/{case}.log",
    benchmark:
        "benchmarks/data/preprocess/{case}.tsv"
    params:
        source=SOURCE,
        dicom_root=dicom_root(),
        settings=config["preprocess"],
    threads: threads_of("preprocess_case")
    resources:
        **resources_of("preprocess_case"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/preprocess_case.py"


rule case_table:
    input:
        selection="results/data/selection.csv",
        records=lambda wildcards: expand("results/data/records/{case}.json", case=all_cases()),
    output:
        "results/data/cases.csv",
    log:
        "logs/data/case_table.log",
    threads: threads_of("case_table")
    resources:
        **resources_of("case_table"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/case_table.py"


checkpoint split:
    input:
        "results/data/selection.csv",
    output:
        "results/data/splits.json",
    log:
        "logs/data/split.log",
    params:
        settings=config["split"],
    threads: threads_of("split")
    resources:
        **resources_of("split"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/split.py"


rule data_montage:
    input:
        cases="results/data/cases.csv",
        images=lambda wildcards: expand("results/data/images/{case}.nii.gz", case=all_cases()[: config["report"]["montage_cases"]]),
        masks=lambda wildcards: expand("results/data/masks/{case}.nii.gz", case=all_cases()[: config["report"]["montage_cases"]]),
    output:
        report("results/data/montage.png", caption="../report/montage.rst", category="Data"),
    log:
        "logs/data/montage.log",
    params:
        n_cases=config["report"]["montage_cases"],
        source=SOURCE,
    threads: threads_of("data_montage")
    resources:
        **resources_of("data_montage"),
    conda:
        "../../envs/lungsynth.yaml"
    script:
        "../scripts/data_montage.py"
